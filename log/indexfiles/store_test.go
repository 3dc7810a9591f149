package indexfiles

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func read(t *testing.T, s *Store, sha [32]byte) []byte {
	t.Helper()
	f, err := s.Open(t.Context(), hex.EncodeToString(sha[:]))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestStoreKeepsWhatHashesToItsName: a version is stored once, only if
// its bytes hash to its name, a gzip one as it is and another compressed,
// and read back byte for byte; what does not hash to its name, or is too
// large, leaves nothing behind.
func TestStoreKeepsWhatHashesToItsName(t *testing.T) {
	dir := t.TempDir()
	s := InDir(dir)
	plain := []byte(strings.Repeat("Try::Tiny 0.31 E/ET/ETHER/Try-Tiny-0.31.tar.gz\n", 1000))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	stored := func() []string {
		names, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
		return names
	}

	if _, err := s.Put(t.Context(), sha256.Sum256(plain), bytes.NewReader(gz.Bytes())); !errors.Is(err, ErrMismatch) {
		t.Errorf("Put of bytes that do not hash to the name: %v, want ErrMismatch", err)
	}
	if n := stored(); len(n) != 0 {
		t.Fatalf("a refused Put left %q", n)
	}
	for _, v := range [][]byte{plain, gz.Bytes()} {
		sha := sha256.Sum256(v)
		if ok, err := s.Has(t.Context(), sha); ok || err != nil {
			t.Fatalf("Has before Put: %v, %v", ok, err)
		}
		if created, err := s.Put(t.Context(), sha, bytes.NewReader(v)); !created || err != nil {
			t.Fatalf("Put: %v, %v", created, err)
		}
		if created, err := s.Put(t.Context(), sha, bytes.NewReader(v)); created || err != nil {
			t.Fatalf("second Put: created %v, %v; want kept", created, err)
		}
		if ok, err := s.Has(t.Context(), sha); !ok || err != nil {
			t.Fatalf("Has after Put: %v, %v", ok, err)
		}
		if got := read(t, s, sha); !bytes.Equal(got, v) {
			t.Errorf("read back %d bytes, want the %d stored", len(got), len(v))
		}
		if err := s.Check(t.Context(), hex.EncodeToString(sha[:])); err != nil {
			t.Errorf("Check of a whole version: %v", err)
		}
	}
	var size int64
	for _, n := range stored() {
		fi, _ := os.Stat(n)
		size += fi.Size()
	}
	if len(stored()) != 2 || size >= int64(len(plain)) {
		t.Errorf("stored %q, %d bytes: want two files, the plain one compressed", stored(), size)
	}

	// A version's bytes changed on disk (kept gzip: it is opened): Check
	// tells.
	sha := sha256.Sum256(gz.Bytes())
	sum := hex.EncodeToString(sha[:])
	var other bytes.Buffer
	zw = gzip.NewWriter(&other)
	zw.Write([]byte("not what was logged"))
	zw.Close()
	if err := os.WriteFile(filepath.Join(dir, sum[:2], sum), other.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(t.Context(), sum); err == nil {
		t.Error("Check of a version whose bytes changed passed")
	}

	if _, err := s.Open(t.Context(), hex.EncodeToString(make([]byte, 32))); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a version never stored: %v, want fs.ErrNotExist", err)
	}
	for _, bad := range []string{"", "ab", "../" + sum[3:], strings.ToUpper(sum)} {
		if _, err := s.Open(t.Context(), bad); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Open(%q): %v, want fs.ErrNotExist", bad, err)
		}
	}
}

// TestStoreRefusesTooLarge: a version larger than the store's bound
// (MaxBytes; 1 KiB here) is refused and leaves nothing behind, and no
// more than the bound is read from the sender.
func TestStoreRefusesTooLarge(t *testing.T) {
	dir := t.TempDir()
	s := InDir(dir)
	s.max = 1 << 10
	src := &countingZeros{}
	if _, err := s.Put(t.Context(), [32]byte{1}, io.LimitReader(src, 1<<20)); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Put of 1 MiB: %v, want refused as too large", err)
	}
	if src.n > 64<<10 {
		t.Errorf("%d bytes read from the sender, want about the bound", src.n)
	}
	if names, _ := filepath.Glob(filepath.Join(dir, "*", "*")); len(names) != 0 {
		t.Errorf("a refused Put left %q", names)
	}
}

type countingZeros struct{ n int }

func (z *countingZeros) Read(p []byte) (int, error) { clear(p); z.n += len(p); return len(p), nil }

// TestParseName: a name is 64 lower-case hex digits, nothing else.
func TestParseName(t *testing.T) {
	good := strings.Repeat("0123456789abcdef", 4)
	if sha, ok := ParseName(good); !ok || hex.EncodeToString(sha[:]) != good {
		t.Fatalf("ParseName(%q) = %x, %v", good, sha, ok)
	}
	for _, bad := range []string{
		"",
		good[:63],
		good + "0",
		strings.ToUpper(good),
		good[:62] + "g0",
		good[:62] + "/.",
		"../" + good[3:],
		good[:62] + "\x00\x00",
		" " + good[1:],
	} {
		if _, ok := ParseName(bad); ok {
			t.Errorf("ParseName(%q) accepted", bad)
		}
	}
}

// FuzzParseName: what ParseName accepts is exactly the hex of what it
// returns, so a name it accepts can never reach outside the store.
func FuzzParseName(f *testing.F) {
	f.Add(strings.Repeat("0123456789abcdef", 4))
	f.Add(strings.Repeat("0123456789ABCDEF", 4))
	f.Add("../../log.key")
	f.Fuzz(func(t *testing.T, s string) {
		sha, ok := ParseName(s)
		if ok && hex.EncodeToString(sha[:]) != s {
			t.Fatalf("ParseName(%q) accepted a name that is not the hex of %x", s, sha)
		}
	})
}
