package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/internal/testlog"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

// BenchmarkDistPage loads the page of a distribution with 2,000 releases
// in a log of 200,000 entries, first page and a deep page.
//
//	go test -run '^$' -bench DistPage -benchtime 200x ./log/web/
func BenchmarkDistPage(b *testing.B) {
	tl := testlog.Start(b, tlog.Config{DataDir: b.TempDir()})
	const n, big = 200_000, 2_000
	t0 := time.Unix(1600000000, 0).UTC()
	for lo := 0; lo < n; lo += 5000 {
		var batch []*entry.Entry
		for i := lo; i < lo+5000; i++ {
			p := fmt.Sprintf("authors/id/S/SY/SYNTH%d/Synth-%d-1.0.tar.gz", i%500, i)
			if i%(n/big) == 0 {
				p = fmt.Sprintf("authors/id/B/BI/BIG/Big-Dist-1.%d.tar.gz", i)
			}
			batch = append(batch, &entry.Entry{Kind: entry.Upload, Path: p, Size: uint64(i), Uploader: "SYNTH", Time: t0.Add(time.Duration(i) * time.Second)})
		}
		if _, errs := tl.Log.AddBatch(context.Background(), batch); errs[0] != nil {
			b.Fatal(errs[0])
		}
	}
	for {
		if s, _ := tl.Index().Size(); s == n {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	ex, err := New(tl.Log, nil, "")
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	ex.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for name, u := range map[string]string{"first-page": "/dist/Big-Dist", "deep-page": fmt.Sprintf("/dist/Big-Dist?before=%d", n/2), "home": "/"} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				resp, err := http.Get(srv.URL + u)
				if err != nil || resp.StatusCode != 200 {
					b.Fatalf("%s: %v %v", u, err, resp)
				}
				resp.Body.Close()
			}
		})
	}
}

// BenchmarkBrowserVerify times the page's own check of a tlog-proof in
// headless Chromium (checkVector: log signature, cosignatures, inclusion
// proof, the file's sha256 and size), on the shared vectors valid-upload
// (two Ed25519 witnesses) and mldsa-valid (an Ed25519 and an ML-DSA-44
// witness, checked with the vendored @noble/post-quantum). ns/verify is
// one check in the page; first-ms is the first check, which loads the
// ML-DSA module from the server when the policy needs it.
//
//	go test -run '^$' -bench BrowserVerify -benchtime 200x ./log/web/
func BenchmarkBrowserVerify(b *testing.B) {
	_, srv := explorer(b)
	for _, name := range []string{"valid-upload", "mldsa-valid"} {
		b.Run(name, func(b *testing.B) {
			v, want := readVector(b, "../../testdata/vectors/"+name)
			res := drive(b, true, step{Goto: srv.URL + "/", Bench: &bench{Vector: v, N: b.N}})
			r := res[0].Bench
			if r == nil || r.Code != want {
				b.Fatalf("%s: %+v, want verdict %d", name, r, want)
			}
			b.ReportMetric(r.Ms*1e6/float64(b.N), "ns/verify")
			b.ReportMetric(r.FirstMs, "first-ms")
		})
	}
}
