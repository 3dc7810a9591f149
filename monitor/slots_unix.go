//go:build unix

package monitor

import (
	"fmt"
	"os"
	"syscall"
)

// mapSlots makes the table file at path anew, n zeroed slots, and maps it
// shared; it returns the slots and the function that unmaps them. Mapped,
// the table stays outside the Go heap (it is most of the monitor's live
// memory and holds no pointers: on the heap, the collector would let as
// much garbage again accumulate before collecting), and the kernel writes
// it to its file, from which the next start may map it again (see save).
func mapSlots(path string, n int) (slotTable, func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return slotTable{}, nil, err
	}
	defer f.Close()
	if err := f.Truncate(int64(slotBytes(n))); err != nil {
		return slotTable{}, nil, err
	}
	return mmapSlots(f, n)
}

// openSlots maps the saved table file at path, of n slots, if its CRC-32C
// is crc.
func openSlots(path string, n int, crc uint32) (slotTable, func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return slotTable{}, nil, err
	}
	defer f.Close()
	size, got, err := fileCRC(f)
	if err != nil {
		return slotTable{}, nil, err
	}
	if size != int64(slotBytes(n)) || got != crc {
		return slotTable{}, nil, fmt.Errorf("table file of %d bytes with CRC %08x, saved as %d slots with CRC %08x", size, got, n, crc)
	}
	return mmapSlots(f, n)
}

func mmapSlots(f *os.File, n int) (slotTable, func(), error) {
	b, err := syscall.Mmap(int(f.Fd()), 0, slotBytes(n), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return slotTable{}, nil, err
	}
	return slotTable{b: b, mapped: true}, func() { syscall.Munmap(b) }, nil
}
