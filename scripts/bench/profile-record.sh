#!/usr/bin/env bash
# Where recording spends its time: the set-up of record-vs-tcpdump.sh (nginx in a namespace
# across a veth, wrk at saturation, MIX as there), one recorder MODE (packets, sockets, both,
# tcpdump or off), and `perf record -a -g` over the whole machine while wrk runs. Prints the
# top entries of `perf report` (children off: self time), overall and for the recorder
# process, and juno-record's own cost line. With RATE set, the load is oha at RATE
# requests/s (as record-fixed-rate.sh) instead of wrk at saturation: where the recorder's
# cost per request goes when the machine is not saturated. Ends with the direct cost split
# (cost-split.py): the in-kernel tap and the process, zstd and the redactor apart.
#
#   sudo scripts/bench/profile-record.sh [MODE] [MIX] [SECONDS]
#   sudo RATE=20000 PERF_DATA=/tmp/rate.data scripts/bench/profile-record.sh pod-sockets small 10
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=${1:-both}
mix=${2:-small}
secs=${3:-8}
[ "$(id -u)" = 0 ] || { echo "profile-record: must run as root" >&2; exit 1; }
cargo build --release -q -p juno-record -p juno-analyze
work=$(mktemp -d /tmp/juno-rprof.XXXXXX)
chmod 755 "$work"
. scripts/bench/lib-record.sh
trap bench_cleanup EXIT
start_server
wrk -t 1 -c 32 -d 2s -s "$work/mix.lua" "http://$SADDR/" >/dev/null 2>&1 # warm-up
load=(wrk -t 1 -c 32 -d "${secs}s" -s "$work/mix.lua" "http://$SADDR/")
if [ -n "${RATE:-}" ]; then
    oha_setup
    load=("$oha" -z "${secs}s" -q "$RATE" -c 16 --latency-correction --no-tui --urls-from-file
        -H "User-Agent: oha-bench" "$work/urls.txt")
fi
[ "$mode" != off ] && recorder_start "$mode"
perf record -a -g -o "$work/perf.data" -- "${load[@]}" >"$work/wrk.log" 2>"$work/perf.log"
grep -E "Requests/sec" "$work/wrk.log" || true
[ "$mode" != off ] && recorder_stop "$mode"
[ -e "$work/rec.log" ] && grep "cost of the whole run" "$work/rec.log" || true
# PERF_DATA=FILE keeps the profile for further `perf report`s.
[ -n "${PERF_DATA:-}" ] && cp "$work/perf.data" "$PERF_DATA"
echo "== all CPU, by symbol (self)"
perf report -i "$work/perf.data" --no-children --sort sym --stdio 2>/dev/null | grep -v "^#" | grep "%" | head -40 || true
echo "== under the eBPF programs (children)"
perf report -i "$work/perf.data" --children --sort sym --stdio -G 2>/dev/null | grep -v "^#" | grep -E "^ +[0-9.]+%" | grep -iE "bpf|ringbuf|probe_read|copy_from_user|pvclock|read_tsc|ktime|get_current|task_pt_regs|irq_work|htab|lru" | head -40 || true
echo "== juno-record process, by symbol"
perf report -i "$work/perf.data" --no-children --comms juno-record,juno-encoder,juno-writer,juno-netlink --sort sym --stdio -g none 2>/dev/null | grep -v "^#" | grep "%" | head -30 || true
echo "== by process"
perf report -i "$work/perf.data" --no-children --sort comm --stdio -g none 2>/dev/null | grep -v "^#" | grep "%" | head -12 || true
echo "== direct cost: the in-kernel tap and the recorder's process (scripts/bench/cost-split.py)"
python3 scripts/bench/cost-split.py "$work/perf.data" || true
