// Package launch prepares a CPAN client's environment and arguments so
// that everything it fetches from CPAN goes through a verifying proxy:
// every proxy variable (http, https, ftp, all) points at the proxy, no
// host is exempted, and the clients that take a mirror of their own
// (Carton, cpm) are given the proxy as that mirror. An https URL then
// meets the proxy's refusal to tunnel (CONNECT) rather than a path around
// it: nothing fetched can skip verification.
package launch

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// proxyVars are the variables HTTP::Tiny, LWP, curl and wget read.
var proxyVars = []string{"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "ftp_proxy", "FTP_PROXY", "all_proxy", "ALL_PROXY"}

// clearedVars would exempt hosts from the proxy.
var clearedVars = []string{"no_proxy", "NO_PROXY"}

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
		if err := os.WriteFile(conf, []byte(cpanConfig(proxyURL)), 0o600); err != nil {
			return nil, err
		}
		return append([]string{argv[0], "-j", conf}, argv[1:]...), nil
	}
	return argv, nil
}

// cpanConfig is a CPAN.pm configuration file for cpan -j: the user's own
// configuration (or CPAN.pm's automatic one), with the proxy as the only
// mirror.
func cpanConfig(proxyURL string) string {
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
1;
`, proxyURL+"/")
}
