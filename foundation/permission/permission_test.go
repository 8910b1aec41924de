package permission_test

import (
	"errors"
	"testing"

	"github.com/acme/shop/foundation/permission"
)

func TestSelfOrAdmin(t *testing.T) {
	const (
		self  = "0195c3a0-0000-7000-8000-00000000000a"
		other = "0195c3a0-0000-7000-8000-00000000000b"
	)
	tests := []struct {
		name      string
		isAdmin   bool
		requested string
		want      string
		wantErr   error
	}{
		{"me", false, "me", self, nil},
		{"ME", false, "ME", self, nil},
		{"own id", false, self, self, nil},
		{"own id upper case", false, "0195C3A0-0000-7000-8000-00000000000A", self, nil},
		{"other user", false, other, "", permission.ErrDenied},
		{"admin, me", true, "me", self, nil},
		{"admin, other user upper case", true, "0195C3A0-0000-7000-8000-00000000000B", other, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := permission.SelfOrAdmin(self, tt.isAdmin, tt.requested)
			if got != tt.want || !errors.Is(err, tt.wantErr) {
				t.Errorf("SelfOrAdmin(%q) = %q, %v; want %q, %v", tt.requested, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
