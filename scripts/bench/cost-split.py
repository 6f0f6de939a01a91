#!/usr/bin/env python3
"""Splits a whole-machine profile (`perf record -a -g`) into what capturing costs directly.

    scripts/bench/cost-split.py PERF_DATA

Prints, as shares of every sample taken (all CPUs):
- the in-kernel tap, counted wherever it runs (inside nginx's, the client's or the idle
  task's network processing): samples whose call chain passes through juno-record's tc
  programs (`bpf_prog_*_tc_*`), its socket programs (`sock_*`, `sys_*`, `inet_sock_set_state`,
  the TLS uprobes), or AF_PACKET's
  receive functions (`packet_rcv`, `tpacket_rcv`, and `dev_queue_xmit_nit`, which clones each
  sent packet for them: what tcpdump costs the kernel);
- the recorder's own process (juno-record's threads, or tcpdump), split by the function the
  sample landed in: zstd (compression), the redactor, the kernel (system calls, page
  faults), and the rest.

Used by profile-record.sh; the two runs to compare are two modes at the same fixed rate
(RATE=...), since shares of samples are comparable only over the same load and duration.
"""
import collections
import re
import subprocess
import sys

if len(sys.argv) != 2:
    sys.exit(__doc__)
out = subprocess.run(
    ["perf", "script", "-i", sys.argv[1], "-F", "comm,ip,sym,dso"],
    capture_output=True,
    text=True,
    check=True,
).stdout

RECORDER = {"juno-record", "juno-encoder", "juno-writer", "juno-netlink", "tcpdump"}
TAPS = [
    ("tc programs", re.compile(r"bpf_prog_[0-9a-f]+_tc_")),
    ("socket programs", re.compile(r"bpf_prog_[0-9a-f]+_(sock_|sys_|inet_sock|ssl_|go_tls)")),
    ("AF_PACKET (packet_rcv, tpacket_rcv, dev_queue_xmit_nit)", re.compile(r"\b(t?packet_rcv|dev_queue_xmit_nit)\b")),
]
ZSTD = ("ZSTD_", "HIST_", "FSE_", "HUF_", "XXH")

total = 0
taps = collections.Counter()
process = collections.Counter()
for block in out.split("\n\n"):
    lines = [line for line in block.strip().split("\n") if line.strip()]
    if not lines:
        continue
    total += 1
    comm = lines[0].split()[0]
    frames = lines[1:]
    chain = "\n".join(frames)
    if comm in RECORDER:
        leaf = frames[0] if frames else ""
        if any(k in leaf for k in ZSTD):
            process["zstd"] += 1
        elif "juno_redact" in chain and ("juno_redact" in leaf or "memchr" in leaf):
            process["redaction"] += 1
        elif "kernel" in leaf:
            process["kernel"] += 1
        else:
            process["the rest"] += 1
        continue
    for name, pat in TAPS:
        if pat.search(chain):
            taps[name] += 1
            break

if total == 0:
    sys.exit("cost-split: no samples")


def pct(n):
    return f"{100 * n / total:.2f}%"


print(f"samples: {total}")
for name, _ in TAPS:
    if taps[name]:
        print(f"in-kernel tap, {name}: {pct(taps[name])}")
own = sum(process.values())
print(f"recorder process: {pct(own)}")
for k in ("zstd", "redaction", "kernel", "the rest"):
    if process[k]:
        print(f"  {k}: {pct(process[k])}")
print(f"direct cost (tap + process): {pct(sum(taps.values()) + own)}")
