package entry

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"slices"
	"testing"
	"unicode/utf8"
)

var updateEntryVectors = flag.Bool("update-entry-vectors", false, "rewrite testdata/vectors-entries.jsonl from this package's tables")

// sharedVectors is where the Go and Perl entry parsers meet: one JSON
// object a line, {"name", "entry", "valid"}; client/perl/t/entries.t plays
// the same file.
const sharedVectors = "../../testdata/vectors-entries.jsonl"

type entryVector struct {
	Name  string `json:"name"`
	Entry string `json:"entry"`
	Valid bool   `json:"valid"`
}

func vectorsFromTables() []entryVector {
	var vs []entryVector
	for name, leaf := range map[string]string{"upload": tryTiny, "upload with sigstore": withSigstore, "upload with sigstore-rekor-log": withRekorLog, "delete": deletion, "index version": indexVersion} {
		vs = append(vs, entryVector{name, leaf, true})
	}
	for name, leaf := range rejected() {
		vs = append(vs, entryVector{name, leaf, false})
	}
	slices.SortFunc(vs, func(a, b entryVector) int { return cmpString(a.Name, b.Name) })
	return vs
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestSharedEntryVectors: the shared file is this package's tables, and
// Parse gives each its verdict.
func TestSharedEntryVectors(t *testing.T) {
	want := vectorsFromTables()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for _, v := range want {
		if !utf8.ValidString(v.Entry) {
			t.Fatalf("%s: not UTF-8, which JSON would not carry byte for byte", v.Name)
		}
		enc.Encode(v)
	}
	if *updateEntryVectors {
		if err := os.WriteFile(sharedVectors, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(sharedVectors)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, buf.Bytes()) {
		t.Fatalf("%s is not this package's tables: run go test ./log/entry -run TestSharedEntryVectors -update-entry-vectors", sharedVectors)
	}
	for _, v := range want {
		_, err := Parse([]byte(v.Entry))
		if (err == nil) != v.Valid {
			t.Errorf("%s: Parse gave %v, want valid=%v", v.Name, err, v.Valid)
		}
	}
}
