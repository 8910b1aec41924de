package serve

import (
	"net/http"
	"testing"
	"time"
)

// TestAsideServersTimeOut: the metrics and pprof servers set every timeout, not only the
// header's, so that a slow or idle client cannot hold a connection for ever; the pprof server
// may write for longer than its default 30 s CPU profile takes.
func TestAsideServersTimeOut(t *testing.T) {
	for name, srv := range map[string]*http.Server{
		"metrics": asideServer(http.NotFoundHandler(), AsideWriteTimeout),
		"debug":   debugServer(),
	} {
		for timeout, d := range map[string]time.Duration{
			"ReadHeaderTimeout": srv.ReadHeaderTimeout, "ReadTimeout": srv.ReadTimeout,
			"WriteTimeout": srv.WriteTimeout, "IdleTimeout": srv.IdleTimeout,
		} {
			if d <= 0 {
				t.Errorf("%s server: %s %v, want one set", name, timeout, d)
			}
		}
		if srv.MaxHeaderBytes <= 0 {
			t.Errorf("%s server: MaxHeaderBytes %d, want a bound", name, srv.MaxHeaderBytes)
		}
	}
	if d := debugServer().WriteTimeout; d <= 30*time.Second {
		t.Errorf("debug server: WriteTimeout %v, want more than the 30 s of a default CPU profile", d)
	}
}
