//go:build !linux

package atomicfile

import "syscall"

// SyncFS makes everything written to the file system holding dir durable;
// without syncfs(2), by sync(2) of every file system.
func SyncFS(dir string) error {
	syscall.Sync()
	return nil
}
