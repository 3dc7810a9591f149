//go:build unix

package monitor

import "syscall"

// allocSlots returns n zeroed slots outside the Go heap, and the function
// that gives them back. The table is most of the monitor's live memory and
// holds no pointers: on the heap, the collector would let as much garbage
// again accumulate before collecting (GOGC), and the process would need
// twice the table's size.
func allocSlots(n int) (slotTable, func()) {
	size := 6*n + 2
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return slotTable{make([]byte, size)}, func() {}
	}
	return slotTable{b}, func() { syscall.Munmap(b) }
}
