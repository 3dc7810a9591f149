package log

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/client"
)

// TestMigratePOSIXToS3 moves the sample log from POSIX to S3 + MariaDB: the
// log then runs there with the same root, the client verifies every sample
// against it, and appends continue at the next index.
func TestMigratePOSIXToS3(t *testing.T) {
	if !slices.Contains(storages(t), StorageS3) {
		t.Skip("needs CPANTLOG_TEST_S3_ENDPOINT and CPANTLOG_TEST_MYSQL_DSN")
	}
	dir := t.TempDir()
	s := startServer(t, dir)
	smp := samples(t)
	for _, x := range smp {
		s.mustAdd(x.request())
	}
	// An index version, whose bytes must follow the log to the bucket.
	idxBytes := []byte(strings.Repeat("Try::Tiny 0.31 E/ET/ETHER/Try-Tiny-0.31.tar.gz\n", 50))
	idxSum := sha256.Sum256(idxBytes)
	if code, _, _ := s.do("PUT", fmt.Sprintf("/index-files/%x", idxSum), s.log.Token(), string(idxBytes)); code != 201 {
		t.Fatalf("PUT index file: %d", code)
	}
	s.mustAdd(fmt.Sprintf(`{"kind":"index","path":"modules/02packages.details.txt","size":%d,"sha256":"%x","time":"2024-01-02T03:04:05Z"}`, len(idxBytes), idxSum))
	cp, raw := s.checkpoint(uint64(len(smp)) + 1)
	s.stop()

	var target Config
	onStorage(t, StorageS3)(&target)
	size, root, err := Migrate(context.Background(), dir, target)
	if err != nil {
		t.Fatal(err)
	}
	if size != cp.Size || !bytes.Equal(root, cp.Hash) {
		t.Fatalf("migrated size %d root %x, source %d %x", size, root, cp.Size, cp.Hash)
	}
	s = startServer(t, dir, func(c *Config) { c.Storage, c.S3 = target.Storage, target.S3 })
	if _, err := os.Stat(dir + "/tree"); err != nil {
		t.Fatal(err)
	}
	cp2, raw2 := s.checkpoint(cp.Size)
	if cp2.Size != cp.Size || !bytes.Equal(cp2.Hash, cp.Hash) {
		t.Fatalf("after migration the log serves size %d root %x, before %d %x\n%s\n%s", cp2.Size, cp2.Hash, cp.Size, cp.Hash, raw, raw2)
	}
	p, _ := client.ParsePolicy([]byte("log " + s.log.VerifierKey() + "\nquorum none\n"))
	st, _ := client.OpenState(t.TempDir())
	v, err := client.NewVerifier(p, "", s.url, st, "")
	if err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(dir, IndexFilesDir)) // served from the bucket now
	if code, got, _ := s.do("GET", fmt.Sprintf("/index-files/%x", idxSum), "", ""); code != 200 || !bytes.Equal(got, idxBytes) {
		t.Errorf("index file after migration: %d, %d bytes, want the %d stored", code, len(got), len(idxBytes))
	}
	for _, x := range smp {
		var sum [32]byte
		hex.Decode(sum[:], []byte(x.sha256))
		if _, err := v.VerifyFile(context.Background(), client.File{Path: x.path, Size: x.size, SHA256: sum}); err != nil {
			t.Errorf("verify %s on the migrated log: %v", x.path, err)
		}
	}
	if got := s.mustAdd(`{"path":"authors/id/A/AF/AFTER/After-1.0.tar.gz","size":1,"sha256":"` + hex.EncodeToString(make([]byte, 32)) + `","uploader":"AFTER","time":"2024-01-02T03:04:05Z"}`); got != cp.Size {
		t.Errorf("first add after migration at index %d, want %d", got, cp.Size)
	}
}

// TestMigrateToMissingBucket: a bucket that does not exist is an error at
// once, saying what to do (Tessera's driver would retry it for ever), and
// --s3-create-bucket creates it.
func TestMigrateToMissingBucket(t *testing.T) {
	if !slices.Contains(storages(t), StorageS3) {
		t.Skip("needs CPANTLOG_TEST_S3_ENDPOINT and CPANTLOG_TEST_MYSQL_DSN")
	}
	dir := t.TempDir()
	s := startServer(t, dir)
	s.mustAdd(samples(t)[0].request())
	s.checkpoint(1)
	s.stop()

	var target Config
	onStorage(t, StorageS3)(&target)
	target.S3.Bucket += "-missing"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	_, _, err := Migrate(ctx, dir, target)
	if err == nil || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "--s3-create-bucket") || time.Since(start) > 10*time.Second {
		t.Fatalf("migrate to a missing bucket: %v after %s, want a quick error naming --s3-create-bucket", err, time.Since(start))
	}
	target.S3.CreateBucket = true
	if size, _, err := Migrate(ctx, dir, target); err != nil || size != 1 {
		t.Fatalf("migrate with --s3-create-bucket: %d %v", size, err)
	}
}
