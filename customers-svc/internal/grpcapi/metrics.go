package grpcapi

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/acme/shop/customers-svc/internal/customer"
	"github.com/acme/shop/customers-svc/internal/password"
	"github.com/acme/shop/foundation/validation"
)

// Metrics are the customers service's own series, beside the gRPC ones every service has:
// what an operator asks of password checks and token checks that a status code cannot answer
// (a throttled login and a wrong password are both refusals, but only one means an attack; a
// full hashing queue is load, not an attack).
type Metrics struct {
	logins         *prometheus.CounterVec
	passwordChecks *prometheus.CounterVec
	validations    *prometheus.CounterVec
}

// Results of a login (customers_logins_total), of the current-password check of an account
// change (customers_password_checks_total) and of a token check
// (customers_token_validations_total).
const (
	resultSuccess            = "success"
	resultInvalidCredentials = "invalid_credentials" //nolint:gosec // a metric label, not a credential
	resultThrottled          = "throttled"
	resultBusy               = "busy"
	resultValid              = "valid"
	resultInvalid            = "invalid"
	resultCanceled           = "canceled"
	resultError              = "error"
)

// NewMetrics returns the series at zero for every result. Pass PasswordChecked to the
// customer.Service (customer.Options) and the Metrics to NewAuthServer.
func NewMetrics() *Metrics {
	m := &Metrics{
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "customers_logins_total",
			Help: "Logins by result: success, invalid_credentials (unknown email or wrong password), throttled (refused by the failed-login limits before any password was checked: guessing, or a user who forgot), busy (refused because the password hashing queue was full: load), canceled (the client gave up), error.",
		}, []string{"result"}),
		passwordChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "customers_password_checks_total",
			Help: "Current-password checks of users changing their own password or email or deleting their own account, by result, as customers_logins_total: a throttled one is a stolen token used to guess the password.",
		}, []string{"result"}),
		validations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "customers_token_validations_total",
			Help: "Tokens checked (one per ValidateToken call, one per token of a ValidateTokens call) by result: valid, invalid (expired, revoked, forged or of a deleted user), canceled (the caller gave up), error.",
		}, []string{"result"}),
	}
	for _, r := range []string{resultSuccess, resultInvalidCredentials, resultThrottled, resultBusy, resultCanceled, resultError} {
		m.logins.WithLabelValues(r)
		m.passwordChecks.WithLabelValues(r)
	}
	for _, r := range []string{resultValid, resultInvalid, resultCanceled, resultError} {
		m.validations.WithLabelValues(r)
	}
	return m
}

// Collectors are the series (customers_logins_total, customers_password_checks_total,
// customers_token_validations_total).
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.logins, m.passwordChecks, m.validations}
}

func (m *Metrics) login(ctx context.Context, err error) {
	m.logins.WithLabelValues(passwordResult(ctx, err)).Inc()
}

// PasswordChecked counts a current-password check that ended with err (customer.Options).
func (m *Metrics) PasswordChecked(ctx context.Context, err error) {
	m.passwordChecks.WithLabelValues(passwordResult(ctx, err)).Inc()
}

func (m *Metrics) validation(ctx context.Context, err error) {
	switch {
	case err == nil:
		m.validations.WithLabelValues(resultValid).Inc()
	case errors.Is(err, customer.ErrUnauthenticated):
		m.validations.WithLabelValues(resultInvalid).Inc()
	default:
		m.validations.WithLabelValues(failure(ctx, err)).Inc()
	}
}

// passwordResult is the result of a login or a current-password check that ended with err: a
// login's wrong password is customer.ErrUnauthenticated, a password check's a validation error
// on current_password.
func passwordResult(ctx context.Context, err error) string {
	var (
		throttled *customer.ThrottledError
		invalid   *validation.Error
	)
	switch {
	case err == nil:
		return resultSuccess
	case errors.As(err, &throttled):
		return resultThrottled
	case errors.Is(err, password.ErrBusy):
		return resultBusy
	case errors.Is(err, customer.ErrUnauthenticated), errors.As(err, &invalid):
		return resultInvalidCredentials
	}
	return failure(ctx, err)
}

// failure tells a client that gave up from a failure of the service by the call's own context,
// as grpcserver does: a context error while it is live (a lookup's own timeout) is the
// service's.
func failure(ctx context.Context, err error) string {
	if ctx.Err() != nil {
		return resultCanceled
	}
	return resultError
}
