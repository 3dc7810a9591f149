//go:build unix && !linux

package monitor

// The syscall package has madvise on Linux only; elsewhere the table goes
// without the advice, which only affects speed.

func adviseHugePages([]byte) {}

func adviseRandom([]byte) {}
