// Package perlhook holds the Perl hook of the client/perl distribution
// (CPAN::TLog::Verify, CPAN::TLog::Cpanm for cpanm and Carton's Menlo,
// CPAN::Plugin::TLog for CPAN.pm), embedded in the Go binary so that
// cpantlog exec can load it into the clients it runs without the
// distribution being installed: Extract writes the lib tree to a
// directory for PERL5LIB.
//
// The directory is also a CPAN distribution; its MANIFEST lists what it
// ships, so this file is not part of it.
package perlhook

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

//go:embed lib
var lib embed.FS

// Extract writes the hook's lib tree (files 0644, directories 0755) into
// dir, which it creates if needed, and returns the directory to put in
// PERL5LIB (dir/lib). An existing file of the tree is replaced.
func Extract(dir string) (string, error) {
	out := filepath.Join(dir, "lib")
	err := fs.WalkDir(lib, "lib", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		if d.IsDir() {
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
			// MkdirAll leaves an existing directory's mode, and the
			// umask may have narrowed a new one's.
			return os.Chmod(dst, 0o755)
		}
		b, err := lib.ReadFile(name)
		if err != nil {
			return err
		}
		// Written beside, then renamed: a reader never sees half a module,
		// and a symlink planted at dst is replaced, not followed.
		tmp, err := os.CreateTemp(filepath.Dir(dst), ".extract-*")
		if err != nil {
			return err
		}
		_, werr := tmp.Write(b)
		cerr := tmp.Close()
		if err := firstErr(werr, cerr, os.Chmod(tmp.Name(), 0o644)); err != nil {
			os.Remove(tmp.Name())
			return err
		}
		if err := os.Rename(tmp.Name(), dst); err != nil {
			os.Remove(tmp.Name())
			return err
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("extract the Perl hook into %s: %w", dir, err)
	}
	return out, nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
