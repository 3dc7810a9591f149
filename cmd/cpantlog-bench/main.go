// Command cpantlog-bench loads a log's add endpoint and reports the rate
// it sustains: cpan-tlog's POST /add, or Tessera's conformance personality
// with the same leaves, for a like-for-like comparison (scripts/bench-ingest.sh).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/CPAN-Security/cpan-tlog/internal/loadgen"
)

func main() {
	kind := flag.String("kind", "cpantlog", "cpantlog (JSON POST /add with a token), tessera (raw leaf POST /add), or mixed (cpan-tlog adds, lookups, proofs and checkpoint reads)")
	url := flag.String("url", "http://127.0.0.1:8080", "the log's base URL; several, comma-separated, spread the clients over writers of one log")
	tokenFile := flag.String("token-file", "", "cpantlog: file holding the ingest token")
	clients := flag.Int("clients", 512, "concurrent clients")
	duration := flag.Duration("duration", 20*time.Second, "how long to run")
	prefix := flag.String("prefix", fmt.Sprint(time.Now().UnixNano()), "path prefix, so runs do not collide")
	flag.Parse()
	var t loadgen.Target
	switch *kind {
	case "cpantlog":
		tok, err := os.ReadFile(*tokenFile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "cpantlog-bench: %v (pass --token-file DATA/ingest.token)\n", err)
			os.Exit(2)
		}
		t = loadgen.CPANTLog(*url, strings.TrimSpace(string(tok)), *prefix)
	case "tessera":
		t = loadgen.Tessera(*url, *prefix)
	case "mixed":
		tok, err := os.ReadFile(*tokenFile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "cpantlog-bench: %v (pass --token-file DATA/ingest.token)\n", err)
			os.Exit(2)
		}
		r := loadgen.RunMixed(context.Background(), *url, strings.TrimSpace(string(tok)), *prefix, *clients, *duration)
		fmt.Printf("mixed: %s, ok %v, pushback (503) %d, errors %v\n", r.Duration.Round(time.Second), r.OK, r.Pushback, r.Errors)
		if len(r.Errors) > 0 {
			os.Exit(1)
		}
		return
	default:
		fmt.Fprintf(os.Stderr, "cpantlog-bench: unknown --kind %q\n", *kind)
		os.Exit(2)
	}
	r := loadgen.Run(context.Background(), t, *clients, *duration)
	fmt.Printf("%s: %.0f adds/s (%d adds, %d errors, %s, p50 %s, p99 %s, %d clients)\n", *kind, r.PerSecond(), r.Adds, r.Errors, r.Duration.Round(time.Millisecond), r.P50.Round(time.Millisecond), r.P99.Round(time.Millisecond), *clients)
}
