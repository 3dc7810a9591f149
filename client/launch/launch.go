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
// Settings can still be missed (a client nobody knew reads another file),
// so a Plan also says where the clients leave what they fetched: Used
// hashes those archives and index files after the run, for the caller to
// compare with what the proxy verified (fail closed).
package launch

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// proxyVars are the variables HTTP::Tiny, LWP, curl and wget read.
var proxyVars = []string{"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "ftp_proxy", "FTP_PROXY", "all_proxy", "ALL_PROXY"}

// clearedVars would exempt hosts from the proxy, or name other mirrors
// (cpanm's options from the environment: --mirror, --mirror-index, a
// file:// mirror).
var clearedVars = []string{"no_proxy", "NO_PROXY", "PERL_CPANM_OPT"}

// Plan is how to run one command through the proxy.
type Plan struct {
	Argv []string
	Env  []string
	// Notes name the user's settings that were overridden, to tell them.
	Notes []string
	// fetched are the directories where the clients leave what they
	// fetched: cpanm's (its home is set to one of ours), Menlo's for
	// Carton (under the user's HOME), CPAN.pm's sources (set to ours).
	fetched []string
	start   time.Time
}

// New prepares argv to run with every fetch going through the proxy at
// proxyURL (http://127.0.0.1:PORT), writing the configuration files it
// needs into dir, a fresh temporary directory.
func New(argv, environ []string, proxyURL, dir string) (*Plan, error) {
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
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if k == "PERL_CPANM_OPT" && strings.TrimSpace(v) != "" {
			p.Notes = append(p.Notes, fmt.Sprintf("PERL_CPANM_OPT (%q) is ignored: it can name other mirrors; put the options you need after --", v))
		}
		if k == "HOME" && v != "" {
			// Menlo (Carton) ignores PERL_CPANM_HOME.
			p.fetched = append(p.fetched, filepath.Join(v, ".cpanm", "work"))
		}
	}
	p.Env = withEnv(Env(environ, proxyURL), set)
	p.fetched = append(p.fetched, filepath.Join(cpanmHome, "work"), filepath.Join(cpanmHome, "sources"), filepath.Join(dir, "cpan-sources"))
	var err error
	if p.Argv, err = Args(argv, proxyURL, dir); err != nil {
		return nil, err
	}
	return p, nil
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
// it fetched.
type UsedFile struct {
	Name   string // where it lies
	SHA256 [32]byte
}

// Used hashes the archives and compressed index files the clients left
// in their fetch directories during the run: every file below CPAN.pm's
// sources and cpanm's mirror indexes, and the files at the top of each
// cpanm or Menlo work directory made during the run (a distribution is
// fetched there, then unpacked below it). Decompressed copies are not
// listed: the compressed file they came from is.
func (p *Plan) Used() ([]UsedFile, error) {
	var out []UsedFile
	add := func(name string, d fs.DirEntry) error {
		if !d.Type().IsRegular() || !fetchedKind(d.Name()) {
			return nil
		}
		b, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		if !archiveMagic(b) {
			// A failed download a client left behind (an empty file, an
			// error page): nothing could unpack or read it.
			return nil
		}
		out = append(out, UsedFile{Name: name, SHA256: sha256.Sum256(b)})
		return nil
	}
	for _, root := range p.fetched {
		if filepath.Base(root) != "work" {
			err := filepath.WalkDir(root, func(name string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				return add(name, d)
			})
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
			continue
		}
		runs, err := os.ReadDir(root)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		for _, run := range runs {
			info, err := run.Info()
			if err != nil || !run.IsDir() || info.ModTime().Before(p.start) {
				continue
			}
			files, err := os.ReadDir(filepath.Join(root, run.Name()))
			if err != nil {
				return nil, err
			}
			for _, f := range files {
				if err := add(filepath.Join(root, run.Name(), f.Name()), f); err != nil {
					return nil, err
				}
			}
		}
	}
	return out, nil
}

// archiveMagic reports whether b starts like a gzip, bzip2, xz or zip
// file, or is a tar archive.
func archiveMagic(b []byte) bool {
	for _, m := range []string{"\x1f\x8b", "BZh", "\xfd7zXZ\x00", "PK\x03\x04"} {
		if strings.HasPrefix(string(b[:min(len(b), 8)]), m) {
			return true
		}
	}
	return len(b) >= 262 && string(b[257:262]) == "ustar"
}

// fetchedKind reports whether a file name is of a distribution archive or
// a compressed index file: what a client fetches and then trusts. The
// module list (03modlist) is the proxy's own, CHECKSUMS only parsed.
func fetchedKind(name string) bool {
	for _, suffix := range []string{".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".zip", ".tar"} {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	switch name {
	case "02packages.details.txt.gz", "06perms.txt.gz", "01mailrc.txt.gz":
		return true
	}
	return false
}

// Env returns base (KEY=value strings, as os.Environ) with every proxy
// variable pointing at proxyURL (http://127.0.0.1:PORT), the exemptions
// removed, and Carton's mirror set to the proxy (its fallback mirrors,
// cpan.metacpan.org and backpan.perl.org, then go through the proxy as
// well, which fetches them from its upstream and verifies them).
func Env(base []string, proxyURL string) []string {
	set := map[string]string{"PERL_CARTON_MIRROR": proxyURL}
	for _, v := range proxyVars {
		set[v] = proxyURL
	}
	var out []string
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if _, replaced := set[k]; replaced || slices.Contains(clearedVars, k) {
			continue
		}
		out = append(out, kv)
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
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
		if err := os.WriteFile(conf, []byte(cpanConfig(proxyURL, dir)), 0o600); err != nil {
			return nil, err
		}
		return append([]string{argv[0], "-j", conf}, argv[1:]...), nil
	}
	return argv, nil
}

// cpanConfig is a CPAN.pm configuration file for cpan -j: the user's own
// configuration (or CPAN.pm's automatic one), with the proxy as the only
// mirror.
func cpanConfig(proxyURL, dir string) string {
	return fmt.Sprintf(`# Written by cpantlog exec: the user's CPAN.pm configuration with every
# mirror replaced by the verifying proxy.
require CPAN::HandleConfig;
{
    local $CPAN::Be_Silent = 1;
    CPAN::HandleConfig->load(write_file => 0);
}
$CPAN::Config->{urllist} = [%q];
$CPAN::Config->{pushy_https} = 0;
$CPAN::Config->{connect_to_internet_ok} = 1;
# CPAN.pm prefers its own proxy settings to the environment's.
$CPAN::Config->{$_} = %q for qw(http_proxy https_proxy ftp_proxy);
$CPAN::Config->{$_} = '' for qw(no_proxy proxy_user proxy_pass);
# Where it keeps what it fetched: cpantlog exec checks every file there.
$CPAN::Config->{keep_source_where} = %q;
1;
`, proxyURL+"/", proxyURL, filepath.Join(dir, "cpan-sources"))
}
