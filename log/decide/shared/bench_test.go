package shared

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/log/decide"
	"github.com/CPAN-Security/cpan-tlog/log/decide/decidetest"
)

// BenchmarkDecide is what the database decision costs per add, in the
// database server's CPU as well as this process's: b.N uploads of new
// paths from 256 concurrent adders (a server under load: their decisions
// are group-committed), each decided and then either reported sequenced,
// its claim recorded in the background in batches ("claim+record", what
// every add does), or dropped after deciding, its claim left in the row
// ("claim"). The difference between the two is the record's cost. The
// database's CPU is the mariadbd of scripts/test-services.sh
// (CPANTLOG_TEST_SERVICES_PIDS), read from /proc.
//
//	. scripts/test-services.sh
//	go test -run '^$' -bench Decide -benchtime 20000x ./log/decide/shared/
func BenchmarkDecide(b *testing.B) {
	for _, record := range []bool{false, true} {
		name := "claim"
		if record {
			name = "claim+record"
		}
		b.Run(name, func(b *testing.B) {
			dsn := freshDB(b)
			d, _ := open(b, dsn, "bench", 10*time.Second)
			dbCPU := mariadbCPU(b)
			ctx := b.Context()
			var next, failed atomic.Int64
			var wg sync.WaitGroup
			db0, self0 := dbCPU(), selfCPU()
			b.ResetTimer()
			for range 256 {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						e, leaf := decidetest.Upload(fmt.Sprintf("authors/id/B/BE/BENCH/Bench-%d.tar.gz", i), int(i))
						ds, err := d.Decide(ctx, []decide.Request{{Entry: e, Leaf: leaf, Rule: decidetest.OneContent(leaf, nil)}})
						if err != nil || ds[0].Kind != decide.New {
							failed.Add(1)
							continue
						}
						tk := ds[0].Ticket
						if record {
							d.Sequenced(ctx, []decide.Outcome{{Ticket: tk, Index: uint64(i), Queued: true}})
							continue
						}
						d.liveMu.Lock()
						delete(d.live, tk) // not renewed: the claim stays as decided
						d.liveMu.Unlock()
						tk.Release()
					}
				})
			}
			wg.Wait()
			if !d.Wait(ctx) {
				b.Fatal("records still in flight")
			}
			b.StopTimer()
			perAdd := func(t time.Duration) float64 { return float64(t.Microseconds()) / float64(b.N) }
			b.ReportMetric(perAdd(dbCPU()-db0), "db-us/add")
			b.ReportMetric(perAdd(selfCPU()-self0), "go-us/add")
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d of %d adds not decided New", n, b.N)
			}
			// Every add left what it should in its row: a claim, or a
			// claim turned into the path's last entry.
			q := `SELECT COUNT(*) FROM cpantlog_paths WHERE claimed IS NOT NULL AND idx IS NULL`
			if record {
				q = `SELECT COUNT(*) FROM cpantlog_paths WHERE claimed IS NULL AND idx IS NOT NULL`
			}
			var rows int
			if err := d.DB().QueryRow(q).Scan(&rows); err != nil {
				b.Fatal(err)
			}
			if rows != b.N {
				b.Fatalf("%d rows as %s left them, want %d", rows, name, b.N)
			}
		})
	}
}

// mariadbCPU reads the CPU time the test services' mariadbd has used.
func mariadbCPU(b *testing.B) func() time.Duration {
	for pid := range strings.FieldsSeq(os.Getenv("CPANTLOG_TEST_SERVICES_PIDS")) {
		if comm, err := os.ReadFile("/proc/" + pid + "/comm"); err == nil && strings.TrimSpace(string(comm)) == "mariadbd" {
			return func() time.Duration { return procCPU(b, pid) }
		}
	}
	b.Skip("needs the mariadbd of scripts/test-services.sh (CPANTLOG_TEST_SERVICES_PIDS)")
	return nil
}

// procCPU is a process's user and system time, from /proc/PID/stat.
func procCPU(b *testing.B, pid string) time.Duration {
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command name: utime and stime are the 12th and
	// 13th, in clock ticks (USER_HZ, 100 on Linux).
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
