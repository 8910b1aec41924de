// Package customersclient is the adapter between cart's auth.Validator and the customers
// service's ValidateTokens RPC, over one long-lived gRPC connection created at start-up.
//
// Validations of concurrent requests are coalesced into one ValidateTokens call by a
// batch.Loader, with its rules: an idle client calls at once, nothing waits for a batch to
// fill, one call runs at a time and the tokens asked meanwhile go together in the next, so a
// token is only ever answered by a call that started after it was asked (a revoked token is
// refused as soon as the revocation returns). No token fails the requests of the others it is
// checked with: a token without the shape of one is refused before it joins a call, and a call
// that fails as a whole for any reason but customers' unavailability is asked again by halves.
package customersclient

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"buf.build/go/protovalidate"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/health" // client-side health checking (healthCheckConfig)
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver/dns"
	"google.golang.org/grpc/status"

	"github.com/acme/shop/foundation/batch"
	"github.com/acme/shop/foundation/logging"
	"github.com/acme/shop/foundation/telemetry"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"

	"github.com/acme/shop/cart-svc/internal/auth"
	"github.com/acme/shop/cart-svc/internal/cart"
)

// Client validates tokens with the customers service.
type Client struct {
	conn    *grpc.ClientConn
	auth    customersv1.AuthServiceClient
	users   customersv1.UserServiceClient
	health  healthpb.HealthClient
	timeout time.Duration
	// tokens coalesces concurrent validations into ValidateTokens calls.
	tokens *batch.Loader[string, verdict]
	// reachable is cart_customers_reachable: 1 when the last call to customers (a validation
	// or a health check) was answered, 0 when customers could not be reached.
	reachable prometheus.Gauge
}

// MinResolutionInterval is how often, at most, cart resolves customers' name again. grpc-go
// resolves when a connection ends, which customers' maximum connection age makes happen every
// few minutes, but by default no sooner than 30 s after the previous resolution; 5 s lets a
// replica added since get its share right after the next connection ends, and still spares
// the name server a storm when many connections end at once.
const MinResolutionInterval = 5 * time.Second

// grpc-go asks that this be set once, before any call, so at package initialization.
func init() { dns.SetMinResolutionInterval(MinResolutionInterval) }

// maxTokens is the most tokens one ValidateTokens call may carry (the max_items of
// ValidateTokensRequest.tokens in customers/v1/auth.proto).
const maxTokens = 128

// serviceConfig balances over every address the target resolves to (a headless Service's
// name resolves to every customers replica), leaves out a replica whose health service says
// it is not serving customers.v1.AuthService (it drains before it stops), and retries
// ValidateToken and ValidateTokens, which only read, on another replica when one is
// unreachable.
const serviceConfig = `{
  "loadBalancingConfig": [{"round_robin": {}}],
  "healthCheckConfig": {"serviceName": "customers.v1.AuthService"},
  "methodConfig": [{
    "name": [
      {"service": "customers.v1.AuthService", "method": "ValidateToken"},
      {"service": "customers.v1.AuthService", "method": "ValidateTokens"}
    ],
    "retryPolicy": {
      "maxAttempts": 3,
      "initialBackoff": "0.02s",
      "maxBackoff": "0.2s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}`

// New creates the connection to customers at target, a gRPC target such as
// "dns:///customers-grpc:50051" or "localhost:50051": with creds (tlsconfig.Watcher.Client), else in
// plaintext. Calls are balanced round-robin over every address the name resolves to (see
// serviceConfig); customers closes connections after a maximum age, upon which the name is
// resolved again and replicas added since get their share.
// The connection is lazy and self-healing: it dials on first use, keeps itself alive with
// pings, and reconnects with a short backoff (at most 2 s) after customers comes back. Each
// ValidateTokens call gets timeout as its deadline, retries included, and no validation waits
// longer than timeout for its answer. opts are added to the connection's
// (telemetry.Telemetry.ClientOptions). Close the Client when done.
func New(target string, creds credentials.TransportCredentials, timeout time.Duration, opts ...grpc.DialOption) (*Client, error) {
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(target, append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultServiceConfig(serviceConfig),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 5 * time.Second}),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: timeout,
		}),
	}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("customers client: %w", err)
	}
	c := &Client{
		conn: conn, timeout: timeout,
		auth:   customersv1.NewAuthServiceClient(conn),
		users:  customersv1.NewUserServiceClient(conn),
		health: healthpb.NewHealthClient(conn),
		reachable: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cart_customers_reachable",
			Help: "1 when cart's last call to customers (a token validation or a health check) was answered, 0 when customers could not be reached.",
		}),
	}
	c.tokens = batch.New(c.validateTokens, maxTokens, timeout)
	return c, nil
}

// verdict is what the checks of one token came to: its caller when valid, or the error that
// kept it from being checked.
type verdict struct {
	caller cart.Caller
	valid  bool
	err    error
}

// ObserveBatches has f called with the number of distinct tokens of every ValidateTokens
// call. Call it before the first Validate.
func (c *Client) ObserveBatches(f func(keys int)) { c.tokens.Observe(f) }

// validateTokens is the Loader's fetch: a verdict for each of tokens (distinct, at most
// maxTokens), from one ValidateTokens call unless it fails; its context ends after the client's
// timeout.
func (c *Client) validateTokens(ctx context.Context, tokens []string) (map[string]verdict, error) {
	// The call is made for every request in the batch: it carries all their request ids, so
	// that customers' log line of it names each (its trace continues the first request's).
	if ids := requestIDs(batch.Callers(ctx)); len(ids) > 1 {
		ctx = logging.WithRequestID(ctx, strings.Join(ids, ","))
	}
	verdicts := make(map[string]verdict, len(tokens))
	c.check(ctx, tokens, verdicts)
	return verdicts, nil
}

// check asks customers about tokens with one ValidateTokens call and writes each token's
// verdict into verdicts. An invalid token is a result, never the call's status, so a call that
// fails as a whole says nothing about its tokens: unless customers is unavailable, check asks
// again about each half, down to single tokens, so that whatever failed the call (a token
// customers cannot read, say) fails only the requests that carry it. When customers is
// unavailable, splitting would only add to its load: the call is asked once more as a whole
// (below), then every token gets that error.
func (c *Client) check(ctx context.Context, tokens []string, verdicts map[string]verdict) {
	req := &customersv1.ValidateTokensRequest{Tokens: tokens}
	res, err := c.auth.ValidateTokens(ctx, req)
	if status.Code(err) == codes.Unavailable && ctx.Err() == nil {
		// A replica that stopped after it had begun to answer cuts the call ("error reading
		// from server: EOF") once gRPC counts it committed, so the retry policy cannot repeat
		// it. It only reads: ask once more, and the balancer, which has seen the connection
		// close, sends it to another replica.
		res, err = c.auth.ValidateTokens(ctx, req)
	}
	if err == nil && len(res.GetResults()) != len(tokens) {
		err = fmt.Errorf("customers ValidateTokens answered %d results for %d tokens", len(res.GetResults()), len(tokens))
	}
	if err != nil {
		if half := len(tokens) / 2; half > 0 && !unavailable(err) && ctx.Err() == nil {
			c.check(ctx, tokens[:half], verdicts)
			c.check(ctx, tokens[half:], verdicts)
			return
		}
		for _, tok := range tokens {
			verdicts[tok] = verdict{err: err}
		}
		return
	}
	for i, r := range res.GetResults() {
		verdicts[tokens[i]] = verdict{valid: r.GetValid(), caller: cart.Caller{UserID: r.GetUserId(), IsAdmin: r.GetIsAdmin()}}
	}
}

// unavailable reports whether err, a ValidateTokens call's, means that customers could not
// answer (down, overloaded, too slow), rather than that it could not answer this call.
func unavailable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return true
	}
	return false
}

// requestIDs returns the distinct request ids of callers, at most telemetry.MaxBatchedIDs.
func requestIDs(callers []context.Context) []string {
	var ids []string
	for _, c := range callers {
		if id := logging.RequestID(c); id != "" && !slices.Contains(ids, id) && len(ids) < telemetry.MaxBatchedIDs {
			ids = append(ids, id)
		}
	}
	return ids
}

// Collectors are the client's own series (the gRPC client metrics come with the options).
func (c *Client) Collectors() []prometheus.Collector { return []prometheus.Collector{c.reachable} }

// answered records whether customers answered a call.
func (c *Client) answered(yes bool) {
	if yes {
		c.reachable.Set(1)
	} else {
		c.reachable.Set(0)
	}
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Validate implements auth.Validator. A token customers finds invalid becomes
// ErrInvalidToken; UNAVAILABLE, a timeout or an unreachable service become ErrUnavailable; a
// caller that gave up (its context ended) gets its context's error, which is not customers'
// fault; anything else is an error of its own, which the interceptor answers with a generic
// INTERNAL. customers' codes are never passed through as they are.
func (c *Client) Validate(ctx context.Context, token string) (cart.Caller, error) {
	// A token without the shape of one (ValidateTokenRequest's rule: 1 to 4,096 bytes of the
	// JWT alphabet, three segments) cannot be valid, and would weigh on the call it joined, or
	// fail it (invalid UTF-8 cannot be marshalled): it is refused here, without a call.
	if protovalidate.Validate(&customersv1.ValidateTokenRequest{Token: token}) != nil {
		return cart.Caller{}, auth.ErrInvalidToken
	}
	// A validation may wait for the call in front of it before its own starts: timeout bounds
	// the whole wait, as it bounded one call before validations were coalesced.
	waitCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	v, _, err := c.tokens.Load(waitCtx, token)
	if err == nil {
		err = v.err
	}
	if err == nil {
		c.answered(true)
		if !v.valid {
			return cart.Caller{}, auth.ErrInvalidToken
		}
		return v.caller, nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return cart.Caller{}, ctxErr
	}
	// grpc-go times a call out by its own timer, which may fire a moment before the context's.
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return cart.Caller{}, context.DeadlineExceeded
	}
	if waitCtx.Err() != nil {
		c.answered(false)
		return cart.Caller{}, fmt.Errorf("%w: no answer within %v: %w", auth.ErrUnavailable, c.timeout, waitCtx.Err())
	}
	// An invalid token is a result, never the call's status: a call that fails UNAUTHENTICATED
	// or INVALID_ARGUMENT as a whole is an error of its own, not a verdict on every token in it.
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		c.answered(false)
		return cart.Caller{}, fmt.Errorf("%w: %w", auth.ErrUnavailable, err)
	case codes.ResourceExhausted:
		c.answered(true)
		return cart.Caller{}, fmt.Errorf("%w: %w", auth.ErrUnavailable, err)
	default:
		c.answered(true)
		return cart.Caller{}, fmt.Errorf("customers ValidateTokens: %w", err)
	}
}

// ExistingUsers returns those of ids whose users exist at customers (cart.Users), asking
// customers in one call, within the client's timeout.
func (c *Client) ExistingUsers(ctx context.Context, ids []string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res, err := c.users.ExistingUsers(ctx, &customersv1.ExistingUsersRequest{UserIds: ids})
	if err != nil {
		return nil, fmt.Errorf("customers ExistingUsers: %w", err)
	}
	return res.GetUserIds(), nil
}

// Ping checks that customers answers its health check; it backs cart's /readyz.
func (c *Client) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res, err := c.health.Check(ctx, &healthpb.HealthCheckRequest{})
	c.answered(err == nil)
	if err != nil {
		return fmt.Errorf("customers health check: %w", err)
	}
	if res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return errors.New("customers is not serving")
	}
	return nil
}

var _ auth.Validator = (*Client)(nil)
