package log

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuffer collects log lines written from several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

const (
	tokA = "0123456789abcdef0123456789abcdef"
	tokB = "fedcba9876543210fedcba9876543210"
)

func TestParseTokenFile(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     []IngestToken // nil: an error is wanted
		errHas   string
	}{
		{"today's one-token file", tokA + "\n", []IngestToken{{DefaultTokenName, tokA}}, ""},
		{"no final newline, CRLF", tokA + "\r\n", []IngestToken{{DefaultTokenName, tokA}}, ""},
		{"named", "# who\npause " + tokA + "   # since December\n\n\tbackfill\t" + tokB + "\n", []IngestToken{{"pause", tokA}, {"backfill", tokB}}, ""},
		{"bare and named", tokA + "\npause " + tokB + "\n", []IngestToken{{DefaultTokenName, tokA}, {"pause", tokB}}, ""},
		{"# inside a token", "pause " + tokA + "#x\n", []IngestToken{{"pause", tokA + "#x"}}, ""},
		{"empty", "", nil, "no token"},
		{"only comments", "# pause " + tokA + "\n  \n", nil, "no token"},
		{"short token", "pause 0123456789abcde\n", nil, "at least 16"},
		{"long token", "pause " + strings.Repeat("a", MaxTokenLength+1), nil, "more than 1024"},
		{"three fields", "pause " + tokA + " extra\n", nil, "3 fields"},
		{"two bare tokens", tokA + "\n" + tokB + "\n", nil, "second token without a name"},
		{"bare and default", tokA + "\ndefault " + tokB + "\n", nil, `"default" is given twice`},
		{"name twice", "p " + tokA + "\np " + tokB + "\n", nil, `"p" is given twice (line 1)`},
		{"token twice", "p " + tokA + "\nq " + tokA + "\n", nil, "is the token of line 1"},
		{"bad name", "pa/use " + tokA + "\n", nil, "letters, digits"},
		{"name starting with -", "-p " + tokA + "\n", nil, "letters, digits"},
		{"long name", strings.Repeat("n", 65) + " " + tokA + "\n", nil, "more than 64"},
		{"control character", "pause " + tokA + "\x00\n", nil, "not printable ASCII"},
		{"non-ASCII", "päuse " + tokA + "\n", nil, "not printable ASCII"},
		{"too large", strings.Repeat("#", MaxTokenFileSize+1), nil, "more than"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseTokenFile([]byte(c.in))
			if c.want == nil {
				if err == nil || !strings.Contains(err.Error(), c.errHas) {
					t.Fatalf("got %v, %v; want an error with %q", got, err, c.errHas)
				}
				for _, secret := range []string{tokA, tokB} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("the error shows a token: %v", err)
					}
				}
				return
			}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("got %v, %v; want %v", got, err, c.want)
			}
		})
	}
}

// FuzzParseTokenFile: whatever the file, the parser does not panic, and
// what it accepts holds at least one token, with valid, distinct names
// and distinct tokens of bounded length, each of which matches itself
// and only itself.
func FuzzParseTokenFile(f *testing.F) {
	f.Add([]byte(tokA + "\n"))
	f.Add([]byte("# c\npause " + tokA + " # x\nb " + tokB + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tokens, err := ParseTokenFile(b)
		if err != nil {
			return
		}
		if len(tokens) == 0 {
			t.Fatal("accepted a file of no token")
		}
		set := newTokenSet(tokens)
		names, values := map[string]bool{}, map[string]bool{}
		for _, tk := range tokens {
			if names[tk.Name] || values[tk.Value] {
				t.Fatalf("duplicate in %v", tokens)
			}
			names[tk.Name], values[tk.Value] = true, true
			if checkTokenName(tk.Name) != nil || len(tk.Value) < MinTokenLength || len(tk.Value) > MaxTokenLength || strings.ContainsAny(tk.Value, " \t\r\n") {
				t.Fatalf("accepted %q", tk)
			}
			if name, ok := set.match("Bearer " + tk.Value); !ok || name != tk.Name {
				t.Fatalf("token %q matches %q, %v", tk.Name, name, ok)
			}
			if _, ok := set.match("Bearer " + tk.Value + "x"); ok && !values[tk.Value+"x"] {
				t.Fatalf("a longer token matched")
			}
		}
	})
}

// TestTokenMatch: the right token is named, wrong ones, a prefix, an
// empty header and the token without "Bearer " are refused.
func TestTokenMatch(t *testing.T) {
	s := newTokenSet([]IngestToken{{"a", tokA}, {"b", tokB}})
	for _, c := range []struct {
		header, want string
		ok           bool
	}{
		{"Bearer " + tokA, "a", true},
		{"Bearer " + tokB, "b", true},
		{"Bearer " + tokA[:20], "", false},
		{tokA, "", false},
		{"", "", false},
		{"Bearer " + tokA + " ", "", false},
	} {
		if got, ok := s.match(c.header); got != c.want || ok != c.ok {
			t.Errorf("match(%q) = %q, %v; want %q, %v", c.header, got, ok, c.want, c.ok)
		}
	}
}

// TestTokenRotationWithoutRestart: on a real server over loopback, a
// second token is added to the token file and the first retired, each
// by SIGHUP's reload and by the file watcher alone, without a restart:
// the retired token gets 401, the new one 200, the metrics and each
// add's log line name the token, and a file that does not parse leaves
// the tokens in use and logs an ERROR once.
func TestTokenRotationWithoutRestart(t *testing.T) {
	dir := t.TempDir()
	var logs logBuffer
	s := startServer(t, dir, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	file := filepath.Join(dir, TokenFile)
	first := s.log.Token()
	if b, _ := os.ReadFile(file); strings.TrimSpace(string(b)) != first {
		t.Fatalf("the first start's file is not one bare token (clients read it with $(cat))")
	}
	n := 0
	add := func(token string) int {
		t.Helper()
		body := fmt.Sprintf(`{"path":"authors/id/A/AB/ABC/F-%d.tar.gz","size":%d,"sha256":"%064x","uploader":"ABC","time":"2024-01-02T03:04:05Z"}`, n, n, n)
		code, _, _ := s.do("POST", "/add", token, body)
		if code == 200 {
			n++
		}
		return code
	}
	if code := add(first); code != 200 {
		t.Fatalf("add with the generated token: %d", code)
	}
	write := func(content string) {
		t.Helper()
		tmp := file + ".new"
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	// becomes polls until the token's adds answer want (the watcher
	// checks every second).
	becomes := func(token string, want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			code := add(token)
			if code == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("add answers %d, want %d", code, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// SIGHUP's path: both tokens, then only the new one.
	write(first + "\npause " + tokA + "\n")
	if err := s.log.ReloadTokens(); err != nil {
		t.Fatal(err)
	}
	if add(tokA) != 200 || add(first) != 200 {
		t.Fatal("after adding a second token, not both are accepted")
	}
	write("pause " + tokA + "\n")
	if err := s.log.ReloadTokens(); err != nil {
		t.Fatal(err)
	}
	if code := add(first); code != 401 {
		t.Fatalf("the retired token: %d, want 401", code)
	}
	if code := add(tokA); code != 200 {
		t.Fatalf("the new token: %d, want 200", code)
	}

	// A file that does not parse keeps the tokens in use, with one ERROR.
	write("pause " + tokA + "\nbroken tooshort\n")
	time.Sleep(2500 * time.Millisecond) // two polls
	if err := s.log.ReloadTokens(); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("reload of a broken file: %v", err)
	}
	if code := add(tokA); code != 200 {
		t.Fatalf("after a broken file, the token in use: %d, want 200", code)
	}
	if got := strings.Count(logs.String(), "level=ERROR msg=\"ingest tokens not reloaded"); got != 2 { // the watcher's and SIGHUP's
		t.Errorf("%d ERROR lines for a broken file, want 2 (one per reading)\n%s", got, logs.String())
	}

	// The watcher alone: rotate again, no SIGHUP.
	write("pause " + tokA + "\nbackfill " + tokB + "\n")
	becomes(tokB, 200)
	write("backfill " + tokB + "\n")
	becomes(tokA, 401)
	if code := add(tokB); code != 200 {
		t.Fatalf("the remaining token: %d", code)
	}

	_, metrics, _ := s.do("GET", "/metrics", "", "")
	for _, want := range []string{`cpantlog_adds_total{outcome="logged",token="default"} 2`, `cpantlog_adds_total{outcome="logged",token="pause"} `, `cpantlog_adds_total{outcome="logged",token="backfill"} `, `cpantlog_adds_total{outcome="unauthorized",token=""} `} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	out := logs.String()
	for _, want := range []string{`msg=add outcome=logged token=pause`, `msg=add outcome=logged token=backfill`, `msg="ingest tokens reloaded" why=changed`, `removed=[pause]`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	for _, secret := range []string{first, tokA, tokB} {
		if strings.Contains(out, secret) {
			t.Errorf("the log shows a token")
		}
	}
}
