package log

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// check-data and the start checks on S3 + MariaDB look through the
// storage the log uses: the bucket's checkpoint, tiles and index file
// versions, Tessera's state and the lookup index in the database. A
// version deleted from the bucket, or a database whose Tessera state is
// behind the bucket's checkpoint, is refused by both.
func TestCheckDataThroughStorage(t *testing.T) { forStorages(t, testCheckDataThroughStorage) }

func testCheckDataThroughStorage(t *testing.T, storage string) {
	st := onStorage(t, storage)
	dir := t.TempDir()
	s := startServer(t, dir, st)
	content := []byte("Package names found in directory $CPAN/authors/id/\n")
	s.putIndexFile(t, content, 201)
	for _, x := range samples(t)[:3] {
		s.mustAdd(x.request())
	}
	idx := s.mustAdd(fmt.Sprintf(`{"kind":"index","path":"modules/02packages.details.txt","size":%d,"sha256":"%x","time":"2024-01-02T03:04:05Z"}`, len(content), sha256.Sum256(content)))
	s.checkpoint(idx + 1)
	s.stop()
	if err := s.log.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg := Config{DataDir: dir, Logger: s.log.cfg.Logger}
	st(&cfg)

	r, err := CheckData(context.Background(), cfg)
	if err != nil {
		t.Fatalf("check-data could not check: %v", err)
	}
	if r.Failed() || !strings.Contains(r.String(), "ok      tree: all 4 entries read") || !strings.Contains(r.String(), "ok      index files: all 1 logged versions") || !strings.Contains(r.String(), "ok      lookup index: holds all 4 entries") {
		t.Fatalf("check-data on a sound log on %s:\n%s", storage, r)
	}

	// One index file version lost.
	sum := fmt.Sprintf("%x", sha256.Sum256(content))
	stored := IndexFilesDir + "/" + sum[:2] + "/" + sum + ".gz" // compressed: the sample is not gzip
	if storage == StorageS3 {
		b, err := newBucket(context.Background(), cfg.S3)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.c.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(b.name), Key: aws.String(stored)}); err != nil {
			t.Fatal(err)
		}
	} else if err := removeAll(filepath.Join(cfg.DataDir, filepath.FromSlash(stored))); err != nil {
		t.Fatal(err)
	}
	if r, err := CheckData(context.Background(), cfg); err != nil || !r.Failed() || !strings.Contains(r.String(), "1 of 1 logged versions cannot be read back") || !strings.Contains(r.String(), sum) {
		t.Errorf("check-data without the version's bytes on %s: %v\n%s", storage, err, r)
	}
	if l, err := Open(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "the bytes of 1 of the 1 logged index file versions looked at are missing") {
		if err == nil {
			l.Shutdown(context.Background())
		}
		t.Errorf("the server started without the version's bytes on %s: %v", storage, err)
	}
	if storage != StorageS3 {
		return
	}
	// Tessera's state in the database behind the bucket: a database dump
	// older than the bucket's copy.
	db, err := sql.Open("mysql", cfg.S3.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("UPDATE IntCoord SET seq = 2 WHERE id = 0"); err != nil {
		t.Fatal(err)
	}
	if r, err := CheckData(context.Background(), cfg); err != nil || !r.Failed() || !strings.Contains(r.String(), "is at size 2 but the published checkpoint at 4") {
		t.Errorf("check-data with Tessera's state behind the bucket: %v\n%s", err, r)
	}
	cfg.AllowMissingIndexFiles = true
	if l, err := Open(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "restore the database dump taken together with the bucket's copy") {
		if err == nil {
			l.Shutdown(context.Background())
		}
		t.Errorf("the server started with Tessera's state behind the bucket: %v", err)
	}
}

func removeAll(p string) error { return os.RemoveAll(p) }
