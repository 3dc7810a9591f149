package client

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// TestPerlConsistencyAgrees: the Perl client's RFC 6962 consistency
// proofs (CPAN::TLog::Verify::consistency_proof, which it builds from a
// log's tiles) verify with transparency-dev/merkle, and the proofs Go
// makes verify with its verify_consistency; an altered one with neither.
// Both clients advance the one trusted state they share with these.
func TestPerlConsistencyAgrees(t *testing.T) {
	if _, err := exec.LookPath("perl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("perl missing in CI")
		}
		t.Skip("perl not installed")
	}
	const maxSize = 40
	// Go's proofs, for Perl to verify: "m n root1 root2 proof..." a line.
	var in bytes.Buffer
	for n := uint64(1); n <= maxSize; n++ {
		for m := uint64(1); m <= n; m++ {
			p := consistencyProof(m, n, "x")
			line := []string{fmt.Sprint(m), fmt.Sprint(n), hex.EncodeToString(rootOf(m, "x")), hex.EncodeToString(rootOf(n, "x"))}
			for _, h := range p {
				line = append(line, hex.EncodeToString(h))
			}
			fmt.Fprintln(&in, strings.Join(line, " "))
			if len(p) > 0 {
				bad := bytes.Clone(p[len(p)/2])
				bad[0] ^= 1
				line[4+len(p)/2] = hex.EncodeToString(bad)
				fmt.Fprintln(&in, "bad "+strings.Join(line, " "))
			}
		}
	}
	script := `
use strict; use warnings;
use CPAN::TLog::Verify ();
my $leaf = sub { Digest::SHA::sha256("\x00" . "x$_[0]") };
my $mth; $mth = sub { my ($lo, $hi) = @_; return $leaf->($lo) if $hi - $lo == 1;
  my $k = 1; $k <<= 1 while $k * 2 < $hi - $lo;
  Digest::SHA::sha256("\x01" . $mth->($lo, $lo + $k) . $mth->($lo + $k, $hi)) };
while (my $l = <STDIN>) {
  my @f = split ' ', $l; my $bad = $f[0] eq 'bad' ? shift @f : '';
  my ($m, $n, $r1, $r2, @p) = @f;
  my $ok = CPAN::TLog::Verify::verify_consistency($m, $n, [map { pack 'H*', $_ } @p], pack('H*', $r1), pack('H*', $r2));
  print "verify $bad $m $n $ok\n";
}
for my $n (1 .. ` + fmt.Sprint(maxSize) + `) { for my $m (1 .. $n) {
  print join(' ', 'proof', $m, $n, map { unpack 'H*', $_ } @{ CPAN::TLog::Verify::consistency_proof($m, $n, $mth) }), "\n";
} }
`
	cmd := exec.Command("perl", "-I", "perl/lib", "-MDigest::SHA", "-e", script)
	cmd.Stdin = &in
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("perl: %v\n%s", err, out)
	}
	var verified, proofs int
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case f[0] == "verify" && len(f) == 5: // "verify bad m n ok"
			if f[4] != "0" {
				t.Errorf("Perl verified an altered proof %s → %s", f[2], f[3])
			}
		case f[0] == "verify" && len(f) == 4:
			verified++
			if f[3] != "1" {
				t.Errorf("Perl refused Go's consistency proof %s → %s", f[1], f[2])
			}
		case f[0] == "proof":
			proofs++
			var m, n uint64
			fmt.Sscan(f[1], &m)
			fmt.Sscan(f[2], &n)
			var p [][]byte
			for _, h := range f[3:] {
				b, _ := hex.DecodeString(h)
				p = append(p, b)
			}
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, m, n, p, rootOf(m, "x"), rootOf(n, "x")); err != nil {
				t.Errorf("Perl's consistency proof %d → %d does not verify with transparency-dev/merkle: %v", m, n, err)
			}
		default:
			t.Fatalf("perl said %q", sc.Text())
		}
	}
	if want := maxSize * (maxSize + 1) / 2; verified != want || proofs != want {
		t.Fatalf("%d verified, %d proofs; want %d each\n%s", verified, proofs, want, out)
	}
}
