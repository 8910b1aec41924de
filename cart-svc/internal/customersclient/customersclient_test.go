package customersclient_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	"github.com/acme/shop/foundation/poll"
	"github.com/acme/shop/foundation/service/servicetest"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"

	"github.com/acme/shop/cart-svc/internal/auth"
	"github.com/acme/shop/cart-svc/internal/cart"
	"github.com/acme/shop/cart-svc/internal/customersclient"
)

// jwt returns a token with the shape of a JWT (three segments of its alphabet) whose middle
// segment is name, which the fakes answer by.
func jwt(name string) string { return "h." + name + ".s" }

// nameOf returns the name of a token made by jwt.
func nameOf(tok string) string {
	_, rest, _ := strings.Cut(tok, ".")
	name, _, _ := strings.Cut(rest, ".")
	return name
}

// fakeCustomers answers ValidateTokens by the name of each token (jwt): "good" is valid (user
// u1, an admin), "user-<id>" is valid (user <id>), "slow" hangs the call, a name in failures
// fails the whole call with its code, and any other token is invalid.
type fakeCustomers struct {
	customersv1.UnimplementedAuthServiceServer
}

var failures = map[string]codes.Code{
	"unavailable": codes.Unavailable,
	"denied":      codes.PermissionDenied,
	"internal":    codes.Internal,
}

func (fakeCustomers) ValidateTokens(ctx context.Context, r *customersv1.ValidateTokensRequest) (*customersv1.ValidateTokensResponse, error) {
	res := &customersv1.ValidateTokensResponse{}
	for _, tok := range r.GetTokens() {
		tok = nameOf(tok)
		if tok == "slow" {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		if code, ok := failures[tok]; ok {
			return nil, status.Error(code, "no")
		}
		res.Results = append(res.Results, answer(tok, false))
	}
	return res, nil
}

// answer is the fakes' result for the token named tok.
func answer(tok string, revoked bool) *customersv1.TokenValidation {
	switch id, ok := strings.CutPrefix(tok, "user-"); {
	case revoked:
		return &customersv1.TokenValidation{}
	case tok == "good":
		return &customersv1.TokenValidation{Valid: true, UserId: "u1", Email: "a@b.co", IsAdmin: true}
	case ok:
		return &customersv1.TokenValidation{Valid: true, UserId: id, Email: id + "@b.co"}
	}
	return &customersv1.TokenValidation{}
}

// serveAuth serves auth, with a health service that says it serves, on a port of the
// loopback interface and returns the server and its address.
func serveAuth(t *testing.T, auth customersv1.AuthServiceServer) (*grpc.Server, string) {
	t.Helper()
	lis, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	customersv1.RegisterAuthServiceServer(srv, auth)
	hs := health.NewServer()
	hs.SetServingStatus("customers.v1.AuthService", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return srv, lis.Addr().String()
}

// replica is one fake customers replica that counts the validations it answers.
type replica struct {
	fakeCustomers
	srv    *grpc.Server
	health *health.Server
	addr   string
	calls  atomic.Int64
}

func (r *replica) ValidateTokens(ctx context.Context, req *customersv1.ValidateTokensRequest) (*customersv1.ValidateTokensResponse, error) {
	r.calls.Add(1)
	return r.fakeCustomers.ValidateTokens(ctx, req)
}

func serveReplica(t *testing.T) *replica {
	t.Helper()
	lis, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{srv: grpc.NewServer(), health: health.NewServer(), addr: lis.Addr().String()}
	customersv1.RegisterAuthServiceServer(r.srv, r)
	r.health.SetServingStatus("customers.v1.AuthService", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(r.srv, r.health)
	go func() { _ = r.srv.Serve(lis) }()
	t.Cleanup(r.srv.Stop)
	return r
}

// resolveTo returns a target that resolves to the addresses of replicas, as a headless
// Service's DNS name resolves to its pods.
func resolveTo(t *testing.T, replicas ...*replica) string {
	t.Helper()
	b := manual.NewBuilderWithScheme("test-" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())))
	var state resolver.State
	for _, r := range replicas {
		state.Addresses = append(state.Addresses, resolver.Address{Addr: r.addr})
	}
	b.InitialState(state)
	resolver.Register(b)
	return b.Scheme() + ":///customers"
}

// validate makes n validations and fails the test on any error.
func validate(t *testing.T, c *customersclient.Client, n int) {
	t.Helper()
	for range n {
		if _, err := c.Validate(context.Background(), jwt("good")); err != nil {
			t.Fatalf("Validate: %v", err)
		}
	}
}

// TestBalancesOverReplicas: validations spread round-robin over every address the target
// resolves to; a replica that reports NOT_SERVING (it is draining) gets none until it serves
// again.
func TestBalancesOverReplicas(t *testing.T) {
	a, b := serveReplica(t), serveReplica(t)
	c := newClient(t, resolveTo(t, a, b), 2*time.Second)
	// Both connections up: the balancer picks only among connected replicas.
	poll.Until(t, func() error {
		validate(t, c, 1)
		if a.calls.Load() == 0 || b.calls.Load() == 0 {
			return fmt.Errorf("calls per replica = %d and %d, want both used", a.calls.Load(), b.calls.Load())
		}
		return nil
	})
	a.calls.Store(0)
	b.calls.Store(0)
	validate(t, c, 40)
	if d := a.calls.Load() - b.calls.Load(); d < -2 || d > 2 {
		t.Errorf("calls per replica = %d and %d, want 20 each (round-robin)", a.calls.Load(), b.calls.Load())
	}

	a.health.SetServingStatus("customers.v1.AuthService", healthpb.HealthCheckResponse_NOT_SERVING)
	poll.Until(t, func() error {
		before := a.calls.Load()
		validate(t, c, 10)
		if n := a.calls.Load() - before; n != 0 {
			return fmt.Errorf("a replica that reports NOT_SERVING got %d of 10 validations", n)
		}
		return nil
	})
	before := a.calls.Load()
	validate(t, c, 20)
	if a.calls.Load() != before {
		t.Errorf("a draining replica got %d of 20 validations, want none", a.calls.Load()-before)
	}
}

// TestReplicaKilledUnderLoad: one replica stops abruptly while validations run from many
// goroutines; every validation still succeeds, on the other replica.
func TestReplicaKilledUnderLoad(t *testing.T) {
	a, b := serveReplica(t), serveReplica(t)
	c := newClient(t, resolveTo(t, a, b), 2*time.Second)
	validate(t, c, 10)
	aBefore, bBefore := a.calls.Load(), b.calls.Load()
	var wg sync.WaitGroup
	var (
		failed   atomic.Int64
		firstErr atomic.Value
	)
	stop := make(chan struct{})
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := c.Validate(context.Background(), jwt("good")); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		})
	}
	// servedSince waits until r has answered n validations of the load since it had answered
	// from.
	servedSince := func(r *replica, from int64, n int64) {
		t.Helper()
		poll.Until(t, func() error {
			if got := r.calls.Load() - from; got < n {
				return fmt.Errorf("%s answered %d validations of the load, want %d", r.addr, got, n)
			}
			return nil
		})
	}
	servedSince(a, aBefore, 20)
	servedSince(b, bBefore, 20)
	a.srv.Stop() // closes every connection at once, calls in flight included
	servedSince(b, b.calls.Load(), 200)
	close(stop)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Errorf("%d validations failed when one of two replicas was killed, want 0; first: %v", n, firstErr.Load())
	}
	if b.calls.Load() == 0 {
		t.Error("the surviving replica answered nothing")
	}
}

func newClient(t *testing.T, addr string, timeout time.Duration) *customersclient.Client {
	t.Helper()
	c, err := customersclient.New(addr, nil, timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// dial serves auth as serveAuth does and returns a client of it with timeout.
func dial(t *testing.T, auth customersv1.AuthServiceServer, timeout time.Duration) *customersclient.Client {
	t.Helper()
	_, addr := serveAuth(t, auth)
	return newClient(t, addr, timeout)
}

func TestValidateMapping(t *testing.T) {
	c := dial(t, fakeCustomers{}, 300*time.Millisecond)
	ctx := context.Background()

	got, err := c.Validate(ctx, jwt("good"))
	if err != nil || got != (cart.Caller{UserID: "u1", IsAdmin: true}) {
		t.Errorf("good token = %+v, %v", got, err)
	}
	tests := []struct {
		token string
		want  error
	}{
		{jwt("revoked"), auth.ErrInvalidToken},
		{"", auth.ErrInvalidToken},
		{strings.Repeat("x", 4097), auth.ErrInvalidToken},
		{jwt("unavailable"), auth.ErrUnavailable},
		{jwt("slow"), auth.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%.12s", tt.token), func(t *testing.T) {
			if _, err := c.Validate(ctx, tt.token); !errors.Is(err, tt.want) {
				t.Errorf("error = %v, want %v", err, tt.want)
			}
		})
	}
	for _, tok := range []string{"denied", "internal"} {
		_, err := c.Validate(ctx, jwt(tok))
		if err == nil || errors.Is(err, auth.ErrInvalidToken) || errors.Is(err, auth.ErrUnavailable) {
			t.Errorf("%s: error = %v, want an error of its own", tok, err)
		}
	}
	if err := c.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}

	// A caller that gave up gets its own context's error, not "customers unavailable": the
	// call ends CANCELED or DEADLINE_EXCEEDED, never counted as a failure of customers.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := c.Validate(short, jwt("slow")); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, auth.ErrUnavailable) {
		t.Errorf("slow token, caller's deadline first: error = %v, want context.DeadlineExceeded", err)
	}
	gone, cancelNow := context.WithCancel(ctx)
	cancelNow()
	if _, err := c.Validate(gone, jwt("good")); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: error = %v, want context.Canceled", err)
	}
}

func TestReachableGauge(t *testing.T) {
	c := dial(t, fakeCustomers{}, 300*time.Millisecond)
	reachable := func() float64 { return testutil.ToFloat64(c.Collectors()[0]) }
	for _, step := range []struct {
		token string
		want  float64
	}{{"good", 1}, {"unavailable", 0}, {"revoked", 1}, {"slow", 0}, {"good", 1}} {
		_, _ = c.Validate(context.Background(), jwt(step.token))
		if got := reachable(); got != step.want {
			t.Errorf("after %q: cart_customers_reachable = %v, want %v", step.token, got, step.want)
		}
	}
}

// TestRecoversWhenCustomersReturns stops the server, checks that calls fail fast as
// unavailable, starts it again behind the same address and checks that the same client works
// again without being recreated.
func TestRecoversWhenCustomersReturns(t *testing.T) {
	srv, addr := serveAuth(t, fakeCustomers{})
	// The client's fixed address: the restarted server listens on a port of its own.
	proxy := servicetest.NewProxy(t)
	proxy.Forward(addr)
	c := newClient(t, proxy.Addr, time.Second)
	ctx := context.Background()
	if _, err := c.Validate(ctx, jwt("good")); err != nil {
		t.Fatal(err)
	}
	proxy.Forward("")
	srv.Stop()
	start := time.Now()
	if _, err := c.Validate(ctx, jwt("good")); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("with customers down: %v, want ErrUnavailable", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("unavailable answer took %v, beyond the 1s deadline", elapsed)
	}
	if err := c.Ping(ctx); err == nil {
		t.Error("Ping succeeded with customers down")
	}
	_, addr = serveAuth(t, fakeCustomers{})
	proxy.Forward(addr)
	poll.Until(t, func() error {
		_, err := c.Validate(ctx, jwt("good"))
		return err
	})
}

// gatedCustomers answers ValidateTokens as fakeCustomers does, with the revocations made
// before each call arrived, but holds every call until release is closed. It counts the calls
// and tells entered the names of each call's tokens.
type gatedCustomers struct {
	customersv1.UnimplementedAuthServiceServer
	release chan struct{}
	entered chan []string
	calls   atomic.Int64

	mu      sync.Mutex
	revoked map[string]bool
}

func newGated(t *testing.T) *gatedCustomers {
	g := &gatedCustomers{release: make(chan struct{}), entered: make(chan []string, 1000), revoked: map[string]bool{}}
	t.Cleanup(g.open)
	return g
}

func (g *gatedCustomers) open() {
	select {
	case <-g.release:
	default:
		close(g.release)
	}
}

func (g *gatedCustomers) revoke(tok string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.revoked[tok] = true
}

func (g *gatedCustomers) ValidateTokens(ctx context.Context, r *customersv1.ValidateTokensRequest) (*customersv1.ValidateTokensResponse, error) {
	g.calls.Add(1)
	res := &customersv1.ValidateTokensResponse{}
	g.mu.Lock()
	var names []string
	for _, tok := range r.GetTokens() {
		names = append(names, nameOf(tok))
		res.Results = append(res.Results, answer(nameOf(tok), g.revoked[nameOf(tok)]))
	}
	g.mu.Unlock()
	g.entered <- names
	select {
	case <-g.release:
		return res, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// waitQueued waits until n validations wait for a call to start.
func waitQueued(t *testing.T, c *customersclient.Client, n int) {
	t.Helper()
	poll.Until(t, func() error {
		if q := customersclient.Queued(c); q < n {
			return fmt.Errorf("%d validations queued, want %d", q, n)
		}
		return nil
	})
}

type validation struct {
	caller cart.Caller
	err    error
}

// validateAsync starts a validation of the token named name (jwt) and returns where its answer
// will be.
func validateAsync(ctx context.Context, c *customersclient.Client, name string) <-chan validation {
	ch := make(chan validation, 1)
	go func() {
		caller, err := c.Validate(ctx, jwt(name))
		ch <- validation{caller, err}
	}()
	return ch
}

// TestCoalesces: an idle client calls at once; the validations that arrive while that call
// runs go together in the next call, each answered for its own token (a token asked twice
// once); and there are never more tokens in a call than ValidateTokens allows.
func TestCoalesces(t *testing.T) {
	g := newGated(t)
	c := dial(t, g, 5*time.Second)
	ctx := context.Background()

	first := validateAsync(ctx, c, "user-first")
	if got := <-g.entered; !slices.Equal(got, []string{"user-first"}) {
		t.Fatalf("first call's tokens = %v, want the first validation's alone, at once", got)
	}
	const n = 300
	answers := make([]<-chan validation, n)
	for i := range n {
		tok := fmt.Sprintf("user-%d", i)
		switch i % 10 {
		case 0:
			tok = "forged"
		case 1:
			tok = "user-0" // the same user's parallel requests
		}
		answers[i] = validateAsync(ctx, c, tok)
	}
	waitQueued(t, c, n)
	g.open()
	if v := <-first; v.err != nil || v.caller.UserID != "first" {
		t.Errorf("first validation = %+v, %v", v.caller, v.err)
	}
	for i, ch := range answers {
		v := <-ch
		switch i % 10 {
		case 0:
			if !errors.Is(v.err, auth.ErrInvalidToken) {
				t.Errorf("validation %d (forged) = %+v, %v; want ErrInvalidToken", i, v.caller, v.err)
			}
		case 1:
			if v.err != nil || v.caller.UserID != "0" {
				t.Errorf("validation %d (user-0) = %+v, %v", i, v.caller, v.err)
			}
		default:
			if want := strconv.Itoa(i); v.err != nil || v.caller.UserID != want {
				t.Errorf("validation %d = %+v, %v; want user %s", i, v.caller, v.err, want)
			}
		}
	}
	// 1 call at once, then the 300 queued validations in batches of at most 128.
	if got := g.calls.Load(); got != 4 {
		t.Errorf("%d validations made %d ValidateTokens calls, want 4 (1, then 300 in batches of at most 128)", n+1, got)
	}
	close(g.entered)
	for tokens := range g.entered {
		if len(tokens) > 128 || len(tokens) != len(slices.Compact(slices.Sorted(slices.Values(tokens)))) {
			t.Errorf("a call carried %d tokens, want at most 128, none twice", len(tokens))
		}
	}
}

// TestRevokedWhileInFlight: a validation that starts after a revocation returned is answered
// by a call that started after it, so it refuses the token, even though a call for the same
// token, started before the revocation, is still running.
func TestRevokedWhileInFlight(t *testing.T) {
	g := newGated(t)
	c := dial(t, g, 5*time.Second)
	ctx := context.Background()

	before := validateAsync(ctx, c, "user-a")
	<-g.entered // customers read the session before the revocation
	g.revoke("user-a")
	after := validateAsync(ctx, c, "user-a")
	waitQueued(t, c, 1)
	g.open()
	if v := <-before; v.err != nil || v.caller.UserID != "a" {
		t.Errorf("validation started before the revocation = %+v, %v; want valid", v.caller, v.err)
	}
	if v := <-after; !errors.Is(v.err, auth.ErrInvalidToken) {
		t.Errorf("validation started after the revocation = %+v, %v; want ErrInvalidToken", v.caller, v.err)
	}
}

// TestQueuedCallerDeadline: a validation queued behind a call that hangs ends with its
// caller's deadline (a context error, not ErrUnavailable) when that comes first, and with
// ErrUnavailable after the client's timeout otherwise: waiting for the call in front does not
// stretch it.
func TestQueuedCallerDeadline(t *testing.T) {
	g := newGated(t)
	const timeout = time.Second
	c := dial(t, g, timeout)

	start := time.Now()
	hung := validateAsync(context.Background(), c, "user-a")
	<-g.entered
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Validate(short, jwt("user-b")); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, auth.ErrUnavailable) {
		t.Errorf("queued caller with a 50 ms deadline: error = %v, want context.DeadlineExceeded", err)
	}
	if _, err := c.Validate(context.Background(), jwt("user-c")); !errors.Is(err, auth.ErrUnavailable) {
		t.Errorf("queued caller without a deadline: error = %v, want ErrUnavailable", err)
	}
	// Its own call would have ended a timeout after the hung one did.
	if elapsed := time.Since(start); elapsed > timeout*19/10 {
		t.Errorf("queued caller answered after %v, want about the client's timeout %v", elapsed, timeout)
	}
	if v := <-hung; !errors.Is(v.err, auth.ErrUnavailable) {
		t.Errorf("hung call: error = %v, want ErrUnavailable", v.err)
	}
}

// TestMalformedTokensRefusedWithoutACall: a token without the shape ValidateTokenRequest's rule
// asks for (1 to 4,096 bytes of the JWT alphabet, three segments) is invalid at once and never
// joins a call, where it could fail the call (invalid UTF-8 cannot be marshalled) or swell it
// past customers' message limit; the longest well-formed token is asked about.
func TestMalformedTokensRefusedWithoutACall(t *testing.T) {
	r := serveReplica(t)
	c := newClient(t, r.addr, 2*time.Second)
	ctx := context.Background()
	for _, tt := range []struct{ name, token string }{
		{"empty", ""},
		{"invalid UTF-8", "eyJ\xff.e30.c2ln"},
		{"4,000 four-byte characters", strings.Repeat("\U0001F600", 4000)},
		{"multi-byte in a segment", "eyJ.é30.c2ln"},
		{"4,097 bytes", strings.Repeat("a", 4093) + ".b.c"},
		{"two segments", "eyJ.e30"},
		{"four segments", "a.b.c.d"},
		{"an empty segment", "a..c"},
		{"a space", "a b.c.d"},
		{"standard base64", "a+/=.b.c"},
		{"a NUL byte", "a\x00.b.c"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.Validate(ctx, tt.token); !errors.Is(err, auth.ErrInvalidToken) {
				t.Errorf("error = %v, want ErrInvalidToken", err)
			}
			if n := r.calls.Load(); n != 0 {
				t.Errorf("%d calls to customers, want none", n)
			}
		})
	}
	if _, err := c.Validate(ctx, strings.Repeat("a", 4092)+".b.c"); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("4,096 bytes of the alphabet: error = %v, want ErrInvalidToken from customers", err)
	}
	if n := r.calls.Load(); n != 1 {
		t.Errorf("4,096 bytes of the alphabet: %d calls to customers, want 1", n)
	}
}

// poisonCustomers fails a whole ValidateTokens call with code when it carries the token named
// "poison", and answers any other call as fakeCustomers does. It holds its first call until
// release is closed, so that the validations that arrive meanwhile go together in the next.
type poisonCustomers struct {
	customersv1.UnimplementedAuthServiceServer
	code    codes.Code
	entered chan struct{}
	release chan struct{}
	calls   atomic.Int64
}

func (p *poisonCustomers) ValidateTokens(ctx context.Context, r *customersv1.ValidateTokensRequest) (*customersv1.ValidateTokensResponse, error) {
	if p.calls.Add(1) == 1 {
		p.entered <- struct{}{}
		<-p.release
	}
	for _, tok := range r.GetTokens() {
		if nameOf(tok) == "poison" {
			return nil, status.Error(p.code, "cannot check these tokens")
		}
	}
	return fakeCustomers{}.ValidateTokens(ctx, r)
}

// TestWholeBatchFailureAskedAgainByHalves: when a call fails as a whole for a reason other than
// customers' unavailability, its tokens are asked about again by halves, so that only the
// request whose token caused the failure fails; when customers is unavailable, the call is not
// split (that would only add to its load) and every token of it is unavailable.
func TestWholeBatchFailureAskedAgainByHalves(t *testing.T) {
	const n, poison = 40, 17
	for _, tt := range []struct {
		name  string
		code  codes.Code
		split bool
	}{
		{"internal", codes.Internal, true},
		{"invalid argument", codes.InvalidArgument, true},
		{"resource exhausted (a message too large)", codes.ResourceExhausted, true},
		{"unimplemented", codes.Unimplemented, true},
		{"unavailable", codes.Unavailable, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := &poisonCustomers{code: tt.code, entered: make(chan struct{}, 1), release: make(chan struct{})}
			c := dial(t, p, 5*time.Second)
			ctx := context.Background()
			first := validateAsync(ctx, c, "user-first")
			<-p.entered
			answers := make([]<-chan validation, n)
			for i := range n {
				name := "user-" + strconv.Itoa(i)
				if i == poison {
					name = "poison"
				}
				answers[i] = validateAsync(ctx, c, name)
			}
			waitQueued(t, c, n)
			close(p.release)
			if v := <-first; v.err != nil {
				t.Errorf("first validation: %v", v.err)
			}
			for i, ch := range answers {
				v := <-ch
				switch {
				case i == poison:
					if v.err == nil || errors.Is(v.err, auth.ErrInvalidToken) {
						t.Errorf("the poisonous token: error = %v, want an error that is not ErrInvalidToken", v.err)
					}
				case tt.split:
					if want := strconv.Itoa(i); v.err != nil || v.caller.UserID != want {
						t.Errorf("validation %d = %+v, %v; want user %s", i, v.caller, v.err, want)
					}
				default:
					if !errors.Is(v.err, auth.ErrUnavailable) {
						t.Errorf("validation %d: error = %v, want ErrUnavailable", i, v.err)
					}
				}
			}
			// By halves: the failed call, then two calls for each of the ceil(log2 40) = 6 levels
			// down to the poisonous token alone. Unavailable: the call with the connection's
			// retries (retryPolicy.maxAttempts 3), asked once more with its retries.
			maxCalls := int64(1 + 1 + 2*6)
			if !tt.split {
				maxCalls = 1 + 3 + 3
			}
			if got := p.calls.Load(); got > maxCalls {
				t.Errorf("%d ValidateTokens calls, want at most %d", got, maxCalls)
			}
		})
	}
}
