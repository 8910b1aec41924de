package grpcserver

import (
	"context"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/acme/shop/foundation/clientnet"
)

// streamLimits are the bounds limitStreams enforces.
type streamLimits struct {
	perConn, perClient, perMethod int
	// ipv6Prefix is the network an IPv6 client counts as (clientnet.Key).
	ipv6Prefix int
}

// limitStreams bounds the concurrent streams of the streaming methods (Health/Watch, server
// reflection), which a client may hold open for as long as it likes, so that they cost a
// bounded number of goroutines:
//
//   - one connection holds at most perConn of them, whatever their methods;
//   - past a connection's first, a stream is admitted only while its client (ClientAddr, an
//     IPv6 address counting as its network) holds fewer than perClient streams of its method,
//     and all clients together fewer than perMethod;
//   - a connection's first stream is always admitted. That is the stream a client's health
//     checking holds (grpc-go watches once per connection: cart watches customers so), and it
//     costs less than the connection that carries it, so nobody, whether from another address
//     or from the same one, can take it away by holding streams of their own.
//
// A stream beyond a limit ends at once with RESOURCE_EXHAUSTED.
func limitStreams(l streamLimits) grpc.StreamServerInterceptor {
	type key struct{ method, client string }
	var (
		mu      sync.Mutex
		conns   = map[string]int{}
		clients = map[key]int{}
		methods = map[string]int{}
	)
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx := ss.Context()
		conn := connection(ctx)
		k := key{info.FullMethod, clientnet.Key(ClientAddr(ctx), l.ipv6Prefix)}
		mu.Lock()
		first := conns[conn] == 0
		if conns[conn] >= l.perConn || !first && (clients[k] >= l.perClient || methods[k.method] >= l.perMethod) {
			mu.Unlock()
			return status.Error(codes.ResourceExhausted, "too many concurrent streams")
		}
		conns[conn]++
		clients[k]++
		methods[k.method]++
		mu.Unlock()
		defer func() {
			mu.Lock()
			release(conns, conn)
			release(clients, k)
			release(methods, k.method)
			mu.Unlock()
		}()
		return handler(srv, ss)
	}
}

// release takes one from m[k], deleting the entry at zero so that the maps hold only what is
// open.
func release[K comparable](m map[K]int, k K) {
	if m[k]--; m[k] <= 0 {
		delete(m, k)
	}
}

// connection names the network connection of the call being served: its two ends, which no
// two open connections share.
func connection(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ""
	}
	if p.LocalAddr == nil {
		return p.Addr.String()
	}
	return p.Addr.String() + " " + p.LocalAddr.String()
}
