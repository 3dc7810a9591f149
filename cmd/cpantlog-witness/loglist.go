package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/internal/cli"
	"github.com/CPAN-Security/cpan-tlog/witness"
)

// logListFlags are serve's flags for the logs it takes from a
// c2sp.org/tlog-list.
type logListFlags struct {
	source  *string
	every   *time.Duration
	timeout *time.Duration
}

func addLogListFlags(fs *flag.FlagSet) *logListFlags {
	return &logListFlags{
		source: fs.String("log-list", "", "c2sp.org/tlog-list (logs/v0) `URL or FILE` to take new logs from, e.g. a witness-network.org list;\n"+
			"it only adds logs: a log it drops or gives another key is kept as the witness has it"),
		every:   fs.Duration("log-list-every", time.Hour, "how often to re-read --log-list (also on SIGHUP)"),
		timeout: fs.Duration("log-list-timeout", witness.DefaultLogListTimeout, "bound on one read of --log-list"),
	}
}

// check refuses flags that cannot work; with no --config, --log-list is
// required.
func (f *logListFlags) check(configFile string) error {
	switch {
	case configFile == "" && *f.source == "":
		return cli.Usagef("--config or --log-list is required")
	case *f.every < 10*time.Second:
		return cli.Usagef("--log-list-every %v: at least 10s (witness-network.org asks for hourly to weekly)", *f.every)
	case *f.timeout <= 0:
		return cli.Usagef("--log-list-timeout must be positive")
	}
	return nil
}

// baseConfig reads --config; with --log-list, a config without a log
// line, or none, is no logs.
func (f *logListFlags) baseConfig(configFile string) (*witness.Config, error) {
	none := &witness.Config{Logs: map[string][]note.Verifier{}}
	if configFile == "" {
		return none, nil
	}
	cfg, err := loadConfig(configFile)
	if errors.Is(err, witness.ErrNoLogs) && *f.source != "" {
		return none, nil
	}
	return cfg, err
}

// open adds the logs the witness learned from lists before (kept in its
// data directory, whether or not --log-list is still given) to cfg.
func (f *logListFlags) open(w *witness.Witness, cfg *witness.Config) (*witness.LogList, error) {
	return witness.OpenLogList(w, cfg, witness.LogListOptions{Source: *f.source, Timeout: *f.timeout})
}

// run reads the list now and every --log-list-every until ctx is done.
func (f *logListFlags) run(ctx context.Context, ll *witness.LogList) {
	go ll.Run(ctx, *f.every)
}

// reload is SIGHUP: re-read --config (keeping the old one if it does not
// parse) and the list; the logs learned from lists are kept.
func (f *logListFlags) reload(logger *slog.Logger, configFile string, ll *witness.LogList) {
	ll.Poke()
	if configFile == "" {
		return
	}
	cfg, err := f.baseConfig(configFile)
	if err != nil {
		logger.Error("reload config: keeping the old one", "err", err)
		return
	}
	ll.SetBase(cfg)
	logger.Info("reloaded config", "logs", len(cfg.Logs), "known", ll.Known())
}
