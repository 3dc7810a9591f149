package log

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api"

	"github.com/CPAN-Security/cpan-tlog/client"
)

// TestEntryBundlesGzip: C2SP tlog-tiles, entry bundles: "SHOULD be
// compressed at the HTTP layer". A client that accepts gzip gets the
// bundle gzip-compressed (Content-Encoding: gzip); one that does not gets
// the bytes Tessera stores, unchanged; both answers say Vary:
// Accept-Encoding; the entries still hash to the level-0 tile, and the
// client library and Go's default transport read the same bytes either way.
func TestEntryBundlesGzip(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	for _, x := range samples(t)[:5] {
		s.mustAdd(x.request())
	}
	s.checkpoint(5)
	raw := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	get := func(path, accept string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", s.url+path, nil)
		if accept != "" {
			req.Header.Set("Accept-Encoding", accept)
		}
		resp, err := raw.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return resp, b
	}
	const bundle = "/tile/entries/000.p/5"
	stored, err := os.ReadFile(filepath.Join(dir, TreeDir, "tile", "entries", "000.p", "5"))
	if err != nil {
		t.Fatal(err)
	}
	resp, plain := get(bundle, "")
	if resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(plain, stored) {
		t.Errorf("without Accept-Encoding: Content-Encoding %q, %d bytes; want the %d stored bytes as they are", resp.Header.Get("Content-Encoding"), len(plain), len(stored))
	}
	if !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
		t.Errorf("Vary %q without Accept-Encoding", resp.Header.Get("Vary"))
	}
	for _, accept := range []string{"gzip", "gzip, identity", "br, gzip;q=0.8"} {
		resp, body := get(bundle, accept)
		if resp.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, Vary %q", accept, resp.Header.Get("Content-Encoding"), resp.Header.Get("Vary"))
			continue
		}
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("Accept-Encoding %q: not gzip: %v", accept, err)
		}
		unzipped, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(unzipped, stored) {
			t.Errorf("Accept-Encoding %q: gunzipped %d bytes (%v), want the %d stored", accept, len(unzipped), err, len(stored))
		}
		if len(body) >= len(stored) {
			t.Errorf("Accept-Encoding %q: %d bytes compressed, %d not", accept, len(body), len(stored))
		}
	}
	for _, accept := range []string{"gzip;q=0", "br", "identity"} {
		if resp, body := get(bundle, accept); resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(body, stored) {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q", accept, resp.Header.Get("Content-Encoding"))
		}
	}
	// Hash tiles are hashes: not worth compressing, served as they are.
	if resp, _ := get("/tile/0/000.p/5", "gzip"); resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("hash tile: Content-Encoding %q", resp.Header.Get("Content-Encoding"))
	}
	// What a tile hash covers is unchanged: the entries, uncompressed.
	_, tile := get("/tile/0/000.p/5", "")
	var b api.EntryBundle
	if err := b.UnmarshalText(stored); err != nil || len(b.Entries) != 5 {
		t.Fatalf("stored bundle: %v, %d entries", err, len(b.Entries))
	}
	for i, e := range b.Entries {
		if !bytes.Equal(rfc6962.DefaultHasher.HashLeaf(e), tile[i*sha256.Size:(i+1)*sha256.Size]) {
			t.Errorf("entry %d does not hash to the level-0 tile", i)
		}
	}
	// Clients read the same bytes: the verification library and Go's
	// default transport (which asks for gzip and decompresses).
	f, err := client.NewFetcher(s.url, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.ReadEntryBundle(context.Background(), 0, 5); err != nil || !bytes.Equal(got, stored) {
		t.Errorf("client.Fetcher: %d bytes, %v", len(got), err)
	}
	dresp, err := http.Get(s.url + bundle)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(dresp.Body)
	dresp.Body.Close()
	if !dresp.Uncompressed || !bytes.Equal(got, stored) {
		t.Errorf("Go's default client: uncompressed by the transport %v, %d bytes", dresp.Uncompressed, len(got))
	}
}

// BenchmarkEntryBundleGzip measures a full bundle of 256 entries like
// CPAN's (uploads by many authors over a few days, each path, size, hash,
// uploader and time its own) over HTTP, as is and gzip-compressed, and the
// time to serve it compressed.
//
//	go test -run '^$' -bench EntryBundleGzip -benchtime 2000x ./log/
func BenchmarkEntryBundleGzip(b *testing.B) {
	s := startServer(b, b.TempDir())
	r := rand.New(rand.NewPCG(35, 256))
	words := strings.Fields("App Test Moose Type Tiny Data Dumper Net HTTP Server Client Async Mojo Dancer Plack Catalyst DBIx Class Schema Text CSV JSON XS PP YAML Log Any Dispatch File Path Temp Find Rule Date Time Format ISO8601 String Util List More Utils Scalar Hash Merge Config General Crypt Digest SHA Encode Unicode Normalize Template Toolkit Email Sender MIME Lite Image Magick Graph Easy Math BigInt Devel Cover NYTProf Perl Critic Tidy Module Build Install Dist Zilla Plugin Role Object Pad IO Socket SSL Term ANSIColor Getopt Long Pod Usage")
	upper := "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	start := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	for i := range 256 {
		id := make([]byte, 4+r.IntN(5))
		for j := range id {
			id[j] = upper[r.IntN(len(upper))]
		}
		var dist []string
		for range 1 + r.IntN(3) {
			dist = append(dist, words[r.IntN(len(words))])
		}
		path := fmt.Sprintf("authors/id/%c/%s/%s/%s-%d.%03d.tar.gz", id[0], id[:2], id, strings.Join(dist, "-"), r.IntN(3), r.IntN(1000))
		var sum [32]byte
		for j := range sum {
			sum[j] = byte(r.Uint32())
		}
		at := start.Add(time.Duration(i) * 17 * time.Minute).Add(time.Duration(r.IntN(600)) * time.Second)
		s.mustAdd(fmt.Sprintf(`{"path":%q,"size":%d,"sha256":"%x","uploader":%q,"time":%q}`, path, 5000+r.IntN(2_000_000), sum, id, at.Format(time.RFC3339)))
	}
	s.checkpoint(256)
	raw := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	fetch := func(accept string) int {
		req, _ := http.NewRequest("GET", s.url+"/tile/entries/000", nil)
		if accept != "" {
			req.Header.Set("Accept-Encoding", accept)
		}
		resp, err := raw.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("bundle: %v %v", err, resp)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return int(n)
	}
	plain, zipped := fetch(""), fetch("gzip")
	for _, accept := range []string{"identity", "gzip"} {
		b.Run(accept, func(b *testing.B) {
			for range b.N {
				fetch(accept)
			}
			b.ReportMetric(float64(plain), "B/bundle")
			b.ReportMetric(float64(zipped), "gzip-B/bundle")
			b.ReportMetric(float64(zipped)/float64(plain), "ratio")
		})
	}
}
