package main

import (
	"strings"
	"testing"
)

func TestDemo(t *testing.T) {
	code, out := cli(t, "demo", "--testdata", "../../testdata")
	if code != 0 {
		t.Fatalf("demo: exit %d\n%s", code, out)
	}
	for _, want := range []string{
		"== 1. A witness ==", "== 7. A hostile mirror serves a tampered copy ==",
		"index 7: authors/id/", "cosigned by: w1",
		"no findings: the log is consistent",
		"verified authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz",
		"REFUSED (exit code 1)", "does not match the log",
		"now removed.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "\n== ") != 7 {
		t.Errorf("demo has %d steps, want 7", strings.Count(out, "\n== "))
	}
}
