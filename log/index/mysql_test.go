package index

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testDatabase creates a fresh database on the server of
// CPANTLOG_TEST_MYSQL_DSN, dropped at the test's end, and returns its DSN;
// "" without a server (a failure in CI, where there must be one).
func testDatabase(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("CPANTLOG_TEST_MYSQL_DSN")
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CPANTLOG_TEST_MYSQL_DSN unset in CI")
		}
		return ""
	}
	name := fmt.Sprintf("ix%x", sha256.Sum256([]byte(t.Name()+time.Now().String())))[:20]
	admin, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec("DROP DATABASE " + name); admin.Close() })
	return strings.TrimSuffix(dsn, "/") + "/" + name
}

// stores opens an empty index of every kind available: bbolt always, and
// MySQL/MariaDB when CPANTLOG_TEST_MYSQL_DSN names a server (a fresh
// database per call).
func stores(t *testing.T) map[string]Store {
	t.Helper()
	b, err := Open(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	out := map[string]Store{"bbolt": b}
	dsn := testDatabase(t)
	if dsn == "" {
		return out
	}
	m, err := OpenMySQL(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	out["mysql"] = m
	return out
}

// TestStoresAgree feeds the same leaves, valid and not, to every kind of
// store and demands the same answers and the same canonical dump.
func TestStoresAgree(t *testing.T) {
	var leaves [][]byte
	for i := range 600 {
		leaves = append(leaves, leaf(t, fmt.Sprintf("authors/id/A/AB/ABC/Foo-1.%d.tar.gz", i%400), fmt.Sprint(i)))
		if i%97 == 0 {
			leaves = append(leaves, []byte("not an entry\n"))
		}
	}
	dumps := map[string]string{}
	for kind, s := range stores(t) {
		for lo := 0; lo < len(leaves); lo += 256 {
			if _, err := s.Append(uint64(lo), leaves[lo:min(lo+256, len(leaves))]); err != nil {
				t.Fatalf("%s: %v", kind, err)
			}
		}
		if _, err := s.Append(3, leaves[:1]); err == nil {
			t.Errorf("%s: append at the wrong size succeeded", kind)
		}
		var b bytes.Buffer
		if err := s.Dump(&b); err != nil {
			t.Fatal(err)
		}
		dumps[kind] = b.String()
		recs, _ := s.ByPath("authors/id/A/AB/ABC/Foo-1.5.tar.gz")
		page, _ := s.ByDist("Foo", Page{Limit: 3, Before: 100})
		recent, _ := s.Recent(Page{Limit: 2})
		author, _ := s.ByAuthor("ABC", Page{Limit: 1})
		sum, _ := s.BySHA256(sha256.Sum256([]byte("5")))
		l, lerr := s.Leaf(7)
		s.PutMeta("follow:x", []byte("42"))
		m, _ := s.GetMeta("follow:x")
		n, _ := s.Size()
		got := fmt.Sprint(idx(recs), idx(page), idx(recent), idx(author), idx(sum), len(l), lerr, string(m), n)
		dumps[kind+"/answers"] = got
	}
	if m, ok := dumps["mysql"]; ok {
		if m != dumps["bbolt"] {
			t.Errorf("MySQL and bbolt dumps differ")
		}
		if dumps["mysql/answers"] != dumps["bbolt/answers"] {
			t.Errorf("answers differ:\n bbolt %s\n mysql %s", dumps["bbolt/answers"], dumps["mysql/answers"])
		}
	}
	if !strings.Contains(dumps["bbolt"], fmt.Sprintf("size %d\n", len(leaves))) {
		t.Errorf("bbolt dump: %.100s", dumps["bbolt"])
	}
}

func idx(rs []Record) (out []uint64) {
	for _, r := range rs {
		out = append(out, r.Index)
	}
	return out
}

// TestPaths: every store lists each indexed path exactly once, whatever
// the number of entries per path; unparsable leaves have none.
func TestPaths(t *testing.T) {
	var leaves [][]byte
	want := map[string]bool{}
	for i := range 500 {
		p := fmt.Sprintf("authors/id/A/AB/ABC/Foo-1.%d.tar.gz", i%300)
		leaves = append(leaves, leaf(t, p, fmt.Sprint(i)))
		want[p] = true
		if i%101 == 0 {
			leaves = append(leaves, []byte("not an entry\n"))
		}
	}
	for kind, s := range stores(t) {
		if _, err := s.Append(0, leaves); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		got := map[string]int{}
		if err := s.Paths(func(p string) error { got[p]++; return nil }); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		for p := range want {
			if got[p] != 1 {
				t.Errorf("%s: %s listed %d times, want once", kind, p, got[p])
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d paths listed, want %d", kind, len(got), len(want))
		}
	}
}
