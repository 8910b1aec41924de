package servicetest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/acme/shop/foundation/service/servicetest"
)

// get fetches url with a client of its own, so that no connection is kept from one call to
// the next, and returns the body, or "" when the request fails.
func get(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := client.Do(req)
	if err != nil {
		return ""
	}
	defer func() { _ = res.Body.Close() }()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestProxyFollowsItsBackend: the proxy's address reaches whichever server Forward named
// last, and none while it names none.
func TestProxyFollowsItsBackend(t *testing.T) {
	serve := func(body string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, body) }))
		t.Cleanup(s.Close)
		return s
	}
	first, second := serve("first"), serve("second")
	p := servicetest.NewProxy(t)
	url := "http://" + p.Addr + "/"
	for _, step := range []struct{ backend, want string }{
		{"", ""},
		{first.Listener.Addr().String(), "first"},
		{"", ""},
		{second.Listener.Addr().String(), "second"},
	} {
		p.Forward(step.backend)
		if got := get(t, url); got != step.want {
			t.Errorf("through the proxy to %q: got %q, want %q", step.backend, got, step.want)
		}
	}
}
