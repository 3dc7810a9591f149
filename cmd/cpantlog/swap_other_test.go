//go:build !linux

package main

import "testing"

// swapAfterReads needs inotify.
func swapAfterReads(t *testing.T, target, replacement string, n int) func() bool {
	t.Skip("swapping a file after it is read needs inotify (Linux)")
	return nil
}
