package grpcapi

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/acme/shop/customers-svc/internal/customer"
	"github.com/acme/shop/customers-svc/internal/password"
)

// metrics are the customers service's own series, beside the gRPC ones every service has:
// what an operator asks of logins and token checks that a status code cannot answer (a
// throttled login and a wrong password are both refusals, but only one means an attack).
type metrics struct {
	logins      *prometheus.CounterVec
	validations *prometheus.CounterVec
}

// Results of a login (customers_logins_total) and of a token check
// (customers_token_validations_total).
const (
	resultSuccess            = "success"
	resultInvalidCredentials = "invalid_credentials" //nolint:gosec // a metric label, not a credential
	resultThrottled          = "throttled"
	resultValid              = "valid"
	resultInvalid            = "invalid"
	resultCanceled           = "canceled"
	resultError              = "error"
)

// newMetrics returns the series at zero for every result.
func newMetrics() *metrics {
	m := &metrics{
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "customers_logins_total",
			Help: "Logins by result: success, invalid_credentials (unknown email or wrong password), throttled (refused before any password was checked), canceled (the client gave up), error.",
		}, []string{"result"}),
		validations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "customers_token_validations_total",
			Help: "Tokens checked (one per ValidateToken call, one per token of a ValidateTokens call) by result: valid, invalid (expired, revoked, forged or of a deleted user), canceled, error.",
		}, []string{"result"}),
	}
	for _, r := range []string{resultSuccess, resultInvalidCredentials, resultThrottled, resultCanceled, resultError} {
		m.logins.WithLabelValues(r)
	}
	for _, r := range []string{resultValid, resultInvalid, resultCanceled, resultError} {
		m.validations.WithLabelValues(r)
	}
	return m
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.logins, m.validations}
}

func (m *metrics) login(err error) {
	var throttled *customer.ThrottledError
	switch {
	case err == nil:
		m.logins.WithLabelValues(resultSuccess).Inc()
	case errors.As(err, &throttled), errors.Is(err, password.ErrBusy):
		m.logins.WithLabelValues(resultThrottled).Inc()
	case errors.Is(err, customer.ErrUnauthenticated):
		m.logins.WithLabelValues(resultInvalidCredentials).Inc()
	default:
		m.logins.WithLabelValues(failure(err)).Inc()
	}
}

func (m *metrics) validation(err error) {
	switch {
	case err == nil:
		m.validations.WithLabelValues(resultValid).Inc()
	case errors.Is(err, customer.ErrUnauthenticated):
		m.validations.WithLabelValues(resultInvalid).Inc()
	default:
		m.validations.WithLabelValues(failure(err)).Inc()
	}
}

// failure tells a client that gave up from a failure of the service.
func failure(err error) string {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return resultCanceled
	}
	return resultError
}
