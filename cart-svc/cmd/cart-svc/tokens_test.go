package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/acme/shop/foundation/grpcserver"
	"github.com/acme/shop/foundation/poll"
	"github.com/acme/shop/foundation/service/servicetest"
	cartv1 "github.com/acme/shop/protos/gen/go/cart/v1"
)

// rawCaller is an attacker's HTTP/2 connection to cart's gRPC port: raw frames, so that it can
// send what no gRPC client library would, such as metadata that is not valid UTF-8.
type rawCaller struct {
	t    *testing.T
	conn net.Conn
	fr   *http2.Framer
	enc  *hpack.Encoder
	buf  bytes.Buffer
	next uint32
}

func dialRaw(t *testing.T, addr string) *rawCaller {
	t.Helper()
	conn, err := new(net.Dialer).DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(60 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	c := &rawCaller{t: t, conn: conn, fr: http2.NewFramer(conn, conn), next: 1}
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.enc = hpack.NewEncoder(&c.buf)
	if err := c.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return c
}

// getCart starts a GetCart call of the caller's own cart with token and returns its stream.
func (c *rawCaller) getCart(token string) uint32 {
	c.t.Helper()
	id := c.next
	c.next += 2
	c.buf.Reset()
	for _, f := range []hpack.HeaderField{
		{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"},
		{Name: ":path", Value: "/cart.v1.CartService/GetCart"}, {Name: ":authority", Value: "cart"},
		{Name: "content-type", Value: "application/grpc"}, {Name: "te", Value: "trailers"},
		{Name: "authorization", Value: "Bearer " + token, Sensitive: true},
	} {
		if err := c.enc.WriteField(f); err != nil {
			c.t.Fatal(err)
		}
	}
	block := c.buf.Bytes()
	const maxFrame = 16 << 10
	for first := true; first || len(block) > 0; first = false {
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
	}
	msg, err := proto.Marshal(&cartv1.GetCartRequest{UserId: "me"})
	if err != nil {
		c.t.Fatal(err)
	}
	frame := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg))) //nolint:gosec // a few bytes
	if err := c.fr.WriteData(id, true, append(frame, msg...)); err != nil {
		c.t.Fatal(err)
	}
	return id
}

// statuses reads frames until every stream of ids has ended and returns each one's
// grpc-status ("reset" for a stream the server reset).
func (c *rawCaller) statuses(ids []uint32) map[uint32]string {
	c.t.Helper()
	out := make(map[uint32]string, len(ids))
	for len(out) < len(ids) {
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.t.Fatalf("read frame (%d of %d calls answered): %v", len(out), len(ids), err)
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			if s := f.PseudoValue("status"); s != "" && s != "200" {
				out[f.StreamID] = "HTTP " + s
			} else if s := f.RegularFields(); f.StreamEnded() {
				for _, h := range s {
					if h.Name == "grpc-status" {
						out[f.StreamID] = h.Value
					}
				}
			}
		case *http2.RSTStreamFrame:
			out[f.StreamID] = "reset"
		case *http2.GoAwayFrame:
			c.t.Fatalf("the server closed the connection: %v", f.ErrCode)
		case *http2.PingFrame:
			if !f.IsAck() {
				_ = c.fr.WritePing(true, f.Data)
			}
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = c.fr.WriteSettingsAck()
			}
		}
	}
	return out
}

// TestMalformedTokenFailsNoOtherRequest: tokens that cannot be valid, sent over raw HTTP/2 to
// cart's gRPC port, five rounds of concurrent calls of each kind (tokens with the byte 0xff,
// which cannot be marshalled into a ValidateTokens call, and distinct multi-byte tokens of
// nearly 16 KiB, of which a batch of about 65 would exceed customers' message limit), are
// refused with UNAUTHENTICATED while 32 legitimate clients read their carts, and not one
// legitimate request fails or logs an error.
func TestMalformedTokenFailsNoOtherRequest(t *testing.T) {
	c := startCustomers(t, "sqlite", nil)
	s := servicetest.StartOn(t, spec, "sqlite", map[string]string{"CART_CUSTOMERS_ADDR": c.grpc, "LOG_LEVEL": "info"})
	s.WaitReady(t)
	carts := cartv1.NewCartServiceClient(s.Conn)

	const clients = 32
	users := []string{"admin1@email.com", "admin2@email.com", "nonadmin3@email.com", "nonadmin4@email.com"}
	tokens := make([]string, clients)
	for i := range tokens {
		tokens[i] = c.login(users[i%len(users)], demoPassword)
	}
	var stop atomic.Bool
	var served, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tokens[i])
			for !stop.Load() {
				if _, err := carts.GetCart(ctx, &cartv1.GetCartRequest{UserId: "me"}); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				served.Add(1)
			}
		})
	}
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()
	poll.Until(t, func() error {
		if n := served.Load(); n < 100 {
			return fmt.Errorf("%d legitimate requests served, want 100 before the attack", n)
		}
		return nil
	})

	// Multi-byte tokens as long as the header list limit allows: 4-byte characters, fewer
	// than 4,096 of them, nearly 16 KiB. About 65 of them would exceed customers' 1 MiB.
	const room = grpcserver.MaxHeaderListSize - 512
	long := func(i int) string {
		suffix := strconv.Itoa(i)
		return strings.Repeat("\U0001F600", (room-len(suffix))/4) + suffix
	}
	raw := dialRaw(t, s.GRPC)
	for _, attack := range []struct {
		name  string
		token func(i int) string
		calls int
	}{
		{"the byte 0xff", func(i int) string { return fmt.Sprintf("eyJ\xff%d.e30.c2ln", i) }, 40},
		{"16 KiB of four-byte characters", long, 100},
	} {
		t.Run(attack.name, func(t *testing.T) {
			failedBefore, servedBefore := failed.Load(), served.Load()
			for round := range 5 {
				var ids []uint32
				for i := range attack.calls {
					ids = append(ids, raw.getCart(attack.token(attack.calls*round+i)))
				}
				for id, st := range raw.statuses(ids) {
					if st != "16" { // UNAUTHENTICATED
						t.Errorf("round %d: the malformed token's call (stream %d) ended with grpc-status %s, want 16 (UNAUTHENTICATED)", round, id, st)
					}
				}
			}
			if n := failed.Load() - failedBefore; n != 0 {
				err, _ := firstErr.Load().(error)
				t.Errorf("%d of %d legitimate requests failed during the attack, want 0; the first: %v", n, served.Load()-servedBefore+n, err)
			}
		})
	}
	stop.Store(true)
	wg.Wait()
	if logs := s.Logs.String(); strings.Contains(logs, "level=ERROR") {
		t.Errorf("cart logged errors during the attacks:\n%s", errorLines(logs))
	}
}

// errorLines returns the lines of logs at level ERROR.
func errorLines(logs string) string {
	var out []string
	for line := range strings.Lines(logs) {
		if strings.Contains(line, "level=ERROR") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}
