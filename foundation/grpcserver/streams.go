package grpcserver

import (
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// limitStreams bounds the concurrent streams of each streaming method (Health/Watch, server
// reflection): at most perClient from one client address (ClientAddr) and at most perMethod
// over all clients. A stream beyond either ends at once with RESOURCE_EXHAUSTED, so that
// streams held open cost a bounded number of goroutines, and one client holding many cannot
// take the health watches of others (cart's, say) away.
func limitStreams(perClient, perMethod int) grpc.StreamServerInterceptor {
	type key struct{ method, client string }
	var (
		mu      sync.Mutex
		clients = map[key]int{}
		methods = map[string]int{}
	)
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		k := key{info.FullMethod, ClientAddr(ss.Context())}
		mu.Lock()
		if clients[k] >= perClient || methods[k.method] >= perMethod {
			mu.Unlock()
			return status.Error(codes.ResourceExhausted, "too many concurrent streams")
		}
		clients[k]++
		methods[k.method]++
		mu.Unlock()
		defer func() {
			mu.Lock()
			if clients[k]--; clients[k] == 0 {
				delete(clients, k)
			}
			methods[k.method]--
			mu.Unlock()
		}()
		return handler(srv, ss)
	}
}
