package ha

import (
	"strings"
	"testing"
)

// TestShippedFailoverSettings: the failover tests run PgBouncer with the shipped values of what
// decides a failover's errors, each found.
func TestShippedFailoverSettings(t *testing.T) {
	got, err := shippedFailoverSettings()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(got, "\n")
	if len(lines) != len(failoverSettings) {
		t.Fatalf("got %q, want one line for each of %v", got, failoverSettings)
	}
	for i, k := range failoverSettings {
		if v, ok := strings.CutPrefix(lines[i], k+" = "); !ok || v == "" {
			t.Errorf("line %d: %q, want %s = <value>", i, lines[i], k)
		}
	}
}
