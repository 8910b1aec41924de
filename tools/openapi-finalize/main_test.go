package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestApplySuccessStatus(t *testing.T) {
	body := map[string]any{"description": "the user"}
	tests := []struct {
		name    string
		op      map[string]any
		want    map[string]any
		wantErr bool
	}{
		{
			name: "no extension leaves 200",
			op:   map[string]any{"responses": map[string]any{"200": body}},
			want: map[string]any{"responses": map[string]any{"200": body}},
		},
		{
			name: "201 moves the body",
			op:   map[string]any{"x-success-status": 201.0, "responses": map[string]any{"200": body, "default": body}},
			want: map[string]any{"responses": map[string]any{"201": body, "default": body}},
		},
		{
			name: "204 drops the body",
			op:   map[string]any{"x-success-status": 204.0, "responses": map[string]any{"200": body}},
			want: map[string]any{"responses": map[string]any{"204": map[string]any{"description": "No Content: the request succeeded and the body is empty."}}},
		},
		{
			name:    "other codes are refused",
			op:      map[string]any{"x-success-status": 202.0, "responses": map[string]any{"200": body}},
			wantErr: true,
		},
		{
			name:    "missing 200 is refused",
			op:      map[string]any{"x-success-status": 201.0, "responses": map[string]any{}},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := applySuccessStatus(tt.op)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if diff := cmp.Diff(tt.want, tt.op); diff != "" {
				t.Errorf("operation (-want +got):\n%s", diff)
			}
		})
	}
}
