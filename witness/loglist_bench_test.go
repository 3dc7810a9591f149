package witness

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkParseLogList parses a list of 1,000 logs.
func BenchmarkParseLogList(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("logs/v0\n")
	for i := range 1000 {
		fmt.Fprintf(&sb, "vkey %s\norigin o%d\nqpd 86400\ncontact ops@example.org\n", rekorVKey, i)
	}
	list := []byte(sb.String())
	b.SetBytes(int64(len(list)))
	for b.Loop() {
		if _, err := ParseLogList(list); err != nil {
			b.Fatal(err)
		}
	}
}
