package gateway_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/acme/shop/foundation/gateway"
	"github.com/acme/shop/protos/openapi"
)

// newCORSGateway serves the fake users service with customers' real OpenAPI document and
// origins allowed.
func newCORSGateway(t *testing.T, origins ...string) string {
	t.Helper()
	return serveFake(t, gateway.Config{OpenAPI: openapi.Customers, CORSOrigins: origins})
}

// answer is what a test reads of a response.
type answer struct {
	StatusCode int
	Header     http.Header
}

func send(t *testing.T, method, url string, headers map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	return answer{res.StatusCode, res.Header}
}

func TestOptionsAndMethodNotAllowed(t *testing.T) {
	base := newCORSGateway(t)
	res := send(t, http.MethodOptions, base+"/api/v1/users/me", nil)
	if res.StatusCode != http.StatusNoContent || res.Header.Get("Allow") != "DELETE, GET, HEAD, OPTIONS, PATCH" {
		t.Errorf("OPTIONS /api/v1/users/me: %d Allow %q, want 204 with the path's methods", res.StatusCode, res.Header.Get("Allow"))
	}
	if res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Error("CORS header sent with no origins configured")
	}
	if res := send(t, http.MethodOptions, base+"/api/v1/nothing", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("OPTIONS on an unknown path: %d, want 404", res.StatusCode)
	}
	res = send(t, http.MethodPut, base+"/api/v1/users/me", nil)
	if res.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(res.Header.Get("Allow"), "PATCH") {
		t.Errorf("PUT /api/v1/users/me: %d Allow %q, want 405 naming the allowed methods", res.StatusCode, res.Header.Get("Allow"))
	}
	// A preflight-looking request without configured origins gets no CORS grant either.
	res = send(t, http.MethodOptions, base+"/api/v1/users/me", map[string]string{"Origin": "https://shop.example", "Access-Control-Request-Method": "GET"})
	if res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Error("a preflight was granted with no origins configured")
	}
}

// TestHead: the HEAD that Allow lists is answered as a GET without its body; a path without
// GET lists no HEAD and refuses it.
func TestHead(t *testing.T) {
	base := newCORSGateway(t)
	path := "/api/v1/users/00000000-0000-0000-0000-000000000001"
	get, head := do(t, http.MethodGet, base+path, nil), do(t, http.MethodHead, base+path, nil)
	if allow := send(t, http.MethodOptions, base+path, nil).Header.Get("Allow"); !strings.Contains(allow, "HEAD") {
		t.Fatalf("OPTIONS %s: Allow %q, want HEAD listed", path, allow)
	}
	if get.code != http.StatusOK || len(get.body) == 0 {
		t.Fatalf("GET %s: %d %q, want 200 with a body", path, get.code, get.body)
	}
	if head.code != http.StatusOK || len(head.body) != 0 {
		t.Errorf("HEAD %s: %d %q, want 200 and no body", path, head.code, head.body)
	}
	for _, h := range []string{"Content-Type", "Content-Length"} {
		if got, want := head.header.Get(h), get.header.Get(h); got != want {
			t.Errorf("HEAD %s: %s %q, want GET's %q", path, h, got, want)
		}
	}
	password := path + "/password"
	res := send(t, http.MethodHead, base+password, nil)
	if res.StatusCode != http.StatusMethodNotAllowed || strings.Contains(res.Header.Get("Allow"), "HEAD") {
		t.Errorf("HEAD %s: %d Allow %q, want 405 and no HEAD allowed", password, res.StatusCode, res.Header.Get("Allow"))
	}
}

func TestCORS(t *testing.T) {
	base := newCORSGateway(t, "https://shop.example")
	preflight := func(origin string) answer {
		return send(t, http.MethodOptions, base+"/api/v1/users/me", map[string]string{
			"Origin": origin, "Access-Control-Request-Method": "PATCH",
			"Access-Control-Request-Headers": "authorization,content-type,idempotency-key,if-match,x-request-id",
		})
	}
	res := preflight("https://shop.example")
	if res.StatusCode != http.StatusNoContent || res.Header.Get("Access-Control-Allow-Origin") != "https://shop.example" {
		t.Fatalf("preflight from the allowed origin: %d, Allow-Origin %q", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"))
	}
	if m := res.Header.Get("Access-Control-Allow-Methods"); !strings.Contains(m, "PATCH") {
		t.Errorf("Allow-Methods %q lacks PATCH", m)
	}
	allowed := strings.ToLower(res.Header.Get("Access-Control-Allow-Headers"))
	for _, h := range []string{"authorization", "content-type", "if-match", "idempotency-key", "x-request-id"} {
		if !strings.Contains(allowed, h) {
			t.Errorf("Allow-Headers %q lacks %s", allowed, h)
		}
	}
	if res.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Error("credentials allowed")
	}
	for _, origin := range []string{"https://evil.example", "https://shop.example.evil.example", "http://shop.example"} {
		if got := preflight(origin).Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("preflight from %s granted: Allow-Origin %q", origin, got)
		}
	}
	res = send(t, http.MethodGet, base+"/api/v1/users/00000000-0000-0000-0000-000000000001", map[string]string{"Origin": "https://shop.example"})
	if res.StatusCode != http.StatusOK || res.Header.Get("Access-Control-Allow-Origin") != "https://shop.example" {
		t.Fatalf("GET from the allowed origin: %d, Allow-Origin %q", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"))
	}
	exposed := strings.ToLower(res.Header.Get("Access-Control-Expose-Headers"))
	for _, h := range []string{"etag", "x-request-id", "retry-after", "idempotent-replayed"} {
		if !strings.Contains(exposed, h) {
			t.Errorf("Expose-Headers %q lacks %s", exposed, h)
		}
	}
	if got := send(t, http.MethodGet, base+"/api/v1/users/00000000-0000-0000-0000-000000000001", map[string]string{"Origin": "https://evil.example"}).Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("GET from another origin: Allow-Origin %q", got)
	}
}
