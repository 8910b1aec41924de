package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// serveBaseline runs the no-op servers the scenarios are compared with, in their own process
// like the services, on ports of the loopback interface the system chooses: a gRPC server whose
// health Check is the no-op unary call, and an HTTP handler that makes two loopback gRPC calls
// to it and answers a small JSON body, which is the shape of an authenticated REST request
// (gateway -> service, service -> customers).
func serveBaseline() error {
	glis, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go func() { _ = gs.Serve(glis) }()

	conn, err := grpc.NewClient(glis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	client := healthpb.NewHealthClient(conn)
	mux := http.NewServeMux()
	mux.HandleFunc("/twohop", func(w http.ResponseWriter, r *http.Request) {
		for range 2 {
			if _, err := client.Check(r.Context(), &healthpb.HealthCheckRequest{}); err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"status":"ok","items":[]}`)
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
	hlis, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return srv.Serve(hlis)
}
