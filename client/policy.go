package client

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/tessera"
	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/internal/confline"
)

// Policy is a trust policy: the logs to trust and the witness quorum whose
// cosignatures a checkpoint needs. The file format is Sigsum's policy
// format as tessera.NewWitnessGroupFromPolicy reads it, plus "log" lines:
//
//	log localhost/cpan-tlog+1a2b3c4d+AY...= http://127.0.0.1:8080
//	witness w1 witness.example+5e6f7a8b+BX...= http://127.0.0.1:8081
//	group g1 any w1
//	quorum g1
//
// "#" starts a comment. "quorum none" trusts the log's signature alone.
type Policy struct {
	Logs      []PolicyLog
	Witnesses []PolicyWitness
	// Quorum decides whether a checkpoint carries enough cosignatures.
	Quorum tessera.WitnessGroup
	// QuorumName is the quorum line's argument ("none" for no witnesses).
	QuorumName string
	// Groups are the policy's group lines, by name (for verifiers that
	// evaluate the quorum themselves, such as the explorer's page).
	Groups map[string]PolicyGroup
}

// PolicyGroup is a group line: at least Need of Members (witness or group
// names) must be satisfied.
type PolicyGroup struct {
	Need    int
	Members []string
}

// PolicyLog is a log the policy trusts.
type PolicyLog struct {
	Origin   string
	VKey     string
	Verifier note.Verifier
	URL      string // may be empty
}

// PolicyWitness is a witness the policy names.
type PolicyWitness struct {
	Name     string
	VKey     string
	Verifier note.Verifier // C2SP tlog-cosignature: Ed25519 or ML-DSA-44
	URL      string
}

// Algorithm names the witness key's cosignature algorithm, "Ed25519" or
// "ML-DSA-44", for messages.
func (w *PolicyWitness) Algorithm() string {
	if KeyType(w.VKey) == KeyTypeMLDSA44 {
		return "ML-DSA-44"
	}
	return "Ed25519"
}

// MaxPolicySize bounds a policy file.
const MaxPolicySize = 1 << 20

// ParsePolicy parses a policy file. Errors name the line.
func ParsePolicy(b []byte) (*Policy, error) {
	if len(b) > MaxPolicySize {
		return nil, fmt.Errorf("policy: %d bytes, more than %d", len(b), MaxPolicySize)
	}
	p := &Policy{}
	names := map[string]bool{}
	err := confline.Each("policy", b, func(f []string) error {
		switch f[0] {
		case "log":
			if len(f) < 2 || len(f) > 3 {
				return errors.New("want 'log <vkey> [<url>]'")
			}
			v, err := note.NewVerifier(f[1])
			if err != nil {
				return fmt.Errorf("log key: %v", err)
			}
			l := PolicyLog{Origin: v.Name(), VKey: f[1], Verifier: v}
			if len(f) == 3 {
				if err := checkURL(f[2]); err != nil {
					return err
				}
				l.URL = strings.TrimSuffix(f[2], "/")
			}
			for _, o := range p.Logs {
				if o.Origin == l.Origin {
					return fmt.Errorf("a second log with origin %q", l.Origin)
				}
			}
			p.Logs = append(p.Logs, l)
		case "witness":
			// The URL is optional (the Sigsum policy format): a verifier
			// needs only the key; cross-checking needs the URL.
			if len(f) != 3 && len(f) != 4 {
				return errors.New("want 'witness <name> <vkey> [<url>]'")
			}
			if names[f[1]] {
				return fmt.Errorf("name %q is defined twice", f[1])
			}
			if err := checkName(f[1]); err != nil {
				return err
			}
			v, err := fnote.NewVerifierForCosignatureV1(f[2])
			if err == nil && !isCosignatureKey(f[2]) {
				err = errors.New("key type is neither 0x04 nor 0x06")
			}
			if err == nil && strings.SplitN(f[2], "+", 3)[1] != fmt.Sprintf("%08x", v.KeyHash()) {
				// formats' parser ignores the vkey's key ID and computes
				// its own; the Perl parser checks it: so do we.
				err = fmt.Errorf("its key ID is not SHA-256(name || \"\\n\" || type || key)[:4] = %08x", v.KeyHash())
			}
			if err != nil {
				return fmt.Errorf("witness key is not a C2SP tlog-cosignature (cosignature/v1) key, of type 0x04 (Ed25519) or 0x06 (ML-DSA-44): %v", err)
			}
			w := PolicyWitness{Name: f[1], VKey: f[2], Verifier: v}
			if len(f) == 4 {
				if err := checkURL(f[3]); err != nil {
					return err
				}
				w.URL = f[3]
			}
			names[f[1]] = true
			p.Witnesses = append(p.Witnesses, w)
		case "group":
			if len(f) < 4 {
				return errors.New("want 'group <name> any|all|<n> <member>...'")
			}
			if names[f[1]] {
				return fmt.Errorf("name %q is defined twice", f[1])
			}
			if err := checkName(f[1]); err != nil {
				return err
			}
			members := map[string]bool{}
			for _, m := range f[3:] {
				if !names[m] {
					return fmt.Errorf("member %q is not defined above", m)
				}
				if members[m] {
					// "group g 2 w1 w1 w2" would be met by w1 alone.
					return fmt.Errorf("member %q is listed twice", m)
				}
				members[m] = true
			}
			need := 1
			switch t := f[2]; t {
			case "any":
			case "all":
				need = len(members)
			default:
				n, err := strconv.Atoi(t)
				if err != nil || n < 1 || n > len(members) || strconv.Itoa(n) != t {
					return fmt.Errorf("threshold %q is not any, all or a number from 1 to %d", t, len(members))
				}
				need = n
			}
			if p.Groups == nil {
				p.Groups = map[string]PolicyGroup{}
			}
			p.Groups[f[1]] = PolicyGroup{Need: need, Members: f[3:]}
			names[f[1]] = true
		case "quorum":
			if len(f) != 2 {
				return errors.New("want 'quorum <name>|none'")
			}
			if p.QuorumName != "" {
				return errors.New("a second quorum line")
			}
			if f[1] != "none" && !names[f[1]] {
				return fmt.Errorf("quorum %q is not defined above", f[1])
			}
			p.QuorumName = f[1]
		default:
			return fmt.Errorf("unknown keyword %q (want log, witness, group or quorum)", f[0])
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(p.Logs) == 0 {
		return nil, fmt.Errorf("policy names no log: add a line 'log <vkey> <url>'")
	}
	if p.QuorumName == "" {
		return nil, fmt.Errorf("policy has no quorum line: add 'quorum <group>' or 'quorum none'")
	}
	if err := CheckDuplicateKeys(b); err != nil {
		return nil, err
	}
	// Tessera's parser decides the quorum semantics, so the log and every
	// verifier read a policy the same way. It wants a URL on every witness
	// line (a log posts to it); a verifier does not, so a placeholder
	// stands in for a missing one.
	wg, err := tessera.NewWitnessGroupFromPolicy(withWitnessURLs(b))
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	p.Quorum = wg
	return p, nil
}

// keywords are the policy format's words, which Tessera's parser (and so
// the log) refuses as witness or group names; "none" is the predefined
// empty quorum (C2SP tlog-policy).
var keywords = []string{"log", "witness", "group", "quorum", "any", "all", "none"}

func checkName(name string) error {
	if slices.Contains(keywords, name) {
		return fmt.Errorf("%q is a word of the policy format (%s), not a name for a witness or group", name, strings.Join(keywords, ", "))
	}
	return nil
}

// CheckDuplicateKeys refuses a policy that names one public key on two
// witness lines, or on two log lines. C2SP tlog-policy: such duplicates
// "are not allowed", and two vkeys are duplicates when they wrap the same
// public key, even under other key names and IDs: "witness w1 K" and
// "witness w1b K" would let one cosignature count twice toward a group.
// The error names both lines. Other lines and malformed keys are left to
// the parser (ParsePolicy, or Tessera's for the log), which runs too.
func CheckDuplicateKeys(b []byte) error {
	type first struct {
		line       int
		text, name string
	}
	seen := map[string]first{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(text)
		var kind, name, vkey string
		switch {
		case len(f) >= 3 && f[0] == "witness":
			kind, name, vkey = "witness", f[1], f[2]
		case len(f) >= 2 && f[0] == "log":
			kind, vkey = "log", f[1]
			name, _, _ = strings.Cut(vkey, "+")
		default:
			continue
		}
		pub, ok := publicKey(vkey)
		if !ok {
			continue
		}
		k := kind + "\x00" + string(pub)
		if o, dup := seen[k]; dup {
			return &confline.Error{File: "policy", Line: n, Text: strings.TrimSpace(text),
				Err: fmt.Errorf("%s %q has the same public key as %s %q on line %d (%q): C2SP tlog-policy allows one %s line per key (one signature would count twice); remove one of the two lines",
					kind, name, kind, o.name, o.line, o.text, kind)}
		}
		seen[k] = first{n, strings.TrimSpace(text), name}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	return nil
}

// publicKey is the public key a vkey wraps (its key material, without
// the name, key ID and signature type byte).
func publicKey(vkey string) ([]byte, bool) {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return nil, false
	}
	k, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(k) < 2 {
		return nil, false
	}
	return k[1:], true
}

// withWitnessURLs returns the policy text with a placeholder URL on each
// witness line that has none.
func withWitnessURLs(b []byte) []byte {
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		text, _, _ := strings.Cut(l, "#")
		if f := strings.Fields(text); len(f) == 3 && f[0] == "witness" {
			lines[i] = strings.Join(f, " ") + " http://witness-url.invalid/"
		}
	}
	return []byte(strings.Join(lines, "\n"))
}

// Signed-note key types of C2SP tlog-cosignature's witness keys.
const (
	KeyTypeEd25519Cosignature = 0x04 // cosignature/v1, Ed25519
	KeyTypeMLDSA44            = 0x06 // ML-DSA-44
)

// KeyType is the signature type byte of a vkey, or -1.
func KeyType(vkey string) int {
	parts := strings.SplitN(vkey, "+", 3) // name+hash+key; the key may hold '+'
	if len(parts) != 3 {
		return -1
	}
	k, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(k) == 0 {
		return -1
	}
	return int(k[0])
}

// isCosignatureKey reports whether a vkey is of a type C2SP
// tlog-cosignature defines for witnesses: 0x04 (Ed25519) or 0x06
// (ML-DSA-44). formats' parser also takes a plain Ed25519 note key (0x01)
// as a cosignature key, under another key ID than the vkey says: refused.
func isCosignatureKey(vkey string) bool {
	t := KeyType(vkey)
	return t == KeyTypeEd25519Cosignature || t == KeyTypeMLDSA44
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	return nil
}

// Log returns the policy's log with this origin.
func (p *Policy) Log(origin string) (*PolicyLog, bool) {
	for i := range p.Logs {
		if p.Logs[i].Origin == origin {
			return &p.Logs[i], true
		}
	}
	return nil, false
}
