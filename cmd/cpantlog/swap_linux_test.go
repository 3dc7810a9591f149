package main

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// swapAfterReads renames replacement over target once target has been
// opened for reading and closed n times (inotify), as a local attacker
// racing a client between its check and its use would. It returns a
// function that stops watching and reports whether the swap happened.
func swapAfterReads(t *testing.T, target, replacement string, n int) func() bool {
	t.Helper()
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC | syscall.IN_NONBLOCK)
	if err != nil {
		t.Skipf("inotify: %v", err)
	}
	if _, err := syscall.InotifyAddWatch(fd, target, syscall.IN_CLOSE_NOWRITE); err != nil {
		syscall.Close(fd)
		t.Skipf("inotify: %v", err)
	}
	stop, done := make(chan struct{}), make(chan bool, 1)
	go func() {
		defer syscall.Close(fd)
		buf := make([]byte, 4096)
		closes := 0
		for {
			k, err := syscall.Read(fd, buf)
			if errors.Is(err, syscall.EAGAIN) {
				select {
				case <-stop:
					done <- false
					return
				case <-time.After(time.Millisecond):
				}
				continue
			}
			if err != nil || k <= 0 {
				done <- false
				return
			}
			for off := 0; off < k; {
				ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
				off += syscall.SizeofInotifyEvent + int(ev.Len)
				if ev.Mask&syscall.IN_CLOSE_NOWRITE != 0 {
					if closes++; closes == n {
						done <- os.Rename(replacement, target) == nil
						return
					}
				}
			}
		}
	}()
	var swapped *bool
	result := func() bool {
		if swapped == nil {
			close(stop)
			v := <-done
			swapped = &v
		}
		return *swapped
	}
	t.Cleanup(func() { result() })
	return result
}
