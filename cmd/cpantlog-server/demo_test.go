package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestDemo(t *testing.T) {
	var out bytes.Buffer
	if err := demoCmd([]string{"--testdata", "../../testdata"}, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"== 1. A witness ==", "== 7. A hostile mirror serves a tampered copy ==",
		"index 7: authors/id/", "cosigned by: w1",
		"no findings: the log is consistent",
		"verified authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz",
		"REFUSED (exit code 1)", "does not match the log",
		"now removed.",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
	if n := strings.Count(out.String(), "\n== "); n != 7 {
		t.Errorf("demo has %d steps, want 7", n)
	}
}
