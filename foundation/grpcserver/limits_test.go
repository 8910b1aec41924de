package grpcserver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/acme/shop/foundation/grpcserver"
	"github.com/acme/shop/foundation/poll"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"
)

// h2 is an attacker's HTTP/2 connection to a gRPC server: raw frames, none of the manners of a
// gRPC client (which would queue streams beyond the server's limit and refuse to send an
// oversized header list itself).
type h2 struct {
	t        *testing.T
	conn     net.Conn
	fr       *http2.Framer
	settings map[http2.SettingID]uint32
}

// listen serves users through grpcserver.New with opts on a loopback port and returns its
// address.
func listen(t *testing.T, opts grpcserver.Options) string {
	t.Helper()
	opts.Logger = slog.New(slog.DiscardHandler)
	srv, err := grpcserver.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	customersv1.RegisterUserServiceServer(srv, users{})
	lis, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.GRPC.Serve(lis) }()
	t.Cleanup(srv.GRPC.Stop)
	return lis.Addr().String()
}

// dialH2 opens a connection, exchanges the prefaces and reads the server's settings.
func dialH2(t *testing.T, addr string) *h2 {
	t.Helper()
	conn, err := new(net.Dialer).DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	c := &h2{t: t, conn: conn, fr: http2.NewFramer(conn, conn), settings: map[http2.SettingID]uint32{}}
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := c.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	for {
		f := c.read()
		if s, ok := f.(*http2.SettingsFrame); ok && !s.IsAck() {
			_ = s.ForeachSetting(func(s http2.Setting) error { c.settings[s.ID] = s.Val; return nil })
			if err := c.fr.WriteSettingsAck(); err != nil {
				t.Fatal(err)
			}
			return c
		}
	}
}

func (c *h2) read() http2.Frame {
	c.t.Helper()
	f, err := c.fr.ReadFrame()
	if err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	return f
}

// open starts a call of GetUser on stream id, with extra metadata, and sends no message: the
// server holds the stream open waiting for the request.
func (c *h2) open(id uint32, extra ...hpack.HeaderField) {
	c.t.Helper()
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	fields := append([]hpack.HeaderField{
		{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"},
		{Name: ":path", Value: "/customers.v1.UserService/GetUser"}, {Name: ":authority", Value: "shop"},
		{Name: "content-type", Value: "application/grpc"}, {Name: "te", Value: "trailers"},
	}, extra...)
	for _, f := range fields {
		if err := enc.WriteField(f); err != nil {
			c.t.Fatal(err)
		}
	}
	block := buf.Bytes()
	// Split the block into frames of the default maximum size, as a large header list needs.
	const maxFrame = 16 << 10
	first := true
	for first || len(block) > 0 {
		n := min(len(block), maxFrame)
		chunk, end := block[:n], n == len(block)
		block = block[n:]
		var err error
		if first {
			err = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: chunk, EndHeaders: end})
		} else {
			err = c.fr.WriteContinuation(id, end, chunk)
		}
		if err != nil {
			c.t.Fatal(err)
		}
		first = false
	}
}

// reset reads frames until the server resets a stream or closes the connection, and returns
// the reset, or nil for a GOAWAY.
func (c *h2) reset() *http2.RSTStreamFrame {
	c.t.Helper()
	for {
		switch f := c.read().(type) {
		case *http2.RSTStreamFrame:
			return f
		case *http2.GoAwayFrame:
			return nil
		case *http2.PingFrame:
			if !f.IsAck() {
				_ = c.fr.WritePing(true, f.Data)
			}
		}
	}
}

// TestTooManyStreamsRefused: the server announces MaxConcurrentStreams, and a client that opens
// one stream more on the same connection gets that stream refused, while the others stay open.
func TestTooManyStreamsRefused(t *testing.T) {
	c := dialH2(t, listen(t, grpcserver.Options{}))
	if got, ok := c.settings[http2.SettingMaxConcurrentStreams]; !ok || got != grpcserver.MaxConcurrentStreams {
		t.Errorf("SETTINGS_MAX_CONCURRENT_STREAMS %d (sent: %v), want %d", got, ok, grpcserver.MaxConcurrentStreams)
	}
	for i := range uint32(grpcserver.MaxConcurrentStreams + 1) {
		c.open(2*i + 1)
	}
	last := uint32(2*grpcserver.MaxConcurrentStreams + 1)
	rst := c.reset()
	if rst == nil || rst.StreamID != last || rst.ErrCode != http2.ErrCodeRefusedStream {
		t.Errorf("got %+v, want stream %d refused (REFUSED_STREAM) and no other reset", rst, last)
	}
}

// TestOversizedHeaderListRefused: a call whose metadata exceeds MaxHeaderListSize is reset
// before any handler sees it; grpc-go's default would read up to 16 MiB of it.
func TestOversizedHeaderListRefused(t *testing.T) {
	c := dialH2(t, listen(t, grpcserver.Options{}))
	if got := c.settings[http2.SettingMaxHeaderListSize]; got != grpcserver.MaxHeaderListSize {
		t.Errorf("SETTINGS_MAX_HEADER_LIST_SIZE %d, want %d", got, grpcserver.MaxHeaderListSize)
	}
	var filler []hpack.HeaderField
	for i := range 2 * grpcserver.MaxHeaderListSize / 1024 {
		filler = append(filler, hpack.HeaderField{Name: fmt.Sprintf("x-filler-%d", i), Value: strings.Repeat("a", 1024)})
	}
	c.open(1, filler...)
	// grpc-go resets a stream whose header list is a little too large and closes a connection
	// that sends far too much; a server without the limit holds the stream open, waiting for
	// its message, until the read times out.
	for {
		f, err := c.fr.ReadFrame()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("the oversized call was neither reset nor its connection closed: %v", err)
		}
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			if f.StreamID != 1 {
				t.Errorf("stream %d reset, want 1", f.StreamID)
			}
			return
		case *http2.GoAwayFrame:
			return
		}
	}
}

// TestIdleConnectionClosed: a connection with no call in flight is sent away (GOAWAY) after
// MaxConnectionIdle, rather than held open forever.
func TestIdleConnectionClosed(t *testing.T) {
	if grpcserver.DefaultMaxConnectionIdle <= 0 || grpcserver.DefaultMaxConnectionIdle > time.Hour {
		t.Errorf("DefaultMaxConnectionIdle %v, want a bound of at most an hour", grpcserver.DefaultMaxConnectionIdle)
	}
	c := dialH2(t, listen(t, grpcserver.Options{MaxConnectionIdle: 200 * time.Millisecond}))
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			t.Fatalf("connection ended without GOAWAY: %v", err)
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			if g.ErrCode != http2.ErrCodeNo {
				t.Errorf("GOAWAY %v, want NO_ERROR (a graceful close)", g.ErrCode)
			}
			return
		}
	}
}

// TestTooManyPingsSentAway: a client that pings more often than the enforcement policy allows
// (flooding the server with pings it must answer) is sent away with GOAWAY ENHANCE_YOUR_CALM
// "too_many_pings", and its connection is closed.
func TestTooManyPingsSentAway(t *testing.T) {
	c := dialH2(t, listen(t, grpcserver.Options{}))
	for i := range 10 {
		if err := c.fr.WritePing(false, [8]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			t.Fatalf("connection ended without GOAWAY: %v", err)
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			if g.ErrCode != http2.ErrCodeEnhanceYourCalm || string(g.DebugData()) != "too_many_pings" {
				t.Errorf("GOAWAY %v %q, want ENHANCE_YOUR_CALM too_many_pings", g.ErrCode, g.DebugData())
			}
			break
		}
	}
	for {
		if _, err := c.fr.ReadFrame(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Errorf("after GOAWAY: %v, want the connection closed (EOF)", err)
			}
			return
		}
	}
}

// TestWatchStreamsBounded: a connection holds at most StreamsPerConn Health/Watch streams and
// a client address at most StreamsPerClient; the next is RESOURCE_EXHAUSTED at once, and a
// stream that ends frees its place. Yet a connection's first stream is always admitted, even
// from an address that is full: it is how a client's health checking watches (cart's of
// customers), and another client's streams must not take it away.
func TestWatchStreamsBounded(t *testing.T) {
	srv, conn := serve(t, grpcserver.Options{StreamsPerConn: 3, StreamsPerClient: 5}, users{})
	srv.MarkServing()
	dial := func() healthpb.HealthClient {
		c, err := grpc.NewClient(conn.Target(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return healthpb.NewHealthClient(c)
	}
	watch := func(ctx context.Context, hc healthpb.HealthClient) error {
		stream, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		_, err = stream.Recv()
		return err
	}
	admit := func(ctx context.Context, hc healthpb.HealthClient, name string) {
		t.Helper()
		if err := watch(ctx, hc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	refuse := func(ctx context.Context, hc healthpb.HealthClient, name string) {
		t.Helper()
		if err := watch(ctx, hc); status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("%s: %v, want ResourceExhausted", name, err)
		}
	}
	ctxA, cancelA := context.WithCancel(t.Context())
	defer cancelA()
	a, b, c := dial(), dial(), dial()
	for i := range 3 {
		admit(ctxA, a, fmt.Sprintf("stream %d of connection A", i+1))
	}
	refuse(t.Context(), a, "a fourth stream on connection A")
	admit(t.Context(), b, "first stream of connection B")
	admit(t.Context(), b, "second stream of connection B (the address's fifth)")
	refuse(t.Context(), b, "the address's sixth stream")
	admit(t.Context(), c, "first stream of connection C, from the full address")
	refuse(t.Context(), c, "second stream of connection C")
	cancelA()
	// The server notices the cancelled streams a moment later.
	poll.Until(t, func() error {
		err := watch(t.Context(), b)
		if err != nil && status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("watch after the others ended: %v", err)
		}
		return err
	})
}
