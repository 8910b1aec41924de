// Command natsdev runs a NATS server with JetStream for development (`make run`): the
// nats-server library embedded in a small process, its streams stored in a folder (data/nats),
// so that `make run` needs nothing but Go. The services' binaries carry no server; production
// points NATS_URL at a real cluster.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "natsdev:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("natsdev", flag.ContinueOnError)
	host := fs.String("host", "127.0.0.1", "the address to listen on")
	port := fs.Int("port", 4223, "the port to listen on (4222 is the usual one, often taken by a NATS of the machine)")
	store := fs.String("store", "data/nats", "the folder JetStream keeps its streams in")
	if err := fs.Parse(args); err != nil {
		return err
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: "natsdev", Host: *host, Port: *port, JetStream: true, StoreDir: *store, NoSigs: true,
	})
	if err != nil {
		return err
	}
	srv.ConfigureLogger()
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		return fmt.Errorf("the server did not start on %s:%d", *host, *port)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	srv.Shutdown()
	srv.WaitForShutdown()
	return nil
}
