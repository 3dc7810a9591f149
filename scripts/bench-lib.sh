# Shared by the ingest benchmarks (scripts/bench-ingest.sh,
# scripts/bench-scale.sh); sourced, with $work, $dur and $clients set and
# $work/cpantlog-bench built.

# build_tessera PERSONALITY...: Tessera's conformance personalities (posix,
# aws), built from the Tessera version in go.mod, as $work/tessera-NAME.
build_tessera() {
  local tver p
  tver=$(go list -m -f '{{.Version}}' github.com/transparency-dev/tessera)
  mkdir -p "$work/tessera"
  (cd "$work/tessera" && { [ -f go.mod ] || go mod init anchor >/dev/null 2>&1; } &&
    for p in "$@"; do
      go get "github.com/transparency-dev/tessera/cmd/conformance/$p@$tver" >/dev/null 2>&1 &&
        go build -o "$work/tessera-$p" "github.com/transparency-dev/tessera/cmd/conformance/$p" || exit 1
    done)
}

# rounds NAME_A PID_A NAME_B PID_B ARGS_A... -- ARGS_B...: three
# alternating rounds of cpantlog-bench against A then B (the machine is
# shared and noisy: drift hits both alike), then both medians and the ratio
# B/A. The server not measured is stopped (SIGSTOP) for the other's round,
# so that its background work (Tessera's integration, cpan-tlog's index and
# proof tree catching up) does not run in the other's time.
rounds() {
  local a=$1 pa=$2 b=$3 pb=$4; shift 4
  cpu_pids="$pa $pb"
  local argsA=() argsB=()
  while [ "$1" != -- ]; do argsA+=("$1"); shift; done; shift
  argsB=("$@")
  for round in 1 2 3; do
    # shellcheck disable=SC2086 # a side may be several processes
    kill -STOP $pb; kill -CONT $pa
    cpu_before
    "$work/cpantlog-bench" "${argsA[@]}" --duration "$dur" --clients "$clients" --prefix "$a$round" | tee -a "$work/$a.txt"
    cpu_after "$work/$a.txt"
    # shellcheck disable=SC2086
    kill -STOP $pa; kill -CONT $pb
    cpu_before
    "$work/cpantlog-bench" "${argsB[@]}" --duration "$dur" --clients "$clients" --prefix "$b$round" | tee -a "$work/$b.txt"
    cpu_after "$work/$b.txt"
  done
  # shellcheck disable=SC2086
  kill -CONT $pa $pb
  local ma mb
  ma=$(awk '{print $2}' "$work/$a.txt" | sort -n | sed -n 2p)
  mb=$(awk '{print $2}' "$work/$b.txt" | sort -n | sed -n 2p)
  echo "median $a $ma adds/s, $b $mb adds/s; ratio $b/$a: $(awk -v a="$ma" -v b="$mb" 'BEGIN{printf "%.2f", b/a}')"
  echo "non-200 answers: $a $(awk '{s+=$6} END {print s+0}' FS='[ (,]+' "$work/$a.txt"), $b $(awk '{s+=$6} END {print s+0}' FS='[ (,]+' "$work/$b.txt")"
}

# cpu_before / cpu_after RESULTS: with CPANTLOG_BENCH_CPU=1, the CPU time
# each program (by command name) of the run spent during one round, per
# add of the round (the last line of RESULTS): where an add's cost goes,
# the other side stopped. The programs of the run: the servers measured
# ($cpu_pids, set by rounds) and the test services
# (CPANTLOG_TEST_SERVICES_PIDS, from scripts/test-services.sh), not
# whatever else this machine runs. The load generator is not counted.
cpu_ticks() {
  local f comm rest pid
  for pid in $cpu_pids ${CPANTLOG_TEST_SERVICES_PIDS:-}; do
    f=/proc/$pid/stat
    [ -r "$f" ] || continue # a server that exited
    IFS= read -r rest 2>/dev/null <"$f" || continue
    comm=${rest#*(}; comm=${comm%%)*}; rest=${rest##*) }
    # shellcheck disable=SC2086 # fields: utime is the 12th after comm, stime the 13th
    set -- $rest
    echo "$comm ${12} ${13}"
  done | awk '{t[$1]+=$2+$3} END {for (c in t) print c, t[c]}'
}
cpu_before() {
  [ "${CPANTLOG_BENCH_CPU:-}" = 1 ] || return 0
  cpu_ticks >"$work/cpu.before"
}
cpu_after() {
  [ "${CPANTLOG_BENCH_CPU:-}" = 1 ] || return 0
  local adds hz
  adds=$(tail -1 "$1" | sed -n 's/.*(\([0-9]*\) adds.*/\1/p')
  hz=$(getconf CLK_TCK)
  cpu_ticks | awk -v adds="$adds" -v hz="$hz" 'NR == FNR {b[$1] = $2; next}
    {d = $2 - b[$1]; if (d > 0 && adds > 0) { us = d / hz * 1e6 / adds; tot += us; if (us >= 1) printf "  %s %.0f µs", $1, us }}
    END {printf "  (all: %.0f µs of CPU per add)\n", tot}' "$work/cpu.before" - | sed 's/^/cpu per add:/'
}
