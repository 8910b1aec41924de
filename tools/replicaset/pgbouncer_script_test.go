package replicaset

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPgBouncerScriptWritesIntoAFreshDirectory: scripts/pgbouncer.sh writes PgBouncer's
// configuration (with the role's password) into a directory mktemp made for it, never into a
// name in /tmp that someone could have taken first: a symlink planted at the predictable
// /tmp/shop-pgbouncer-PORT it once used gets nothing written through it. pgbouncer itself is
// a stand-in that does nothing, so the start fails after writing the files, which is enough.
func TestPgBouncerScriptWritesIntoAFreshDirectory(t *testing.T) {
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "pgbouncer.sh"))
	if err != nil {
		t.Fatal(err)
	}
	// A port nobody listens on, so that the script never takes a PgBouncer to be running; only
	// the names of the files depend on it.
	port := strconv.Itoa(70000 + os.Getpid()%10000)
	victim := t.TempDir()
	planted := "/tmp/shop-pgbouncer-" + port
	if err := os.Symlink(victim, planted); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(planted) })
	fake := t.TempDir()
	if err := os.WriteFile(filepath.Join(fake, "pgbouncer"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil { //nolint:gosec // a test's stand-in program
		t.Fatal(err)
	}
	run := func(cmd string) string {
		c := exec.CommandContext(context.Background(), script, cmd, port)
		c.Env = append(os.Environ(), "PATH="+fake+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, _ := c.CombinedOutput() // the start fails: the stand-in listens nowhere
		return string(out)
	}
	out := run("start")
	root := filepath.Join("..", "..")
	state := filepath.Join(root, "tmp", "pgbouncer-"+port+".dir")
	t.Cleanup(func() {
		if dir, err := os.ReadFile(state); err == nil { //nolint:gosec // the script's own state file
			_ = os.RemoveAll(strings.TrimSpace(string(dir)))
		}
		run("stop")
	})
	entries, err := os.ReadDir(victim)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) > 0 {
		t.Errorf("the script wrote %v through the symlink planted at %s\n%s", entries, planted, out)
	}
	b, err := os.ReadFile(state) //nolint:gosec // the script's own state file
	if err != nil {
		t.Fatalf("no state file: %v\n%s", err, out)
	}
	dir := strings.TrimSpace(string(b))
	if _, err := os.Stat(filepath.Join(dir, "pgbouncer.ini")); err != nil {
		t.Fatalf("the configuration is not in the directory the script made: %v\n%s", err, out)
	}
	info, err := os.Lstat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !info.IsDir() || info.Mode().Perm()&0o077 != 0 {
		t.Errorf("the script's directory %s has mode %v, want a directory only its owner may enter", dir, info.Mode())
	}
}
