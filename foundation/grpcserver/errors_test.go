package grpcserver_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/acme/shop/foundation/grpcserver"
)

func TestUnexpectedError(t *testing.T) {
	tests := []struct {
		err  error
		want codes.Code
	}{
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{context.Canceled, codes.Canceled},
		{&pgconn.PgError{Code: "57P01"}, codes.Unavailable},
		{errors.New("secret detail"), codes.Internal},
	}
	for _, tt := range tests {
		var logs bytes.Buffer
		err := grpcserver.UnexpectedError(context.Background(), slog.New(slog.NewTextHandler(&logs, nil)), tt.err)
		if got := status.Code(err); got != tt.want {
			t.Errorf("UnexpectedError(%v) = %v, want %v", tt.err, got, tt.want)
		}
		if strings.Contains(status.Convert(err).Message(), "secret") {
			t.Errorf("answer leaks the cause: %v", err)
		}
	}
}
