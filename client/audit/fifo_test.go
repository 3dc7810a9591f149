package audit

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestParseLocalFIFOAttack: a local/ tree (unpacked from someone's
// tarball) whose install.json is a named pipe. Opening it blocked
// forever: cpantlog audit hung. It is refused as not a regular file.
func TestParseLocalFIFOAttack(t *testing.T) {
	dir := t.TempDir()
	meta := filepath.Join(dir, "lib", "perl5", "x86_64-linux", ".meta", "Foo-1.0")
	if err := os.MkdirAll(meta, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(meta, "install.json"), 0o644); err != nil {
		t.Skip(err)
	}
	done := make(chan error, 1)
	go func() { _, err := ParseLocal(dir); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("a named pipe as install.json: accepted")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ParseLocal hangs on a named pipe as install.json")
	}
}
