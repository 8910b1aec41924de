package grpcapi_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/acme/shop/foundation/grpcserver/grpctest"
	"github.com/acme/shop/foundation/validation"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"

	"github.com/acme/shop/customers-svc/internal/customer"
	"github.com/acme/shop/customers-svc/internal/grpcapi"
	"github.com/acme/shop/customers-svc/internal/password"
)

// counts returns the value of each result of the counter name in m's series.
func counts(t *testing.T, m *grpcapi.Metrics, name string) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m.Collectors()...)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "result" {
					out[l.GetValue()] = s.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

// TestPasswordCheckResults checks the result every outcome of a password check counts as: a
// full hashing queue is busy, not throttled (load, not an attack), and a context error is the
// client's only when the call's own context has ended.
func TestPasswordCheckResults(t *testing.T) {
	live := t.Context()
	ended, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want string
	}{
		{"matched", live, nil, "success"},
		{"wrong password", live, validation.Fail("current_password", "does not match"), "invalid_credentials"},
		{"throttled", live, &customer.ThrottledError{}, "throttled"},
		{"hashing queue full", live, fmt.Errorf("verify password: %w", password.ErrBusy), "busy"},
		{"client hung up, driver says interrupted", ended, errors.New("interrupted (9)"), "canceled"},
		{"lookup's own timeout", live, fmt.Errorf("session lookup: %w", context.DeadlineExceeded), "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := grpcapi.NewMetrics()
			m.PasswordChecked(tt.ctx, tt.err)
			for result, n := range counts(t, m, "customers_password_checks_total") {
				want := 0.0
				if result == tt.want {
					want = 1
				}
				if n != want {
					t.Errorf("result %q = %v, want %v", result, n, want)
				}
			}
		})
	}
}

// TestThrottledPasswordChangeCounted checks that the current-password check of a password
// change counts in customers_password_checks_total, its throttled refusals included, and not
// in customers_logins_total.
func TestThrottledPasswordChangeCounted(t *testing.T) {
	c := start(t)
	_, token := c.register(t, "ada@example.com")
	before := counts(t, c.metrics, "customers_logins_total")
	byAda := grpctest.As(t, token)
	change := func(current string) codes.Code {
		_, err := c.users.ChangePassword(byAda, &customersv1.ChangePasswordRequest{UserId: "me", CurrentPassword: current, NewPassword: "another-password"})
		return status.Code(err)
	}
	for range maxFailures {
		if got := change("wrong-password"); got != codes.InvalidArgument {
			t.Fatalf("wrong current password: %v, want InvalidArgument", got)
		}
	}
	if got := change(pw); got != codes.ResourceExhausted {
		t.Fatalf("past the limit: %v, want ResourceExhausted", got)
	}
	checks := counts(t, c.metrics, "customers_password_checks_total")
	if checks["invalid_credentials"] != maxFailures || checks["throttled"] != 1 || checks["success"] != 0 {
		t.Errorf("password checks %v, want %d invalid_credentials and 1 throttled", checks, maxFailures)
	}
	if after := counts(t, c.metrics, "customers_logins_total"); after["throttled"] != before["throttled"] || after["invalid_credentials"] != before["invalid_credentials"] {
		t.Errorf("logins %v after %v: a password change counted as a login", after, before)
	}
}
