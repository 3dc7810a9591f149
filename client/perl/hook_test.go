package perlhook

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestExtract: the extracted tree is the lib directory as it is in the
// repository, file for file and byte for byte, with the modes Perl needs,
// and extracting again over it works.
func TestExtract(t *testing.T) {
	dir := t.TempDir()
	for round := 0; round < 2; round++ {
		got, err := Extract(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got != filepath.Join(dir, "lib") {
			t.Fatalf("Extract returned %q, want %q", got, filepath.Join(dir, "lib"))
		}
		want := map[string][]byte{}
		filepath.WalkDir("lib", func(name string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				want[name], _ = os.ReadFile(name)
			}
			return err
		})
		if len(want) < 3 || want[filepath.Join("lib", "CPAN", "TLog", "Cpanm.pm")] == nil || want[filepath.Join("lib", "CPAN", "Plugin", "TLog.pm")] == nil {
			t.Fatalf("the repository's lib tree is not what this test expects: %d files", len(want))
		}
		n := 0
		err = filepath.WalkDir(got, func(name string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, name)
			if d.IsDir() {
				if info.Mode().Perm() != 0o755 {
					t.Errorf("%s: mode %v, want 0755", rel, info.Mode().Perm())
				}
				return nil
			}
			n++
			if info.Mode().Perm() != 0o644 || !info.Mode().IsRegular() {
				t.Errorf("%s: mode %v, want a regular file 0644", rel, info.Mode())
			}
			b, _ := os.ReadFile(name)
			if w, ok := want[rel]; !ok {
				t.Errorf("%s is not in the repository's lib", rel)
			} else if !bytes.Equal(b, w) {
				t.Errorf("%s differs from the repository's", rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n != len(want) {
			t.Errorf("round %d: %d files extracted, the repository's lib has %d", round, n, len(want))
		}
	}
	// Nothing else is written beside the tree.
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("Extract left %d entries in %s, want only lib", len(entries), dir)
	}
}

func TestExtractFails(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	if _, err := Extract(f); err == nil {
		t.Error("Extract into a path that is a file succeeded")
	}
}
