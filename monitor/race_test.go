//go:build race

package monitor

// raceEnabled: the race detector's shadow memory is in the resident set,
// and the tests that measure memory do not measure it.
const raceEnabled = true
