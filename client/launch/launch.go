// Package launch prepares a CPAN client's environment and arguments so
// that everything it fetches from CPAN goes through a verifying proxy:
// every proxy variable (http, https, ftp, all) points at the proxy, no
// host is exempted, the configuration files the clients' download
// programs read (wget's wgetrc, curl's .curlrc, CPAN.pm's MyConfig) are
// replaced or overridden, and the clients that take a mirror of their own
// (Carton, cpm) are given the proxy as that mirror. An https URL then
// meets the proxy's refusal to tunnel (CONNECT) rather than a path around
// it.
//
// For the clients it knows (cpanm, Carton, CPAN.pm, by the command's
// name), a Plan also loads the Perl hook (client/perl, embedded) into the
// client: it verifies every archive and index file where it arrives,
// through the proxy's check endpoint, so that a file:// or directory
// mirror, which no proxy sees, is verified before anything is unpacked.
//
// Settings can still be missed (a client nobody knew reads another file),
// so a Plan also says where the clients leave what they fetched: Used
// hashes every archive and index file there after the run, whatever its
// first bytes, for the caller to compare with what was verified (fail
// closed).
package launch

import (
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	perlhook "github.com/CPAN-Security/cpan-tlog/client/perl"
)

// proxyVars are the variables HTTP::Tiny, LWP, curl and wget read, set to
// the proxy. LWP reads any variable whose lower-cased name is
// SCHEME_proxy, in any spelling, and CGI_HTTP_PROXY when REQUEST_METHOD is
// set: every variable whose lower-cased name ends in _proxy is removed
// first (isProxyVar), then these are set.
var proxyVars = []string{"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "ftp_proxy", "FTP_PROXY", "all_proxy", "ALL_PROXY", "CGI_HTTP_PROXY"}

// isProxyVar reports whether an environment variable could name a proxy or
// exempt hosts from one, in any spelling: Http_Proxy, no_PROXY, gopher_proxy.
func isProxyVar(name string) bool {
	return strings.HasSuffix(strings.ToLower(name), "_proxy")
}

// clearedVars name other mirrors (cpanm's options from the environment:
// --mirror, --mirror-index, a file:// mirror), or would point the Perl
// hook at another proxy (an outer cpantlog exec's).
var clearedVars = []string{"PERL_CPANM_OPT", "CPANTLOG_EXEC_CHECK", "CPANTLOG_EXEC_TOKEN"}

// Hook is how the Perl hook that a Plan loads into the clients it knows
// reaches cpantlog exec.
type Hook struct {
	// Check is the URL of the proxy's check endpoint,
	// http://127.0.0.1:PORT/.cpantlog/check (CPANTLOG_EXEC_CHECK).
	Check string
	// Token is the endpoints' bearer token (CPANTLOG_EXEC_TOKEN).
	Token string
	// Policy is the absolute path of the trust policy exec itself uses
	// (CPANTLOG_POLICY).
	Policy string
}

// hookModule returns the module that loads the Perl hook into a client
// (cpanm's and Carton's, or CPAN.pm's plugin), by the command's name, or
// "" for a command the hook does not know.
func hookModule(argv0 string) string {
	switch filepath.Base(argv0) {
	case "cpanm", "cpanm-tlog", "carton", "carton-tlog":
		return "CPAN::TLog::Cpanm"
	case "cpan":
		return cpanPlugin
	}
	return ""
}

const cpanPlugin = "CPAN::Plugin::TLog"

// Plan is how to run one command through the proxy.
type Plan struct {
	Argv []string
	Env  []string
	// Notes name the user's settings that were overridden, to tell them.
	Notes []string
	// Hooked is the module that loads the Perl hook into the command
	// (PERL5OPT), or "" when the command is not a client the hook knows.
	Hooked string
	// fetched are the directories where the clients leave what they
	// fetched: cpanm's (its home is set to one of ours), Menlo's for
	// Carton (under the user's HOME), CPAN.pm's sources (set to ours).
	fetched []string
	start   time.Time
}

// New prepares argv to run with every fetch going through the proxy at
// proxyURL (http://127.0.0.1:PORT), writing the configuration files it
// needs into dir, a fresh temporary directory. With hook, a client the
// hook knows (cpanm, cpanm-tlog, carton, carton-tlog, cpan) also gets the
// Perl hook, extracted into dir: PERL5LIB starts with it, PERL5OPT loads
// it (the user's own PERL5OPT is dropped: it could load code that unwraps
// the hook), and CPANTLOG_EXEC_CHECK, CPANTLOG_EXEC_TOKEN and
// CPANTLOG_POLICY tell it where to have files checked; cpan's
// configuration also lists the plugin. Other commands get none of this.
func New(argv, environ []string, proxyURL, dir string, hook *Hook) (*Plan, error) {
	if len(argv) == 0 {
		return nil, errors.New("no command to run")
	}
	p := &Plan{start: time.Now().Add(-time.Second)}
	// wget reads the system wgetrc, then the user's ($WGETRC or
	// ~/.wgetrc): both are replaced by one that uses the proxy.
	wgetrc := filepath.Join(dir, "wgetrc")
	if err := os.WriteFile(wgetrc, []byte(fmt.Sprintf("# Written by cpantlog exec.\nuse_proxy = on\nhttp_proxy = %s\nhttps_proxy = %s\nftp_proxy = %s\nno_proxy = \n", proxyURL, proxyURL, proxyURL)), 0o600); err != nil {
		return nil, err
	}
	// curl reads the first .curlrc of $CURL_HOME, $XDG_CONFIG_HOME, $HOME.
	if err := os.WriteFile(filepath.Join(dir, ".curlrc"), []byte(fmt.Sprintf("# Written by cpantlog exec.\nproxy = %q\nnoproxy = \"\"\n", proxyURL)), 0o600); err != nil {
		return nil, err
	}
	cpanmHome := filepath.Join(dir, "cpanm")
	set := map[string]string{"WGETRC": wgetrc, "SYSTEM_WGETRC": wgetrc, "CURL_HOME": dir, "PERL_CPANM_HOME": cpanmHome}
	if hook != nil {
		p.Hooked = hookModule(argv[0])
	}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if k == "PERL_CPANM_OPT" && strings.TrimSpace(v) != "" {
			p.Notes = append(p.Notes, fmt.Sprintf("PERL_CPANM_OPT (%q) is ignored: it can name other mirrors; put the options you need after --", v))
		}
		if k == "PERL5OPT" && p.Hooked != "" && strings.TrimSpace(v) != "" {
			p.Notes = append(p.Notes, fmt.Sprintf("PERL5OPT (%q) is ignored: it could load code that unwraps the verifying hook; PERL5OPT is -M%s", v, p.Hooked))
		}
		if k == "HOME" && v != "" {
			// Where Menlo (Carton) works when PERL_CPANM_HOME does not
			// reach it.
			p.fetched = append(p.fetched, filepath.Join(v, ".cpanm", "work"))
		}
	}
	if p.Hooked != "" {
		lib, err := perlhook.Extract(filepath.Join(dir, "perl"))
		if err != nil {
			return nil, err
		}
		perl5lib := lib
		if v, ok := lookup(environ, "PERL5LIB"); ok && v != "" {
			perl5lib += string(os.PathListSeparator) + v
		}
		set["PERL5LIB"] = perl5lib
		set["PERL5OPT"] = "-M" + p.Hooked
		set["CPANTLOG_EXEC_CHECK"] = hook.Check
		set["CPANTLOG_EXEC_TOKEN"] = hook.Token
		set["CPANTLOG_POLICY"] = hook.Policy
	}
	p.Env = withEnv(Env(environ, proxyURL), set)
	p.fetched = append(p.fetched, filepath.Join(cpanmHome, "work"), filepath.Join(cpanmHome, "sources"), filepath.Join(dir, "cpan-sources"))
	var err error
	if p.Argv, err = args(argv, proxyURL, dir, p.Hooked == cpanPlugin); err != nil {
		return nil, err
	}
	return p, nil
}

// lookup returns the value of the last k=... in env, the one Perl's %ENV
// holds.
func lookup(env []string, k string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if key, v, _ := strings.Cut(env[i], "="); key == k {
			return v, true
		}
	}
	return "", false
}

// withEnv returns env with the variables in set replaced.
func withEnv(env []string, set map[string]string) []string {
	out := slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		_, ok := set[k]
		return ok
	})
	for _, k := range sortedKeys(set) {
		out = append(out, k+"="+set[k])
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// UsedFile is an archive or index file a client left where it keeps what
// it fetched. Exactly one of three holds: the file was hashed (SHA256,
// and Gzip for an uncompressed index file), it counts as unverified
// whatever its bytes (Unverified), or it could not be read (Unreadable).
type UsedFile struct {
	Name   string // where it lies
	SHA256 [32]byte
	// Gzip is set for an uncompressed index file (02packages.details.txt,
	// 06perms.txt, 01mailrc.txt) that is exactly the gzip decompression of
	// the .gz of the same name beside it: the sha256 of that .gz, whose
	// verdict the file shares.
	Gzip *[32]byte
	// Unverified says why the file is not verified whatever its bytes: a
	// symlink to outside the fetch directories, something other than a
	// regular file.
	Unverified string
	// Unreadable says why the file could not be read: it could not be
	// checked (which is never a pass).
	Unreadable string
}

// Used hashes every archive and index file the clients left in their
// fetch directories during the run, whatever its first bytes (a text file
// named like an archive is what a hostile archive member leaves, and a
// plain-text 02packages is read like a gzipped one): every file below
// CPAN.pm's sources and cpanm's mirror indexes, and the files at the top
// of each cpanm or Menlo work directory made during the run (a
// distribution is fetched there, then unpacked below it). A symlink is
// judged by what it points to, and one that points outside the fetch
// directories counts as unverified, as does anything with such a name
// that is not a regular file. A file or directory that cannot be read is
// listed as Unreadable, never skipped.
func (p *Plan) Used() ([]UsedFile, error) {
	s := &scan{}
	for _, root := range p.fetched {
		if r, err := filepath.EvalSymlinks(root); err == nil {
			s.roots = append(s.roots, r)
		} else if !errors.Is(err, fs.ErrNotExist) {
			s.out = append(s.out, UsedFile{Name: root, Unreadable: err.Error()})
		}
	}
	for _, root := range p.fetched {
		if filepath.Base(root) != "work" {
			err := filepath.WalkDir(root, func(name string, d fs.DirEntry, err error) error {
				switch {
				case err != nil && name == root && errors.Is(err, fs.ErrNotExist):
					return fs.SkipAll
				case err != nil:
					s.out = append(s.out, UsedFile{Name: name, Unreadable: err.Error()})
					if d != nil && d.IsDir() {
						return fs.SkipDir
					}
					return nil
				case d.IsDir():
					return nil
				}
				s.judge(name, d)
				return nil
			})
			if err != nil {
				return nil, err
			}
			continue
		}
		runs, err := os.ReadDir(root)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			s.out = append(s.out, UsedFile{Name: root, Unreadable: err.Error()})
		}
		for _, run := range runs {
			if !run.IsDir() {
				continue
			}
			dir := filepath.Join(root, run.Name())
			info, err := run.Info()
			if err != nil {
				s.out = append(s.out, UsedFile{Name: dir, Unreadable: err.Error()})
				continue
			}
			if info.ModTime().Before(p.start) {
				continue
			}
			files, err := os.ReadDir(dir)
			if err != nil {
				s.out = append(s.out, UsedFile{Name: dir, Unreadable: err.Error()})
			}
			for _, f := range files {
				if !f.IsDir() {
					s.judge(filepath.Join(dir, f.Name()), f)
				}
			}
		}
	}
	return s.out, nil
}

// scan collects Used's verdicts.
type scan struct {
	roots []string // the fetch directories, symlinks resolved
	out   []UsedFile
}

// judge adds name to the list when it is named like an archive or index
// file (a symlink to a directory outside the fetch directories too,
// whatever its name: files would be read through it).
func (s *scan) judge(name string, d fs.DirEntry) {
	isLink := d.Type()&fs.ModeSymlink != 0
	if !fetchedKind(d.Name()) && !isLink {
		return
	}
	target := name
	if isLink {
		t, err := filepath.EvalSymlinks(name)
		if err != nil {
			if fetchedKind(d.Name()) {
				s.out = append(s.out, UsedFile{Name: name, Unreadable: fmt.Sprintf("a symlink that does not resolve: %v", err)})
			}
			return
		}
		if !fetchedKind(d.Name()) {
			// Another name: only a directory outside matters, since the
			// clients would read files through it.
			if st, err := os.Stat(t); err == nil && st.IsDir() && !s.inside(t) {
				s.out = append(s.out, UsedFile{Name: name, Unverified: fmt.Sprintf("a symlink to the directory %s, outside the directories where the clients keep what they fetch", t)})
			}
			return
		}
		if !s.inside(t) {
			s.out = append(s.out, UsedFile{Name: name, Unverified: fmt.Sprintf("a symlink to %s, outside the directories where the clients keep what they fetch", t)})
			return
		}
		target = t
	}
	u := UsedFile{Name: name}
	sum, size, why, err := hashFile(target)
	switch {
	case err != nil:
		u.Unreadable = err.Error()
	case why != "":
		u.Unverified = why
	default:
		u.SHA256 = sum
		if gz := gzipSibling(d.Name()); gz != "" {
			u.Gzip = s.gunzipsTo(filepath.Join(filepath.Dir(name), gz), size, sum)
		}
	}
	s.out = append(s.out, u)
}

// inside reports whether name (symlinks resolved) lies below one of the
// fetch directories.
func (s *scan) inside(name string) bool {
	for _, r := range s.roots {
		if name == r || strings.HasPrefix(name, r+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// gunzipsTo returns the sha256 of the .gz at name when its gzip
// decompression is exactly size bytes with the given sha256, else nil. A
// symlink is followed only inside the fetch directories.
func (s *scan) gunzipsTo(name string, size int64, sum [32]byte) *[32]byte {
	t, err := filepath.EvalSymlinks(name)
	if err != nil || !s.inside(t) {
		return nil
	}
	f, err := openRegular(t)
	if err != nil {
		return nil
	}
	defer f.Close()
	whole := sha256.New()
	zr, err := gzip.NewReader(io.TeeReader(f, whole))
	if err != nil {
		return nil
	}
	plain := sha256.New()
	n, err := io.Copy(plain, io.LimitReader(zr, size+1))
	// Not one byte more or less, and the gzip stream read to its end
	// (trailing bytes that are not another gzip member are an error).
	if err != nil || n != size || [32]byte(plain.Sum(nil)) != sum {
		return nil
	}
	if _, err := io.Copy(whole, f); err != nil {
		return nil
	}
	gz := [32]byte(whole.Sum(nil))
	return &gz
}

// openRegular opens name for reading without blocking on a FIFO or a
// device, and fails unless it is a regular file.
func openRegular(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, &notRegularError{st.Mode()}
	}
	return f, nil
}

type notRegularError struct{ mode fs.FileMode }

func (e *notRegularError) Error() string {
	return fmt.Sprintf("not a regular file (%v): what a client read from it cannot be known", e.mode)
}

// hashFile hashes the regular file name. why is set when it is not one
// (a FIFO, a device, a directory): that is a verdict, not a read error.
func hashFile(name string) (sum [32]byte, size int64, why string, err error) {
	f, err := openRegular(name)
	var nr *notRegularError
	if errors.As(err, &nr) {
		return sum, 0, nr.Error(), nil
	}
	if err != nil {
		return sum, 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	if size, err = io.Copy(h, f); err != nil {
		return sum, 0, "", err
	}
	return [32]byte(h.Sum(nil)), size, "", nil
}

// archiveSuffixes are the names of what the clients unpack (compared
// without case): cpanm and Menlo unpack .zip with unzip and anything else
// with tar, CPAN.pm also .tar.Z and a single gzipped module.
var archiveSuffixes = []string{".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tbz2", ".tar.xz", ".txz", ".tar.z", ".taz", ".tar", ".zip", ".pm.gz"}

// indexNames are the index files the clients fetch and read, compressed
// and as they decompress them. The module list (03modlist) is the
// proxy's own, CHECKSUMS only parsed.
var indexNames = []string{"02packages.details.txt.gz", "02packages.details.txt", "06perms.txt.gz", "06perms.txt", "01mailrc.txt.gz", "01mailrc.txt"}

// fetchedKind reports whether a file name is of a distribution archive or
// an index file: what a client fetches and then trusts.
func fetchedKind(name string) bool {
	low := strings.ToLower(name)
	for _, suffix := range archiveSuffixes {
		if strings.HasSuffix(low, suffix) {
			return true
		}
	}
	return slices.Contains(indexNames, name)
}

// gzipSibling returns the .gz an uncompressed index file is decompressed
// from, or "".
func gzipSibling(name string) string {
	if slices.Contains(indexNames, name) && !strings.HasSuffix(name, ".gz") {
		return name + ".gz"
	}
	return ""
}

// Env returns base (KEY=value strings, as os.Environ) with every variable
// that could name a proxy or exempt a host from one removed, whatever its
// spelling (every name ending in _proxy, case aside: Http_Proxy, NO_PROXY,
// CGI_HTTP_PROXY), every proxy variable (proxyVars) then pointing at
// proxyURL (http://127.0.0.1:PORT), and Carton's mirror set to the proxy
// (its fallback mirrors, cpan.metacpan.org and backpan.perl.org, then go
// through the proxy as well, which fetches them from its upstream and
// verifies them).
func Env(base []string, proxyURL string) []string {
	set := map[string]string{"PERL_CARTON_MIRROR": proxyURL}
	for _, v := range proxyVars {
		set[v] = proxyURL
	}
	var out []string
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if _, replaced := set[k]; replaced || isProxyVar(k) || slices.Contains(clearedVars, k) {
			continue
		}
		out = append(out, kv)
	}
	for _, k := range sortedKeys(set) {
		out = append(out, k+"="+set[k])
	}
	return out
}

// Args returns argv adjusted for clients whose mirrors are only arguments
// or configuration, writing what they need into dir:
//
//   - "cpm install ..." gets the proxy as its mirror and its 02packages as
//     its resolver (cpm's defaults are https, which the proxy does not
//     tunnel);
//   - "cpan ..." (CPAN.pm) gets -j with a configuration that loads the
//     user's own and replaces every mirror with the proxy (CPAN.pm's
//     default is https://cpan.org, and pushy_https would force it).
//
// Other commands are returned unchanged.
func Args(argv []string, proxyURL, dir string) ([]string, error) {
	return args(argv, proxyURL, dir, false)
}

// args is Args; with plugin, CPAN.pm's configuration also puts the Perl
// hook's plugin first in its plugin_list.
func args(argv []string, proxyURL, dir string, plugin bool) ([]string, error) {
	if len(argv) == 0 {
		return argv, nil
	}
	switch filepath.Base(argv[0]) {
	case "cpm":
		if len(argv) >= 2 && argv[1] == "install" {
			return append([]string{argv[0], argv[1], "--mirror", proxyURL, "--resolver", "02packages," + proxyURL}, argv[2:]...), nil
		}
	case "cpan":
		conf := filepath.Join(dir, "CPANConfig.pm")
		if err := os.WriteFile(conf, []byte(cpanConfig(proxyURL, dir, plugin)), 0o600); err != nil {
			return nil, err
		}
		return append([]string{argv[0], "-j", conf}, argv[1:]...), nil
	}
	return argv, nil
}

// cpanConfig is a CPAN.pm configuration file for cpan -j: the user's own
// configuration (or CPAN.pm's automatic one), with the proxy as the only
// mirror, and with plugin the Perl hook's plugin first among the user's.
func cpanConfig(proxyURL, dir string, plugin bool) string {
	var plugins string
	if plugin {
		plugins = fmt.Sprintf(`# The verifying hook runs first, before any plugin of the user's could
# see a file it has not verified.
$CPAN::Config->{plugin_list} = [%s, grep { $_ ne %s } @{ $CPAN::Config->{plugin_list} || [] }];
`, perlString(cpanPlugin), perlString(cpanPlugin))
	}
	return fmt.Sprintf(`# Written by cpantlog exec: the user's CPAN.pm configuration with every
# mirror replaced by the verifying proxy.
require CPAN::HandleConfig;
{
    local $CPAN::Be_Silent = 1;
    CPAN::HandleConfig->load(write_file => 0);
}
$CPAN::Config->{urllist} = [%s];
$CPAN::Config->{pushy_https} = 0;
$CPAN::Config->{connect_to_internet_ok} = 1;
# CPAN.pm prefers its own proxy settings to the environment's.
$CPAN::Config->{$_} = %s for qw(http_proxy https_proxy ftp_proxy);
$CPAN::Config->{no_proxy} = '';
# The verifying proxy asks no credentials; with proxy_user empty CPAN.pm
# prompts "Proxy authentication needed!" before each download program it
# falls back to once a file is refused (403). It has its own HTTP client
# (LWP or HTTP::Tiny): no external download program is run, so a refused
# file is fetched, and refused, once.
$CPAN::Config->{proxy_user} = 'cpantlog-exec';
$CPAN::Config->{proxy_pass} = 'none';
$CPAN::Config->{$_} = '' for qw(curl wget lynx ncftpget ncftp ftp);
# Where it keeps what it fetched: cpantlog exec checks every file there.
$CPAN::Config->{keep_source_where} = %s;
%s1;
`, perlString(proxyURL+"/"), perlString(proxyURL), perlString(filepath.Join(dir, "cpan-sources")), plugins)
}

// perlString quotes s as a Perl single-quoted string: nothing in it is
// interpolated (a temporary directory may hold a $ or an @).
func perlString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
