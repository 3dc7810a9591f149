package log

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Attack: a directory whose file names are crafted, passed as --data.
// The refusal listed them raw: a name holding a newline and
// "ok      tree: ..." forged check-data's report lines, and an ANSI escape
// (ESC [8m) hid the rest of the operator's terminal output. Names are
// shown quoted when they are not plain.
func TestDataDirCraftedFileNames(t *testing.T) {
	dir := t.TempDir()
	evil := "x\nok      tree: all 12 entries read; they hash to the checkpoint's root\n" + "d can be served\x1b[8m"
	if err := os.WriteFile(filepath.Join(dir, evil), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := CheckDataDir(dir)
	if err == nil {
		t.Fatal("a directory of a crafted file was taken for a log's")
	}
	if strings.ContainsAny(err.Error(), "\n\x1b") {
		t.Errorf("the refusal shows a file name raw: %q", err)
	}
	if !strings.Contains(err.Error(), `"x\nok`) {
		t.Errorf("the refusal does not show the name quoted: %q", err)
	}
}
