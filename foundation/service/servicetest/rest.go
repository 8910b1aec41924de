package servicetest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"
)

// Response is a REST answer: its status, headers and body, and the body decoded when it is a
// JSON object.
type Response struct {
	Code   int
	Header http.Header
	Raw    []byte
	JSON   map[string]any
}

// Do sends one request to url and reads the whole answer. authorization is the Authorization
// header's value as it is, none when empty (Bearer makes one from a token); body is nil for
// none, a string sent as it is, or anything else encoded as JSON. When the request cannot be
// sent or its answer read, Do marks the test failed and returns a Response with Code 0; it
// never stops the test, so clients in other goroutines may call it.
func Do(t testing.TB, method, url, authorization string, body any) Response {
	t.Helper()
	return DoHeader(t, method, url, authorization, nil, body)
}

// DoHeader is Do with more request headers (If-Match, say).
func DoHeader(t testing.TB, method, url, authorization string, header http.Header, body any) Response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			t.Errorf("%s %s: body: %v", method, url, err)
			return Response{}
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, url, rd)
	if err != nil {
		t.Errorf("%s %s: %v", method, url, err)
		return Response{}
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, url, err)
		return Response{}
	}
	defer func() { _ = res.Body.Close() }()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Errorf("%s %s: reading the answer: %v", method, url, err)
		return Response{}
	}
	out := Response{Code: res.StatusCode, Header: res.Header, Raw: raw}
	_ = json.Unmarshal(raw, &out.JSON) // not every answer is a JSON object; JSON stays nil then
	return out
}

// Bearer is the Authorization value that carries token, or "" (no header) when token is empty.
func Bearer(token string) string {
	if token == "" {
		return ""
	}
	return "Bearer " + token
}

// Decode decodes the JSON body into v, and stops the test when it does not fit: read typed
// values so, rather than asserting types on JSON, which panics on an unexpected answer.
func (r Response) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Raw, v); err != nil {
		t.Fatalf("decoding the answer %d %s: %v", r.Code, r.Raw, err)
	}
}

// FieldViolations returns the fields that the google.rpc.BadRequest detail of an error body
// names, in order.
func (r Response) FieldViolations() []string {
	var out []string
	details, _ := r.JSON["details"].([]any)
	for _, d := range details {
		detail, _ := d.(map[string]any)
		violations, _ := detail["field_violations"].([]any)
		for _, v := range violations {
			violation, _ := v.(map[string]any)
			if field, ok := violation["field"].(string); ok {
				out = append(out, field)
			}
		}
	}
	return out
}

// Reason returns the reason of the google.rpc.ErrorInfo detail of an error body, or "".
func (r Response) Reason() string {
	details, _ := r.JSON["details"].([]any)
	for _, d := range details {
		if m, ok := d.(map[string]any); ok && m["@type"] == "type.googleapis.com/google.rpc.ErrorInfo" {
			reason, _ := m["reason"].(string)
			return reason
		}
	}
	return ""
}

// WithAuthorization returns a context whose gRPC calls carry the authorization metadata value
// as it is, none when empty.
func WithAuthorization(value string) context.Context {
	if value == "" {
		return context.Background()
	}
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", value)
}
