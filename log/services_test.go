package log

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// ownService is a MariaDB or versitygw server a test started for itself,
// so that it may kill and restart it.
type ownService struct {
	t    *testing.T
	name string
	args []string
	log  string
	cmd  *exec.Cmd
	addr string
}

func (s *ownService) start() {
	s.t.Helper()
	out, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	defer out.Close()
	s.cmd = exec.Command(s.args[0], s.args[1:]...)
	s.cmd.Stdout, s.cmd.Stderr = out, out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start %s: %v", s.name, err)
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if c, err := net.Dial("tcp", s.addr); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(s.log)
			s.t.Fatalf("%s did not start listening on %s:\n%s", s.name, s.addr, b)
		}
	}
}

// kill stops the server with SIGKILL, as a crash would.
func (s *ownService) kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		s.cmd.Wait()
	}
	s.cmd = nil
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// ownServices starts a MariaDB and a versitygw of the test's own (from
// Debian's mariadb-server and the versitygw that scripts/test-services.sh
// installs), with a bucket and a database for one log, and gives the
// log's configuration. Skipped where they are not installed, except in CI.
func ownServices(t *testing.T) (db, gw *ownService, cfg Config) {
	t.Helper()
	unavailable := func(why string) {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s: .ci/run installs it", why)
		}
		t.Skip(why)
	}
	gwBin, err := exec.LookPath("versitygw")
	if err != nil {
		gopath, _ := exec.Command("go", "env", "GOPATH").Output()
		gwBin = filepath.Join(strings.TrimSpace(string(gopath)), "bin", "versitygw")
	}
	if _, err := os.Stat(gwBin); err != nil {
		unavailable("versitygw is not installed (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)")
	}
	if _, err := exec.LookPath("mariadbd"); err != nil {
		unavailable("mariadbd is not installed (Debian's mariadb-server)")
	}
	// mariadbd runs as mysql when started as root: a directory it can use.
	dir, err := os.MkdirTemp("", "cpantlog-own-services-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	dataDir := filepath.Join(dir, "mysql")
	os.Mkdir(dataDir, 0o755)
	if os.Geteuid() == 0 {
		if u, err := user.Lookup("mysql"); err == nil {
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			os.Chown(dataDir, uid, gid)
		}
	}
	if out, err := exec.Command("mariadb-install-db", "--no-defaults", "--user=mysql", "--datadir="+dataDir+"/data",
		"--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	sock := filepath.Join(dataDir, "mysql.sock")
	db = &ownService{t: t, name: "MariaDB", addr: freePort(t), log: filepath.Join(dir, "mariadb.log")}
	_, port, _ := net.SplitHostPort(db.addr)
	db.args = []string{"mariadbd", "--no-defaults", "--user=mysql", "--datadir=" + dataDir + "/data", "--socket=" + sock,
		"--pid-file=" + dataDir + "/mysql.pid", "--bind-address=127.0.0.1", "--port=" + port, "--skip-name-resolve"}
	db.start()
	t.Cleanup(db.kill)
	root, err := sql.Open("mysql", "root@unix("+sock+")/")
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, q := range []string{"CREATE USER 'cpantlog'@'127.0.0.1' IDENTIFIED BY 'cpantlog'", "GRANT ALL ON *.* TO 'cpantlog'@'127.0.0.1'", "CREATE DATABASE cpantlog"} {
		if _, err := root.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	if os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		t.Setenv("AWS_ACCESS_KEY_ID", "cpantlogtest")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "cpantlogtestsecret")
	}
	os.Mkdir(filepath.Join(dir, "s3"), 0o755)
	gw = &ownService{t: t, name: "versitygw", addr: freePort(t), log: filepath.Join(dir, "versitygw.log")}
	gw.args = []string{gwBin, "--access", os.Getenv("AWS_ACCESS_KEY_ID"), "--secret", os.Getenv("AWS_SECRET_ACCESS_KEY"),
		"--port", gw.addr, "posix", filepath.Join(dir, "s3")}
	gw.start()
	t.Cleanup(gw.kill)
	sdk, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + gw.addr
	c := s3.NewFromConfig(sdk, func(o *s3.Options) { o.BaseEndpoint = aws.String(endpoint); o.UsePathStyle = true })
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("cpantlog")}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	cfg.Storage = StorageS3
	cfg.S3 = S3Config{Endpoint: endpoint, Bucket: "cpantlog", DSN: fmt.Sprintf("cpantlog:cpantlog@tcp(%s)/cpantlog", db.addr)}
	return db, gw, cfg
}
