package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/CPAN-Security/cpan-tlog/client"
)

const initSummary = `init --log URL --key VKEY [--witness "NAME VKEY [URL]"]... [--quorum all|any|N]

Writes the trust policy that every cpantlog tool reads, Go and Perl alike
(cpantlog, cpanm-tlog, carton-tlog, CPAN::Plugin::TLog, cpantlog-verify-pl):
the log's URL and verifier key and its witnesses, as the log's operator
publishes them. Get the key from the operator over a channel you trust, not
from the log itself. Then it reads the log's checkpoint and checks it
against the new policy, so a wrong key is caught now, not at the first
install. Without --log and --key it writes the default log's policy, once
one is published with the tools.

The policy goes to --policy (default $CPANTLOG_POLICY, else
~/.config/cpantlog/policy); an existing file is kept unless --force.`

func initCmd(args []string, stdout, stderr io.Writer) error {
	fs, c := newFlags("init", initSummary, stderr,
		"cpantlog init --log http://127.0.0.1:8080 --key \"$(cat cpantlog-data/log.vkey)\"",
		`cpantlog init --log https://log.example --key K --witness "w1 W1KEY https://w1.example" --quorum all`)
	var spec client.PolicySpec
	fs.StringVar(&spec.LogKey, "key", "", "the log's note verifier `VKEY` (origin+hash+key)")
	fs.Func("witness", "a witness, `\"NAME VKEY [URL]\"` (repeat for each)", func(s string) error {
		spec.Witnesses = append(spec.Witnesses, s)
		return nil
	})
	fs.StringVar(&spec.Quorum, "quorum", "", "how many witnesses must cosign: `all` (default), any or a number")
	force := fs.Bool("force", false, "replace an existing policy file")
	offline := fs.Bool("offline", false, "write the policy without reading the log's checkpoint")
	if rest, err := parse(fs, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return usageError{fmt.Sprintf("unexpected arguments %q", rest)}
	}
	spec.LogURL = c.log // --log, every command's flag, is here the log's URL
	var text []byte
	if spec.LogURL == "" && spec.LogKey == "" && client.DefaultLogPolicy != "" {
		text = []byte(client.DefaultLogPolicy)
	} else {
		if spec.LogURL == "" && spec.LogKey == "" {
			return usageError{"no default log is published with the tools yet: pass --log URL --key VKEY as the log's operator publishes them"}
		}
		var err error
		if text, err = client.FormatPolicy(spec); err != nil {
			return usageError{err.Error()}
		}
	}
	p, err := client.ParsePolicy(text)
	if err != nil {
		return err
	}
	if _, err := os.Stat(c.policy); err == nil && !*force {
		return usageError{fmt.Sprintf("%s exists: keeping it (--force replaces it)", c.policy)}
	}
	if !*offline {
		if err := firstCheckpoint(p, stdout); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(c.policy), 0o755); err != nil {
		return err
	}
	tmp := c.policy + ".tmp"
	if err := os.WriteFile(tmp, text, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, c.policy); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: every cpantlog tool, Go and Perl, now verifies against %s\n", c.policy, p.Logs[0].Origin)
	return nil
}

// firstCheckpoint reads the log's checkpoint and checks it against the
// new policy: a key that does not verify it is refused before it is
// written; a log that cannot be reached is said, and the policy written.
func firstCheckpoint(p *client.Policy, stdout io.Writer) error {
	f, err := client.NewFetcher(p.Logs[0].URL, "")
	if err != nil {
		return usageError{err.Error()}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	raw, err := f.ReadCheckpoint(ctx)
	if err != nil {
		fmt.Fprintf(stdout, "could not read the log's checkpoint (%v): writing the policy all the same; 'cpantlog verify' will check it\n", err)
		return nil
	}
	cp, err := p.VerifyCheckpoint(raw)
	if err != nil {
		return fmt.Errorf("the log at %s serves a checkpoint this policy does not verify (%w): check the key and witnesses with the log's operator; nothing written", p.Logs[0].URL, err)
	}
	cosigned := "no witness (quorum none)"
	if len(cp.CosignedBy) > 0 {
		cosigned = fmt.Sprint(cp.CosignedBy)
	}
	fmt.Fprintf(stdout, "the log %s is at size %d, cosigned by %s\n", cp.Origin, cp.Size, cosigned)
	return nil
}

// usageError is an input error: exit 2, said as such.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }
