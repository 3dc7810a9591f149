//go:build !unix

package monitor

import "errors"

// mapSlots returns n zeroed slots on the heap: without mmap the table is
// not saved, and every start rebuilds it from the records.
func mapSlots(path string, n int) (slotTable, func(), error) {
	return slotTable{b: make([]byte, slotBytes(n))}, func() {}, nil
}

func openSlots(path string, n int, crc uint32) (slotTable, func(), error) {
	return slotTable{}, nil, errors.New("saved tables are mapped, which this system does not do")
}
