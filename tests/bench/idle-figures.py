#!/usr/bin/env python3
"""bench-idle.sh's figures: idle-figures.py TMPDIR SECS STRACE_SECS INTERVAL OUT.json.

Reads TMPDIR/perf.txt (perf stat -x,), pass1.json (schedstat samples), runs.txt (run starts, usec),
notify.log (the notify socket's datagrams), strace.txt (pass 2) and fds.txt.
A moment belongs to a run from 0.1 s before its start to 1 s after it.
"""
import json
import re
import sys

tmp, secs, strace_secs, interval, out = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
starts = [int(l) / 1e6 for l in open(tmp + "/runs.txt") if l.strip()]
RUN_BEFORE, RUN_AFTER = 0.1, 1.0


def in_run(a, b=None):
    b = a if b is None else b
    return any(s - RUN_BEFORE <= b and a <= s + RUN_AFTER for s in starts)


notes = [l.split(None, 1) for l in open(tmp + "/notify.log") if l.strip()]
watchdog = [float(t) for t, m in notes if "WATCHDOG=1" in m]

# Pass 1: perf stat's totals; each thread's schedstat deltas, in a run or between.
perf = {}
for l in open(tmp + "/perf.txt"):
    f = l.strip().split(",")
    if len(f) > 2 and f[0] and f[0][0].isdigit():
        perf[f[2]] = float(f[0])
s = json.load(open(tmp + "/pass1.json"))
t0, t1 = s[0][0], s[-1][0]
span = t1 - t0
cpu = {True: 0, False: 0}
slices = {True: 0, False: 0}
for (ta, a), (tb, b) in zip(s, s[1:]):
    k = in_run(ta, tb)
    for tid, (ns, n) in b.items():
        pa = a.get(tid, (0, 0))       # a thread born since: all of it is new
        cpu[k] += ns - pa[0]
        slices[k] += n - pa[1]
runs1 = [x for x in starts if t0 <= x <= t1]
wd1 = [x for x in watchdog if t0 <= x <= t1 and not in_run(x)]
wd_all = [x for x in watchdog if t0 <= x <= t1]
per_h = 3600 / secs
task_ms = perf.get("task-clock", 0.0)
figures = [
    ("pass 1 span", "%.0f s, %d runs, %d watchdog pings (%d of them outside a run)" % (secs, len(runs1), len(wd_all), len(wd1))),
    ("CPU, all threads (perf stat task-clock)", "%.1f ms = %.0f ms per hour" % (task_ms, task_ms * per_h)),
    ("context switches, all threads (perf stat)", "%d = %.0f per hour" % (perf.get("context-switches", 0), perf.get("context-switches", 0) * per_h)),
    ("CPU per run (3 checks, task-clock / runs)", "%.2f ms" % (task_ms / max(len(runs1), 1))),
    ("CPU between runs (schedstat)", "%.3f ms = %.2f ms per hour" % (cpu[False] / 1e6, cpu[False] / 1e6 * 3600 / span)),
    ("times scheduled in between runs (schedstat)", "%d = %.1f per minute" % (slices[False], slices[False] * 60 / span)),
]

# Pass 2: name each wake-up between runs from the syscalls that follow it.
fdkind = {}
for l in open(tmp + "/fds.txt"):
    m = re.search(r" (\d+) -> (.*)$", l)
    if m:
        fdkind[m.group(1)] = m.group(2)
line_re = re.compile(r"^(\d+) +(\d+\.\d+) (.*?)(?: <(\d+\.\d+)>)?$")
calls = []
for l in open(tmp + "/strace.txt"):
    m = line_re.match(l.rstrip("\n"))
    if not m or "<unfinished ...>" in m.group(3) or "<detached ...>" in m.group(3):
        continue
    tid, t, text, dur = m.group(1), float(m.group(2)), m.group(3), float(m.group(4) or 0)
    # A whole line is stamped at entry, a resumed one when it returned.
    calls.append((t if text.startswith("<...") else t + dur, tid, text))
calls.sort()
wake = re.compile(r"^(?:<\.\.\. )?(epoll_wait|epoll_pwait2?)")
between, causes, threads = 0, {}, set()
if calls:
    c0 = calls[0][0] + 0.1      # strace's attach interrupts and restarts epoll_wait
    for i, (t, tid, text) in enumerate(calls):
        if t < c0 or in_run(t) or not wake.match(text):
            continue
        between += 1
        threads.add(tid)
        nxt = [x[2] for x in calls[i + 1:i + 60] if x[1] == tid]
        names = []
        for n in nxt:         # what it read and sent before it waited again
            if wake.match(n):
                break
            m = re.match(r"(read|recv\w*|send\w*|accept4?)\((\d+)", n)
            if m:
                kind = fdkind.get(m.group(2), "?")
                if "WATCHDOG=1" in n:
                    kind = "notify socket, WATCHDOG=1"
                names.append("%s(%s: %s)" % (m.group(1), m.group(2), kind))
        key = ", ".join(names) or ("(epoll timeout)" if re.search(r"= 0$", text) else "(nothing)")
        causes[key] = causes.get(key, 0) + 1
    others = sum(1 for t, tid, text in calls if t >= c0 and not in_run(t) and tid not in threads and not text.startswith("+++"))
    runs2 = [x for x in starts if c0 <= x <= c0 + strace_secs]
    figures.append(("pass 2 (strace) span", "%.0f s, %d runs, %d wake-ups between runs (epoll_wait returned)" % (strace_secs, len(runs2), between)))
    figures.append(("syscalls between runs on other threads", "%d" % others))
    for k, v in sorted(causes.items(), key=lambda kv: -kv[1]):
        figures.append(("wake-up: " + k.replace("|", "/"), "%d" % v))

method = ("rerouterd as under systemd (NOTIFY_SOCKET, WATCHDOG_USEC for WatchdogSec=60s), 3 checks (ping, tcp, "
          "http) on a healthy link, interval %s, watch_links on. A run spans its start (state database) -0.1 s "
          "to +1 s. Pass 1: perf stat over all threads and each thread's schedstat every 100 ms (untraced); pass 2 names the wake-ups "
          "with strace -f (its own overhead is not in pass 1's CPU)." % interval)
json.dump({"interval": interval, "method": method, "figures": figures}, open(out, "w"), indent=1)
for k, v in figures:
    print("%s: %s" % (k, v))
