package log

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
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
	cp, raw := s.checkpoint(uint64(len(smp)))
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
