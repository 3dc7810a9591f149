//go:build unix

package monitor

import (
	"syscall"
	"unsafe"
)

// allocSlots returns n zeroed slots outside the Go heap, and the function
// that gives them back. The table is most of the monitor's live memory and
// holds no pointers: on the heap, the collector would let as much garbage
// again accumulate before collecting (GOGC), and the process would need
// twice the table's size.
func allocSlots(n int) ([]uint64, func()) {
	b, err := syscall.Mmap(-1, 0, n*8, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]uint64, n), func() {}
	}
	return unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), n), func() { syscall.Munmap(b) }
}
