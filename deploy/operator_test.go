package deploy

import (
	"context"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/internal/readmewalk"
)

// TestOperatorWalk runs deploy/README.md's from-nothing steps literally,
// as root, on the installed packages (.ci/run installs dist/*.deb), the way
// an operator would: it must end with the log, a witness and a monitor
// running from the shipped units as their own users, and the shipped nginx
// config serving the witnessed checkpoint from the tree. It runs in
// private mount and network namespaces (tmpfs over /etc/cpantlog, the
// state directories, /etc/systemd/system, nginx's sites-enabled, /run and
// /var/backups;
// a loopback of its own), with testdata/systemctl standing in for systemd.
func TestOperatorWalk(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the installed packages")
	}
	need := func(ok bool, what string) {
		t.Helper()
		if ok {
			return
		}
		if os.Getenv("CI") != "" {
			t.Fatalf("%s (.ci/run provides it)", what)
		}
		t.Skip(what)
	}
	need(os.Geteuid() == 0, "the operator walk runs as root")
	for _, tool := range []string{"unshare", "setpriv", "nginx", "curl", "ip", "bash"} {
		_, err := exec.LookPath(tool)
		need(err == nil, tool+" is not installed")
	}
	for _, u := range []string{"cpantlog-server", "cpantlog-witness", "cpantlog-monitor"} {
		_, err := os.Stat("/lib/systemd/system/" + u + ".service")
		need(err == nil, "the packages are not installed (dpkg -i dist/*.deb): no "+u+".service")
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmewalk.Blocks(string(readme), "operator-walk")
	if len(blocks) < 6 {
		t.Fatalf("deploy/README.md marks %d blocks for the operator walk", len(blocks))
	}
	standin, _ := filepath.Abs("testdata")
	// The state directories as the packages made them, but empty and private.
	var mounts []string
	for _, d := range []struct{ dir, user, mode string }{
		{"/var/lib/cpantlog", "cpantlog", "0755"}, {"/var/lib/cpantlog-witness", "cpantlog-witness", "0750"}, {"/var/lib/cpantlog-monitor", "cpantlog-monitor", "0750"},
	} {
		u, err := user.Lookup(d.user)
		if err != nil {
			t.Fatal(err)
		}
		mounts = append(mounts, "mount -t tmpfs -o mode="+d.mode+",uid="+u.Uid+",gid="+u.Gid+" tmpfs "+d.dir)
	}
	for _, d := range []string{"/etc/cpantlog", "/etc/systemd/system", "/etc/nginx/sites-enabled", "/run", "/var/backups"} {
		mounts = append(mounts, "mount -t tmpfs -o mode=0755 tmpfs "+d)
	}
	script := "set -euo pipefail\n" +
		"ip link set lo up\n" + strings.Join(mounts, "\n") + "\n" +
		"export PATH=" + standin + ":$PATH STANDIN_STATE=/run/standin\n" +
		strings.Join(blocks, "\n") + "\n" +
		// What ran, and as whom.
		"for u in cpantlog-server cpantlog-witness cpantlog-monitor nginx; do\n" +
		"  systemctl is-active $u || { echo \"$u is not running:\"; cat /run/standin/$u.service.log; exit 1; }\n" +
		"  echo \"running: $u as $(ps -o user= -p $(cat /run/standin/$u.service.pid))\"\n" +
		"done\n" +
		"stat -c 'tree: %U %a' /var/lib/cpantlog/tree\n"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--mount", "--net", "--propagation", "private", "bash", "-c", script)
	// Everything the walk started runs in its process group: stopped after.
	out, err := readmewalk.RunGroup(cmd, t.TempDir())
	if err != nil {
		t.Fatalf("the operator walk failed: %v\n--- script ---\n%s\n--- output ---\n%s", err, script, out)
	}
	for _, want := range []string{
		"running: cpantlog-server as cpantlog", "running: cpantlog-witness as cpantlog-witness",
		"running: cpantlog-monitor as cpantlog-monitor", "running: nginx as root",
		"— witness1.example.net ", // the witnessed checkpoint, through nginx
		"tree: cpantlog 755",
		// The backup and the restore drill (deploy/README.md, Backups and
		// Restore): the restored directory checked, the lookup index and
		// proofs left to the server to rebuild.
		"ok      index files:", "rebuild lookup index: index.db is missing",
		"/var/backups/cpantlog-restore can be served",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the operator walk's output lacks %q:\n%s", want, out)
		}
	}
}
