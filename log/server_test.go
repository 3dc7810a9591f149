package log

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	_ "github.com/go-sql-driver/mysql"
	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api"
	tclient "github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/client/tlogproof"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

// sample is a real CPAN tarball from testdata.
type sample struct {
	path   string
	size   uint64
	sha256 string
}

func samples(t testing.TB) []sample {
	t.Helper()
	f, err := os.Open("../testdata/SHA256SUMS")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []sample
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		want, p, _ := strings.Cut(sc.Text(), "  ")
		b, err := os.ReadFile(filepath.Join("../testdata", p))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != want {
			t.Fatalf("%s: sha256 %x, SHA256SUMS says %s", p, sum, want)
		}
		out = append(out, sample{path: p, size: uint64(len(b)), sha256: want})
	}
	if len(out) < 8 {
		t.Fatalf("only %d samples", len(out))
	}
	return out
}

func readSample(p string) ([]byte, error) { return os.ReadFile(filepath.Join("../testdata", p)) }

func (s sample) request() string {
	id := strings.Split(s.path, "/")[4]
	return fmt.Sprintf(`{"path":%q,"size":%d,"sha256":%q,"uploader":%q,"time":"2024-01-02T03:04:05Z"}`, s.path, s.size, s.sha256, id)
}

// storages are the storages every server test runs on: POSIX always, and
// S3 + MariaDB when CPANTLOG_TEST_S3_ENDPOINT and CPANTLOG_TEST_MYSQL_DSN
// name real servers (scripts/test-services.sh starts them; .ci/run does).
func storages(t testing.TB) []string {
	if os.Getenv("CPANTLOG_TEST_S3_ENDPOINT") == "" || os.Getenv("CPANTLOG_TEST_MYSQL_DSN") == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CPANTLOG_TEST_S3_ENDPOINT and CPANTLOG_TEST_MYSQL_DSN are unset in CI: .ci/run must start the services")
		}
		t.Log("S3 + MariaDB storage not tested: set CPANTLOG_TEST_S3_ENDPOINT and CPANTLOG_TEST_MYSQL_DSN (. scripts/test-services.sh)")
		return []string{StoragePOSIX}
	}
	return []string{StoragePOSIX, StorageS3}
}

func forStorages(t *testing.T, test func(*testing.T, string)) {
	for _, st := range storages(t) {
		t.Run(st, func(t *testing.T) { test(t, st) })
	}
}

// onStorage configures a log on storage; for S3 it makes a fresh bucket
// and database, shared by every start of the log in this test.
func onStorage(t testing.TB, storage string) func(*Config) {
	t.Helper()
	if storage != StorageS3 {
		return func(*Config) {}
	}
	name := fmt.Sprintf("cpantlog%x", sha256.Sum256([]byte(t.Name()+time.Now().String())))[:24]
	ctx := context.Background()
	sdk, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	endpoint := os.Getenv("CPANTLOG_TEST_S3_ENDPOINT")
	s3c := s3.NewFromConfig(sdk, func(o *s3.Options) { o.BaseEndpoint = aws.String(endpoint); o.UsePathStyle = true })
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket on %s: %v", endpoint, err)
	}
	dsn := os.Getenv("CPANTLOG_TEST_MYSQL_DSN")
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		if db, err := sql.Open("mysql", dsn); err == nil {
			db.Exec("DROP DATABASE " + name)
			db.Close()
		}
	})
	return func(c *Config) {
		c.Storage = StorageS3
		c.S3 = S3Config{Endpoint: endpoint, Bucket: name, DSN: strings.TrimSuffix(dsn, "/") + "/" + name}
	}
}

// server is a real log served over loopback.
type server struct {
	t    testing.TB
	dir  string
	log  *Log
	url  string
	stop func()
}

func startServer(t testing.TB, dir string, mutate ...func(*Config)) *server {
	t.Helper()
	cfg := Config{DataDir: dir, CheckpointInterval: 100 * time.Millisecond, BatchMaxAge: 10 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, m := range mutate {
		m(&cfg)
	}
	l, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, l, ln) }()
	s := &server{t: t, dir: dir, log: l, url: "http://" + ln.Addr().String()}
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	t.Cleanup(s.stop)
	return s
}

func (s *server) do(method, path, token, body string) (int, []byte, http.Header) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func (s *server) add(body string) (int, []byte) {
	code, b, _ := s.do("POST", "/add", s.log.Token(), body)
	return code, b
}

func (s *server) mustAdd(body string) uint64 {
	s.t.Helper()
	code, b := s.add(body)
	if code != 200 {
		s.t.Fatalf("add %s: %d %s", body, code, b)
	}
	var r struct{ Index uint64 }
	if err := json.Unmarshal(b, &r); err != nil {
		s.t.Fatal(err)
	}
	return r.Index
}

// verifier reads the verifier key from log.vkey, as an operator would.
func (s *server) verifier() note.Verifier {
	b, err := os.ReadFile(filepath.Join(s.dir, VKeyFile))
	if err != nil {
		s.t.Fatal(err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(b)))
	if err != nil {
		s.t.Fatal(err)
	}
	return v
}

// checkpoint waits for a checkpoint of at least size and verifies it.
func (s *server) checkpoint(size uint64) (*flog.Checkpoint, []byte) {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, raw, _ := s.do("GET", "/checkpoint", "", "")
		if code == 200 {
			cp, _, _, err := flog.ParseCheckpoint(raw, DefaultOrigin, s.verifier())
			if err != nil {
				s.t.Fatalf("checkpoint does not verify with log.vkey: %v\n%s", err, raw)
			}
			if cp.Size >= size {
				return cp, raw
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("no checkpoint of size %d after 20s (last: %d %s)", size, code, raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSampleTarballsEndToEnd(t *testing.T) { forStorages(t, testSampleTarballsEndToEnd) }

func testSampleTarballsEndToEnd(t *testing.T, storage string) {
	st := onStorage(t, storage)
	s := startServer(t, t.TempDir(), st)
	smp := samples(t)
	idx := map[string]uint64{}
	for _, x := range smp {
		idx[x.path] = s.mustAdd(x.request())
	}
	cp, _ := s.checkpoint(uint64(len(smp)))

	u, _ := url.Parse(s.url + "/")
	fetcher, err := tclient.NewHTTPFetcher(u, http.DefaultClient)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := tclient.NewProofBuilder(context.Background(), cp.Size, fetcher.ReadTile)
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := tclient.GetEntryBundle(context.Background(), fetcher.ReadEntryBundle, 0, cp.Size)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range smp {
		// /lookup returns the entry for the path, which matches the file.
		code, body, _ := s.do("GET", "/lookup?path="+url.QueryEscape(x.path), "", "")
		if code != 200 {
			t.Fatalf("lookup %s: %d %s", x.path, code, body)
		}
		var lr LookupResponse
		if err := json.Unmarshal(body, &lr); err != nil {
			t.Fatal(err)
		}
		e, err := entry.Parse(lr.Entry)
		if err != nil {
			t.Fatalf("lookup %s: %v", x.path, err)
		}
		if lr.Index != idx[x.path] || e.Path != x.path || e.Size != x.size || hex.EncodeToString(e.SHA256[:]) != x.sha256 {
			t.Errorf("lookup %s = index %d %+v, want index %d and the file's size and sha256", x.path, lr.Index, e, idx[x.path])
		}
		if !bytes.Equal(bundle.Entries[lr.Index], lr.Entry) {
			t.Errorf("entry bundle leaf %d differs from /lookup's", lr.Index)
		}
		// Inclusion, proven from the tiles served over HTTP.
		hashes, err := pb.InclusionProof(context.Background(), lr.Index)
		if err != nil {
			t.Fatal(err)
		}
		leafHash := rfc6962.DefaultHasher.HashLeaf(lr.Entry)
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, lr.Index, cp.Size, leafHash, hashes, cp.Hash); err != nil {
			t.Errorf("inclusion of %s: %v", x.path, err)
		}
		// /proof is a tlog-proof that verifies on its own.
		code, body, _ = s.do("GET", "/proof?path="+url.QueryEscape(x.path), "", "")
		if code != 200 {
			t.Fatalf("proof %s: %d %s", x.path, code, body)
		}
		p, err := tlogproof.Parse(body)
		if err != nil {
			t.Fatal(err)
		}
		pcp, _, _, err := flog.ParseCheckpoint(p.Checkpoint, DefaultOrigin, s.verifier())
		if err != nil {
			t.Fatal(err)
		}
		if p.Index != lr.Index || !bytes.Equal(p.Extra, lr.Entry) {
			t.Errorf("proof %s: index %d extra %q", x.path, p.Index, p.Extra)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, p.Index, pcp.Size, rfc6962.DefaultHasher.HashLeaf(p.Extra), p.InclusionProof, pcp.Hash); err != nil {
			t.Errorf("tlog-proof of %s: %v", x.path, err)
		}
	}
	// A path never logged is a 404 for both.
	for _, ep := range []string{"/lookup", "/proof"} {
		if code, _, _ := s.do("GET", ep+"?path=authors/id/N/NO/NOBODY/Nothing-1.0.tar.gz", "", ""); code != 404 {
			t.Errorf("%s of an unlogged path: %d, want 404", ep, code)
		}
		if code, _, _ := s.do("GET", ep+"?path=../etc/passwd", "", ""); code != 400 {
			t.Errorf("%s of a bad path: %d, want 400", ep, code)
		}
	}
}

func TestAddWaitReturnsVerifiableProof(t *testing.T) {
	forStorages(t, testAddWaitReturnsVerifiableProof)
}

func testAddWaitReturnsVerifiableProof(t *testing.T, storage string) {
	st := onStorage(t, storage)
	s := startServer(t, t.TempDir(), st)
	x := samples(t)[0]
	code, body, hdr := s.do("POST", "/add?wait=1", s.log.Token(), x.request())
	if code != 200 {
		t.Fatalf("add?wait=1: %d %s", code, body)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	p, err := tlogproof.Parse(body)
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	cp, _, _, err := flog.ParseCheckpoint(p.Checkpoint, DefaultOrigin, s.verifier())
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, p.Index, cp.Size, rfc6962.DefaultHasher.HashLeaf(p.Extra), p.InclusionProof, cp.Hash); err != nil {
		t.Error(err)
	}
	e, err := entry.Parse(p.Extra)
	if err != nil || e.Path != x.path {
		t.Errorf("extra is %q (%v), want the entry for %s", p.Extra, err, x.path)
	}
}

func TestAddErrors(t *testing.T) { forStorages(t, testAddErrors) }

// putIndexFile stores an index file version's bytes, wanting status code.
func (s *server) putIndexFile(t *testing.T, content []byte, code int) {
	t.Helper()
	if got, b, _ := s.do("PUT", fmt.Sprintf("/index-files/%x", sha256.Sum256(content)), s.log.Token(), string(content)); got != code {
		t.Fatalf("PUT index file: %d %s, want %d", got, b, code)
	}
}

func testAddErrors(t *testing.T, storage string) {
	st := onStorage(t, storage)
	s := startServer(t, t.TempDir(), st)
	x := samples(t)[0]
	first := s.mustAdd(x.request())
	other := strings.Replace(x.request(), x.sha256, strings.Repeat("ab", 32), 1)
	readme := `{"path":"authors/id/E/ET/ETHER/README","size":1,"sha256":"` + strings.Repeat("01", 32) + `","uploader":"ETHER","time":"2024-01-02T03:04:05Z"}`
	readme2 := strings.Replace(readme, strings.Repeat("01", 32), strings.Repeat("02", 32), 1)
	del := `{"kind":"delete","path":"` + x.path + `","time":"2024-02-02T03:04:05Z"}`
	v1, v2, v3 := []byte("index v1"), []byte("index v2"), []byte("index v3, bytes never stored")
	for _, v := range [][]byte{v1, v2} {
		s.putIndexFile(t, v, http.StatusCreated)
	}
	s.putIndexFile(t, v1, http.StatusOK) // again: already stored
	indexOf := func(v []byte) string {
		return fmt.Sprintf(`{"kind":"index","path":"modules/02packages.details.txt.gz","size":%d,"sha256":"%x","time":"2024-01-02T00:00:00Z"}`, len(v), sha256.Sum256(v))
	}
	index1 := indexOf(v1)
	cases := []struct {
		name, token, body string
		code              int
		contains          string
	}{
		{"identical again", s.log.Token(), x.request(), 200, fmt.Sprintf(`"index":%d`, first)},
		{"different file at the path", s.log.Token(), other, 409, "already logged"},
		{"no token", "", x.request(), 401, "bearer token"},
		{"wrong token", "nope", x.request(), 401, "bearer token"},
		{"token with suffix", s.log.Token() + "x", x.request(), 401, ""},
		{"not JSON", s.log.Token(), "path=x", 400, "JSON"},
		{"unknown field", s.log.Token(), `{"path":"x","colour":"red"}`, 400, "colour"},
		{"two objects", s.log.Token(), x.request() + x.request(), 400, "more than one"},
		{"bad path", s.log.Token(), strings.Replace(x.request(), "authors/id/", "authors/id/../", 1), 400, "invalid CPAN path"},
		{"bad sha256", s.log.Token(), strings.Replace(x.request(), x.sha256, "abc", 1), 400, "sha256"},
		{"no size", s.log.Token(), `{"path":"` + x.path + `","sha256":"` + x.sha256 + `","uploader":"ETHER","time":"2024-01-02T03:04:05Z"}`, 400, "size"},
		{"bad time", s.log.Token(), strings.Replace(x.request(), "2024-01-02T03:04:05Z", "yesterday", 1), 400, "time"},
		{"time two days ahead", s.log.Token(), strings.Replace(strings.Replace(x.request(), "2024-01-02T03:04:05Z", time.Now().Add(48*time.Hour).UTC().Format(entry.TimeFormat), 1), "Try-Tiny", "Try-Tinier", 1), 400, "in the future"},
		{"index version in 2099", s.log.Token(), strings.Replace(index1, "2024-01-02T00:00:00Z", "2099-01-01T00:00:00Z", 1), 400, "later than the log's clock"},
		{"bad uploader", s.log.Token(), strings.Replace(x.request(), `"uploader":"ETHER"`, `"uploader":"ether"`, 1), 400, "uploader"},
		{"bundle on a tarball", s.log.Token(), strings.Replace(x.request(), `{`, `{"bundle":"eA==",`, 1), 400, ".sigstore.json"},
		{"too large", s.log.Token(), `{"path":"` + strings.Repeat("a", MaxAddBody) + `"}`, 413, "larger"},
		{"readme", s.log.Token(), readme, 200, `"duplicate":false`},
		{"readme overwritten", s.log.Token(), readme2, 200, `"duplicate":false`},
		{"delete", s.log.Token(), del, 200, `"duplicate":false`},
		{"delete again", s.log.Token(), del, 200, `"duplicate":true`},
		{"delete again later", s.log.Token(), strings.Replace(del, "2024-02", "2024-03", 1), 409, "already logged as deleted"},
		{"re-upload after delete", s.log.Token(), other, 409, "already logged"},
		{"delete never logged", s.log.Token(), strings.Replace(del, "Try-Tiny", "Nothing", 1), 409, "nothing to delete"},
		{"delete with size", s.log.Token(), strings.Replace(del, `"kind"`, `"size":1,"kind"`, 1), 400, "only kind"},
		// Invalid UTF-8 would become U+FFFD inside encoding/json: one leaf for two paths.
		{"invalid UTF-8 in path", s.log.Token(), strings.Replace(x.request(), "Try-Tiny", "Try-\xffTiny", 1), 400, "not valid UTF-8"},
		{"lone surrogate escape", s.log.Token(), strings.Replace(x.request(), "Try-Tiny", `Try-\ud800Tiny`, 1), 400, "U+FFFD"},
		{"look-alike U+200B", s.log.Token(), strings.Replace(x.request(), "Try-Tiny", "Try-Tiny\u200b", 1), 400, "format character"},
		{"look-alike U+FEFF", s.log.Token(), strings.Replace(x.request(), "Try-Tiny", "\ufeffTry-Tiny", 1), 400, "format character"},
		{"look-alike U+2003", s.log.Token(), strings.Replace(x.request(), "Try-Tiny", "Try\u2003Tiny", 1), 400, "white space"},
		{"look-alike U+3000", s.log.Token(), strings.Replace(x.request(), "Try-Tiny", "Try\u3000Tiny", 1), 400, "white space"},
		{"look-alike U+202E", s.log.Token(), strings.Replace(x.request(), "Try-Tiny", "Try\u202eTiny", 1), 400, "format character"},
		{"index version", s.log.Token(), index1, 200, `"duplicate":false`},
		{"index, same content later", s.log.Token(), strings.Replace(index1, "2024-01-02", "2024-01-03", 1), 200, `"duplicate":true`},
		{"index, new content", s.log.Token(), indexOf(v2), 200, `"duplicate":false`},
		{"index, bytes not stored", s.log.Token(), indexOf(v3), 422, "PUT the file to /index-files/"},
		{"index with uploader", s.log.Token(), strings.Replace(index1, `"time"`, `"uploader":"ETHER","time"`, 1), 400, "no uploader"},
		{"index of another file", s.log.Token(), strings.Replace(index1, "02packages.details.txt.gz", "03modlist.data.gz", 1), 400, "not an index file"},
		{"upload at an index path", s.log.Token(), strings.Replace(x.request(), x.path, "modules/02packages.details.txt.gz", 1), 400, "invalid CPAN path"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body, hdr := s.do("POST", "/add", c.token, c.body)
			if code != c.code || !strings.Contains(string(body), c.contains) {
				t.Errorf("got %d %s, want %d containing %q", code, body, c.code, c.contains)
			}
			if code == 401 && hdr.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	recs, _ := s.log.History("authors/id/E/ET/ETHER/README")
	if len(recs) != 2 {
		t.Errorf("README history has %d entries, want 2 (PAUSE lets documentation be overwritten)", len(recs))
	}
	if recs, _ := s.log.History("modules/02packages.details.txt.gz"); len(recs) != 2 {
		t.Errorf("02packages history has %d entries, want 2 (a new version only when the content changes)", len(recs))
	}
}

// TestErrorBodiesHideFilesystemPaths: a storage error answers 500 with a
// body that names no file on the server (the log has them).
func TestErrorBodiesHideFilesystemPaths(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	x := samples(t)[0]
	s.mustAdd(x.request())
	// Replace the partial tiles and entry bundle with directories: reading them fails.
	var broken []string
	filepath.WalkDir(filepath.Join(dir, TreeDir, "tile"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			broken = append(broken, strings.TrimPrefix(p, filepath.Join(dir, TreeDir)))
		}
		return nil
	})
	if len(broken) == 0 {
		t.Fatal("no tile files found")
	}
	for _, rel := range broken {
		p := filepath.Join(dir, TreeDir, rel)
		good, _ := os.ReadFile(p)
		os.Remove(p)
		os.Mkdir(p, 0o700)
		code, body, _ := s.do("GET", filepath.ToSlash(rel), "", "")
		os.Remove(p)
		os.WriteFile(p, good, 0o644) // the server must shut down cleanly
		if code != 500 {
			t.Errorf("GET %s of a broken tile: %d %s", rel, code, body)
		}
		if strings.Contains(string(body), dir) || strings.Contains(string(body), "/tile/") {
			t.Errorf("GET %s: the error body shows the server's files: %s", rel, body)
		}
	}
}

func TestAddOverloadedAndShuttingDown(t *testing.T) { forStorages(t, testAddOverloadedAndShuttingDown) }

func testAddOverloadedAndShuttingDown(t *testing.T, storage string) {
	st := onStorage(t, storage)
	s := startServer(t, t.TempDir(), st, func(c *Config) { c.MaxInflightAdds = 1 })
	x := samples(t)
	s.log.inflight <- struct{}{} // occupy the only slot
	code, body, hdr := s.do("POST", "/add", s.log.Token(), x[0].request())
	if code != 503 || hdr.Get("Retry-After") == "" {
		t.Errorf("full: %d %s (Retry-After %q), want 503 with Retry-After", code, body, hdr.Get("Retry-After"))
	}
	<-s.log.inflight
	s.mustAdd(x[0].request())

	// Once the appender is shut down, adds get 503 and change nothing.
	if err := s.log.shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	code, body, hdr = s.do("POST", "/add", s.log.Token(), x[1].request())
	if code != 503 || hdr.Get("Retry-After") == "" {
		t.Errorf("shut down: %d %s, want 503 with Retry-After", code, body)
	}
	if recs, _ := s.log.History(x[1].path); len(recs) != 0 {
		t.Errorf("a refused add left %d entries", len(recs))
	}
}

func TestConcurrentAddsOfOnePath(t *testing.T) { forStorages(t, testConcurrentAddsOfOnePath) }

func testConcurrentAddsOfOnePath(t *testing.T, storage string) {
	st := onStorage(t, storage)
	s := startServer(t, t.TempDir(), st)
	x := samples(t)[0]
	const n = 40
	codes := make([]int, n)
	bodies := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := x.request()
			if i%2 == 1 { // half of them claim different content
				body = strings.Replace(body, x.sha256, fmt.Sprintf("%064x", i), 1)
			}
			codes[i], bodies[i] = s.add(body)
		}()
	}
	wg.Wait()
	logged := 0
	for i := range n {
		if codes[i] == 200 && bytes.Contains(bodies[i], []byte(`"duplicate":false`)) {
			logged++
		}
		if codes[i] != 200 && codes[i] != 409 {
			t.Errorf("add %d: %d %s", i, codes[i], bodies[i])
		}
	}
	if logged != 1 {
		t.Errorf("%d adds were logged, want exactly 1", logged)
	}
	s.checkpoint(1)
	if err := s.log.follow.catchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs, _ := s.log.index.ByPath(x.path)
	if len(recs) != 1 {
		t.Errorf("the index holds %d entries for the path, want 1", len(recs))
	}
	if n, _ := s.log.index.Size(); n != 1 {
		t.Errorf("the log holds %d entries, want 1", n)
	}
}

func TestRestartKeepsEntriesAndKey(t *testing.T) { forStorages(t, testRestartKeepsEntriesAndKey) }

func testRestartKeepsEntriesAndKey(t *testing.T, storage string) {
	st := onStorage(t, storage)
	dir := t.TempDir()
	smp := samples(t)
	s := startServer(t, dir, st)
	vkey := s.log.VerifierKey()
	token := s.log.Token()
	for _, x := range smp[:4] {
		s.mustAdd(x.request())
	}
	s.stop() // graceful: publishes a checkpoint covering all four

	s = startServer(t, dir, st)
	if s.log.VerifierKey() != vkey || s.log.Token() != token {
		t.Fatal("restart changed the key or the token")
	}
	if cp, _ := s.checkpoint(0); cp.Size != 4 {
		t.Errorf("after restart the checkpoint has size %d, want 4", cp.Size)
	}
	for i, x := range smp[:4] {
		code, body, _ := s.do("GET", "/lookup?path="+x.path, "", "")
		if code != 200 || !strings.Contains(string(body), fmt.Sprintf(`"index":%d`, i)) {
			t.Errorf("after restart lookup %s: %d %s", x.path, code, body)
		}
		if code, _ := s.add(x.request()); code != 200 {
			t.Errorf("re-adding %s after restart: %d, want 200 (duplicate)", x.path, code)
		}
		// Known only from the index (nothing pending after a restart):
		// other content at the path is still a rewrite.
		other := sample{path: x.path, size: x.size + 1, sha256: strings.Repeat("ab", 32)}
		if code, body := s.add(other.request()); code != http.StatusConflict {
			t.Errorf("rewriting %s after restart: %d %s, want 409", x.path, code, body)
		}
	}
	if got := s.mustAdd(smp[4].request()); got != 4 {
		t.Errorf("next add got index %d, want 4", got)
	}
	// The key file stays private.
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("log.key mode %v, %v; want 0600", fi.Mode(), err)
	}
	fi, err = os.Stat(filepath.Join(dir, TokenFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("ingest.token mode %v, %v; want 0600", fi.Mode(), err)
	}
	// A wrong origin for an existing key is refused.
	s.stop()
	if _, err := Open(context.Background(), Config{DataDir: dir, Origin: "example.com/other"}); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("Open with another origin: %v", err)
	}
}

func TestReindexEqualsOnlineIndex(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	for _, x := range samples(t) {
		s.mustAdd(x.request())
	}
	for i := range 300 { // more than one entry bundle
		s.mustAdd(fmt.Sprintf(`{"path":"authors/id/S/SY/SYNTH/Synth-%d.tar.gz","size":%d,"sha256":"%064x","uploader":"SYNTH","time":"2024-01-02T03:04:05Z"}`, i, i, i))
	}
	s.mustAdd(`{"kind":"delete","path":"authors/id/S/SY/SYNTH/Synth-7.tar.gz","time":"2024-03-02T03:04:05Z"}`)
	s.stop()

	dump := func() string {
		ix, err := Open(context.Background(), Config{DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		defer ix.Shutdown(context.Background())
		var b bytes.Buffer
		if err := ix.index.Dump(&b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	online := dump()
	var progress bytes.Buffer
	n, err := Reindex(context.Background(), dir, &progress)
	if err != nil {
		t.Fatal(err)
	}
	if n != 309 || !strings.Contains(progress.String(), "309/309") {
		t.Errorf("reindexed %d entries, progress %q; want 309", n, progress.String())
	}
	if rebuilt := dump(); rebuilt != online {
		t.Errorf("reindexed lookup index differs from the one built online")
	}
	if !strings.Contains(online, "size 309\n") {
		t.Errorf("online index: %.200s", online)
	}
}

func TestReindexRefusesWhileServing(t *testing.T) {
	dir := t.TempDir()
	startServer(t, dir)
	if _, err := Reindex(context.Background(), dir, nil); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Errorf("Reindex while serving: %v, want a lock error", err)
	}
}

func TestTilesAndMetrics(t *testing.T) { forStorages(t, testTilesAndMetrics) }

func testTilesAndMetrics(t *testing.T, storage string) {
	st := onStorage(t, storage)
	s := startServer(t, t.TempDir(), st)
	for _, x := range samples(t) {
		s.mustAdd(x.request())
	}
	cp, _ := s.checkpoint(8)
	code, body, hdr := s.do("GET", fmt.Sprintf("/tile/0/000.p/%d", cp.Size), "", "")
	if code != 200 || len(body) != int(cp.Size)*32 || !strings.Contains(hdr.Get("Cache-Control"), "max-age") {
		t.Errorf("partial hash tile: %d, %d bytes, %q", code, len(body), hdr.Get("Cache-Control"))
	}
	code, body, _ = s.do("GET", fmt.Sprintf("/tile/entries/000.p/%d", cp.Size), "", "")
	var b api.EntryBundle
	if code != 200 || b.UnmarshalText(body) != nil || len(b.Entries) != int(cp.Size) {
		t.Errorf("partial entry bundle: %d, %d entries", code, len(b.Entries))
	}
	for _, p := range []string{"/tile/0/000.p/200", "/tile/0/000", "/tile/entries/000", "/tile/9/000", "/tile/x/../../log.key", "/tile/entries/../../log.key"} {
		if code, body, _ := s.do("GET", p, "", ""); code != 404 && code != 400 {
			t.Errorf("GET %s: %d %.80s, want 404 or 400", p, code, body)
		}
	}
	code, body, _ = s.do("GET", "/metrics", "", "")
	if code != 200 || !strings.Contains(string(body), `cpantlog_adds_total{outcome="logged",token="default"} 8`) {
		t.Errorf("metrics: %d\n%.2000s", code, body)
	}
	if code, body, _ := s.do("GET", "/healthz", "", ""); code != 200 || string(body) != "ok\n" {
		t.Errorf("healthz: %d %q", code, body)
	}
}
