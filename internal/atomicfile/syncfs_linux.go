package atomicfile

import (
	"os"

	"golang.org/x/sys/unix"
)

// SyncFS makes everything written to the file system holding dir durable:
// one syncfs(2) instead of an fsync per file.
func SyncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}
