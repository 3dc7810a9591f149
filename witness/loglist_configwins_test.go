package witness

import (
	"context"
	"path/filepath"
	"testing"
)

// TestLogListLearnedKeyDoesNotJoinConfiguredOrigin: a list names a log
// the witness does not know yet, under a key of the list's choosing
// (learned); the operator then configures that origin with its real key.
// Before, the merged configuration trusted both keys for the origin, so
// the key the list chose still got checkpoints cosigned beside the
// configured one. The configuration file is the operator's word: a
// learned key for an origin it names with other keys is not trusted.
func TestLogListLearnedKeyDoesNotJoinConfiguredOrigin(t *testing.T) {
	real := namedLog(t, "a.example/log", 10)
	hostile := namedLog(t, "a.example/log", 10)
	list := filepath.Join(t.TempDir(), "list")
	writeFile(t, list, "logs/v0\n"+listEntry(hostile.vkey, "", 24, "a@example"))
	dir := t.TempDir()
	lw := openListWitness(t, dir, nil, LogListOptions{Source: list})
	if err := lw.ll.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig([]byte("log " + real.vkey + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	lw.ll.SetBase(cfg)
	if code, body := lw.post(t, requestFor(t, hostile, "a.example/log", 0, 2)); code != 403 {
		t.Errorf("checkpoint signed by the list's key after the config names another: %d %s, want 403", code, body)
	}
	if code, body := lw.post(t, requestFor(t, real, "a.example/log", 0, 2)); code != 200 {
		t.Errorf("checkpoint signed by the configured key: %d %s, want 200", code, body)
	}
	if got := lw.logs.lines("level=WARN", "origin=a.example/log", "listed_key="+hostile.vkey); len(got) == 0 {
		t.Errorf("no WARN naming the learned key the configuration overrides")
	}
	// At a restart with that configuration, too.
	lw2 := openListWitness(t, dir, cfg, LogListOptions{})
	if code, body := lw2.post(t, requestFor(t, hostile, "a.example/log", 2, 3)); code != 403 {
		t.Errorf("after a restart: checkpoint signed by the list's key: %d %s, want 403", code, body)
	}
}
