// Package atomicfile writes files so that a crash, kill -9 included, leaves
// either the old content or the whole new content, never a torn file: the
// data goes to a temporary file in the same directory, is fsynced, is moved
// into place, and the directory is fsynced.
package atomicfile

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Write replaces (or creates) the file at p with data.
func Write(p string, data []byte, mode os.FileMode) error {
	return write(p, data, mode, os.Rename)
}

// WriteNew creates the file at p with data and fails if p exists, so that
// two processes racing to create it cannot both win (keys, tokens).
func WriteNew(p string, data []byte, mode os.FileMode) error {
	return write(p, data, mode, func(tmp, p string) error {
		if err := os.Link(tmp, p); err != nil {
			if os.IsExist(err) {
				return fmt.Errorf("%s already exists: %w", p, fs.ErrExist)
			}
			return err
		}
		return nil
	})
}

func write(p string, data []byte, mode os.FileMode, place func(tmp, p string) error) error {
	dir := filepath.Dir(p)
	tmp, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(p)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := place(tmp.Name(), p); err != nil {
		return err
	}
	return SyncDir(dir)
}

// SyncDir makes the entries of directory dir (a file renamed into it)
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// WriteUnsynced replaces (or creates) the file at p with data through
// p+".tmp" and a rename, without fsync: a reader never sees a torn file,
// but a crash may lose the file or leave it empty. For many derived files
// written by one writer: write them all, then SyncFS once before recording
// that they exist.
func WriteUnsynced(p string, data []byte, mode os.FileMode) error {
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, p)
}
