package log

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/go-sql-driver/mysql"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/monitor"
)

// The S3 + MariaDB backup of deploy/README.md: with the writer stopped,
// the database dumped with mariadb-dump and the bucket copied; restored
// into a new database and bucket: check-data passes, the log starts, and a
// monitor that audited it before the backup finds nothing on its next
// round.
func TestBackupRestoreS3(t *testing.T) {
	if !strings.Contains(strings.Join(storages(t), " "), StorageS3) {
		t.Skip("needs S3 + MariaDB (. scripts/test-services.sh)")
	}
	dump, err := exec.LookPath("mariadb-dump")
	if err != nil {
		t.Fatal("mariadb-dump is not installed (Debian's mariadb-client)")
	}
	mariadb, err := exec.LookPath("mariadb")
	if err != nil {
		t.Fatal("mariadb is not installed (Debian's mariadb-client)")
	}
	stA := onStorage(t, StorageS3)
	dirA := t.TempDir()
	a := startServer(t, dirA, stA)
	content := []byte("Package names found in directory $CPAN/authors/id/\n")
	a.putIndexFile(t, content, 201)
	for _, x := range samples(t)[:3] {
		a.mustAdd(x.request())
	}
	idx := a.mustAdd(fmt.Sprintf(`{"kind":"index","path":"modules/02packages.details.txt","size":%d,"sha256":"%x","time":"2024-01-02T03:04:05Z"}`, len(content), sha256.Sum256(content)))
	a.checkpoint(idx + 1)
	vkey := a.log.VerifierKey()
	state := t.TempDir()
	if f := auditOnce(t, vkey, a.url, state); len(f) != 0 {
		t.Fatalf("the monitor's first round found %+v", f)
	}
	a.stop()
	var cfgA, cfgB Config
	stA(&cfgA)

	// The backup: the database, the bucket, the writer's keys and token.
	sqlFile := filepath.Join(t.TempDir(), "cpantlog.sql")
	dsnA, err := mysql.ParseDSN(cfgA.S3.DSN)
	if err != nil {
		t.Fatal(err)
	}
	mysqlArgs := func(d *mysql.Config) []string {
		host, port, _ := strings.Cut(d.Addr, ":")
		return []string{"-h", host, "-P", port, "-u", d.User, "-p" + d.Passwd}
	}
	out, err := os.Create(sqlFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(dump, append(mysqlArgs(dsnA), "--single-transaction", dsnA.DBName)...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("mariadb-dump: %v\n%s", err, stderr.String())
	}
	out.Close()
	bucketDir := t.TempDir()
	s3c := testS3Client(t, cfgA.S3.Endpoint)
	objects := 0
	pages := s3.NewListObjectsV2Paginator(s3c, &s3.ListObjectsV2Input{Bucket: aws.String(cfgA.S3.Bucket)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			r, err := s3c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(cfgA.S3.Bucket), Key: o.Key})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			p := filepath.Join(bucketDir, filepath.FromSlash(*o.Key))
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, b, 0o644)
			objects++
		}
	}
	if objects < 4 { // checkpoint, a tile, an entry bundle, an index file version
		t.Fatalf("the bucket held %d objects", objects)
	}

	// The restore: a new database and bucket from the copies, a new data
	// directory with the keys and the token.
	stB := onStorage(t, StorageS3)
	stB(&cfgB)
	dsnB, _ := mysql.ParseDSN(cfgB.S3.DSN)
	in, _ := os.Open(sqlFile)
	cmd = exec.Command(mariadb, append(mysqlArgs(dsnB), dsnB.DBName)...)
	cmd.Stdin, cmd.Stderr = in, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("mariadb < dump: %v\n%s", err, stderr.String())
	}
	in.Close()
	filepath.WalkDir(bucketDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(bucketDir, p)
		f, _ := os.Open(p)
		defer f.Close()
		if _, err := s3c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(cfgB.S3.Bucket), Key: aws.String(filepath.ToSlash(rel)), Body: f}); err != nil {
			t.Fatal(err)
		}
		return nil
	})
	dirB := t.TempDir()
	for _, name := range []string{KeyFile, VKeyFile, TokenFile} {
		b, err := os.ReadFile(filepath.Join(dirA, name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dirB, name), b, 0o600)
	}
	cfgB.DataDir = dirB
	r, err := CheckData(context.Background(), cfgB)
	if err != nil || r.Failed() || !strings.Contains(r.String(), "ok      tree: all 4 entries read") || !strings.Contains(r.String(), "ok      index files: all 1 logged versions") {
		t.Fatalf("check-data on the restore: %v\n%s", err, r)
	}
	b := startServer(t, dirB, stB)
	b.mustAdd(samples(t)[3].request())
	b.checkpoint(idx + 2)
	if f := auditOnce(t, vkey, b.url, state); len(f) != 0 {
		t.Errorf("the monitor's round after the restore found %+v", f)
	}
	if f := auditOnce(t, vkey, b.url, t.TempDir()); len(f) != 0 {
		t.Errorf("a new monitor auditing the restored log found %+v", f)
	}
}

func testS3Client(t *testing.T, endpoint string) *s3.Client {
	t.Helper()
	sdk, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	return s3.NewFromConfig(sdk, func(o *s3.Options) { o.BaseEndpoint = aws.String(endpoint); o.UsePathStyle = true })
}

// auditOnce runs a monitor round on the log at url, its state in state.
func auditOnce(t *testing.T, vkey, url, state string) []monitor.Finding {
	t.Helper()
	p, err := client.ParsePolicy(fmt.Appendf(nil, "log %s %s\nquorum none\n", vkey, url))
	if err != nil {
		t.Fatal(err)
	}
	m, err := monitor.New(monitor.Config{Policy: p, StateDir: state, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.Sync(ctx); err != nil {
		t.Fatalf("monitor round: %v", err)
	}
	f, err := m.Deliver(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
