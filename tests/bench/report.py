#!/usr/bin/env python3
"""The benchmark's results file (issue 12) from the figures its scripts leave.

  report.py DATA OUT.md [OUT.png]   the dated Markdown file (and the plot)
  report.py --failover-only DATA    the failover tables, to stdout

DATA holds machine.json, failover-TOOL-SCENARIO.json (bench-failover.sh),
cost.json (bench-cost.sh), idle-INTERVAL.json (bench-idle.sh) and callgrind.json
(bench-cost.sh --callgrind), and notes.md if someone wrote one; a section whose
figures are missing is left out.
"""
import json
import os
import statistics
import subprocess
import sys
import time

TOOLS = ("rerouter", "monit")
SCENARIOS = ("far-end", "local", "lab1s")
# Added to each cut's phase (bench-failover.sh): fast_interval + timeout; for
# local link loss fast_interval alone, since a check over a link without
# carrier fails at once (probes/route.c).
FLOOR = {"far-end": 2.0, "local": 1.0, "lab1s": 1.9}
SETTINGS = {
    "far-end": "rerouter interval 30 s, fast_interval 1 s, timeouts 1 s; monit `set daemon 30`, timeouts 1 s",
    "local": "as far-end",
    "lab1s": "rerouter interval 1 s (fast_interval = interval), timeouts 900 ms; "
             "monit `set daemon 1` (its least), timeouts 1 s (whole seconds only in its grammar)",
}


def load(data, name):
    p = os.path.join(data, name)
    return json.load(open(p)) if os.path.exists(p) else None


def spread(v):
    v = [x for x in v if x is not None]
    if not v:
        return "-"
    return "%.2f s (%.2f-%.2f)" % (statistics.median(v), min(v), max(v))


def med(v):
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None


def over_floor(sc, rows):
    return [r["failover"] - (r["phase_down"] + FLOOR[sc]) for r in rows
            if r["failover"] is not None and r.get("phase_down") is not None]


def f2(v):
    return "-" if v is None else "%.2f" % v


def failover_tables(data):
    runs = {(t, s): load(data, "failover-%s-%s.json" % (t, s)) for t in TOOLS for s in SCENARIOS}
    scs = [s for s in SCENARIOS if any(runs[(t, s)] for t in TOOLS)]
    if not scs:
        return [], runs
    out = ["## Failover and recovery", "",
           "Three checks (ping, tcp, http), failed_checks 2, runs 2 / `for 2 cycles`; the cut at a random",
           "phase. failover = cut to the connector row changed, recovery = restore to the row back",
           "(polled every 20 ms). rerouter's floor = phase (cut to its next run's start) + fast_interval + timeout;",
           "for local link loss phase + fast_interval (a check over a link without carrier fails at once).", ""]
    for s in scs:
        out.append("- %s: %s." % (s, SETTINGS[s]))
    out += ["", "| scenario | tool | cuts | failover median (min-max) | recovery median (min-max) | over floor, failover (max) |",
            "|---|---|---|---|---|---|"]
    for s in scs:
        for t in TOOLS:
            rows = runs[(t, s)] or []
            if not rows:
                continue
            over = over_floor(s, rows)
            out.append("| %s | %s | %d | %s | %s | %s |" % (
                s, t, len(rows), spread([r["failover"] for r in rows]),
                spread([r["recovery"] for r in rows]), "%.2f s" % max(over) if over else "-"))
    out += ["", "### Per cut", "", "| scenario | tool | cut | failover s | recovery s | phase s | floor s |",
            "|---|---|---|---|---|---|---|"]
    for s in scs:
        for t in TOOLS:
            for r in runs[(t, s)] or []:
                ph = r.get("phase_down")
                out.append("| %s | %s | %d | %s | %s | %s | %s |" % (
                    s, t, r["cut"], f2(r["failover"]), f2(r["recovery"]), f2(ph),
                    f2(None if ph is None else ph + FLOOR[s])))
    return out, runs


def targets(runs, cost):
    out = ["## Against issue 12's targets", "", "| target | measured | met |", "|---|---|---|"]
    fe, fm = runs.get(("rerouter", "far-end")), runs.get(("monit", "far-end"))
    if fe:
        over = over_floor("far-end", fe)
        if over:
            out.append("| far-end failover within 200 ms of rerouter's floor, every cut | worst %.0f ms over (%d cuts) | %s |"
                       % (max(over) * 1000, len(over), "yes" if max(over) <= 0.2 else "no"))
        if fm:
            a, b = med([r["failover"] for r in fe]), med([r["failover"] for r in fm])
            if a is not None and b:
                out.append("| far-end median at most 0.4 of monit's | %.2f s / %.2f s = %.2f | %s |"
                           % (a, b, a / b, "yes" if a / b <= 0.4 else "no"))
    lo = runs.get(("rerouter", "local"))
    if lo:
        v = [r["failover"] for r in lo if r["failover"] is not None]
        if v:
            out.append("| local link loss switched within fast_interval + 1 s (2 s) of the cut | worst %.2f s | %s |"
                       % (max(v), "yes" if max(v) <= 2.0 else "no"))
    r1000 = next((r for r in (cost or []) if r["tool"] == "rerouter" and r["n"] == 1000), None)
    if r1000:
        out.append("| 1,000 checks within timeout + 100 ms | %.0f ms | %s |" % (r1000["wall_ms"], "yes" if r1000["wall_ms"] <= 1100 else "no"))
        per = r1000["cpu_ms"] / 1000
        out.append("| under 1 ms CPU per check | %.3f ms | %s |" % (per, "yes" if per < 1 else "no"))
        out.append("| under 16 MiB peak RSS | %.1f MiB | %s |" % (r1000["rss_kib"] / 1024, "yes" if r1000["rss_kib"] < 16384 else "no"))
    return out if len(out) > 4 else []


def cost_table(cost):
    if not cost:
        return []
    out = ["## Run cost", "",
           "N checks (ping, http, tcp, smtp in turn; half of them to a black-holed address), timeout 1 s.",
           "rerouter: one `rerouterd --once` (all checks at once), the median of 3 by wall time. monit: one",
           "`monit -c FILE validate` (one cycle in the foreground, then exit) of N `check host` services with one",
           "test each; monit tests its services one after the other. Wall time, user+system CPU and peak RSS",
           "of the process (wait4), the same namespaces and targets for both.", "",
           "| tool | N | wall | CPU | CPU per check | peak RSS | passed |", "|---|---|---|---|---|---|---|"]
    for r in sorted(cost, key=lambda r: (r["tool"] != "rerouter", r["n"])):
        out.append("| %s | %d | %.0f ms | %.0f ms | %.3f ms | %.1f MiB | %s |" % (
            r["tool"], r["n"], r["wall_ms"], r["cpu_ms"], r["cpu_ms"] / r["n"], r["rss_kib"] / 1024,
            "-" if r.get("passed") is None else "%d of %d" % (r["passed"], r["n"])))
    return out


def idle_tables(data):
    out = []
    for f in sorted(x for x in os.listdir(data) if x.startswith("idle-") and x.endswith(".json")):
        idle = load(data, f)
        out += ["## Idle cost, interval %s" % idle["interval"], "", idle["method"], "",
                "| figure | value |", "|---|---|"]
        out += ["| %s | %s |" % (k, v) for k, v in idle["figures"]] + [""]
    return out


def callgrind_table(cg):
    if not cg:
        return []
    out = ["## Instructions per run (callgrind)", "", cg["method"], "",
           "| run | Ir (instructions) | checks passed |", "|---|---|---|"]
    for r in cg["runs"]:
        out.append("| %s | {:,} | %d |".format(r["ir"]) % (r["what"], r["passed"]))
    big = [r["ir"] for r in cg["runs"] if r["n"] == 100]
    floor = [r["ir"] for r in cg["runs"] if r["n"] == 2]
    if big and floor:
        per = (statistics.median(big) - statistics.median(floor)) / 98
        out += ["", "Over the 2-check floor: {:,.0f} instructions per check.".format(per)]
    return out


def plot(runs, png):
    scs = [s for s in SCENARIOS if any(runs.get((t, s)) for t in TOOLS)]
    if not scs:
        return False
    d = os.path.dirname(os.path.abspath(png))
    tmp = os.path.join(d, ".plot-%d" % os.getpid())
    os.makedirs(tmp, exist_ok=True)
    gp = ['set terminal pngcairo size %d,460 font "sans,10"' % (420 * len(scs)), 'set output "%s"' % png,
          'set multiplot layout 1,%d title "Failover per cut (s), issue 12 benchmark"' % len(scs),
          'set xlabel "cut"', 'set xtics 1', 'set ylabel "seconds"', 'set key below', 'set offsets 0.3, 0.3, 0, 0', 'set grid', 'set yrange [0:*]']
    for s in scs:
        series = []
        for t in TOOLS:
            rows = runs.get((t, s)) or []
            f = os.path.join(tmp, "%s-%s.dat" % (t, s))
            with open(f, "w") as fh:
                for r in rows:
                    ph = r.get("phase_down")
                    fh.write("%d %s %s\n" % (r["cut"], "NaN" if r["failover"] is None else r["failover"],
                                             "NaN" if ph is None else ph + FLOOR[s]))
            if rows:
                series.append('"%s" using 1:2 with linespoints pt 7 title "%s"' % (f, t))
                if t == "rerouter":
                    series.append('"%s" using 1:3 with lines dt 2 title "rerouter floor"' % f)
        gp += ['set title "%s"' % s, "plot " + ", ".join(series)]
    gp.append("unset multiplot")
    subprocess.run(["gnuplot"], input="\n".join(gp) + "\n", text=True, check=True)
    for f in os.listdir(tmp):
        os.unlink(os.path.join(tmp, f))
    os.rmdir(tmp)
    return True


def main():
    if sys.argv[1] == "--failover-only":
        print("\n".join(failover_tables(sys.argv[2])[0]))
        return
    data, out_md = sys.argv[1], sys.argv[2]
    png = sys.argv[3] if len(sys.argv) > 3 else None
    m = load(data, "machine.json") or {}
    fo, runs = failover_tables(data)
    cost = load(data, "cost.json")
    lines = ["# Benchmark, %s" % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "",
             "Machine: %s, %s cores, kernel %s (shared with other work: see the notes at the end, if any)."
             % (m.get("cpu", "?"), m.get("cores", "?"), m.get("kernel", "?")),
             "Produced by `tests/bench/run`; rerouter and monit never ran at the same time.", ""]
    lines += targets(runs, cost) + [""]
    if png and plot(runs, png):
        fo[1:1] = ["", "![failover per cut](%s)" % os.path.basename(png)]
    for part in (fo, cost_table(cost), idle_tables(data), callgrind_table(load(data, "callgrind.json"))):
        if part:
            lines += part + [""]
    notes = os.path.join(data, "notes.md")    # what the person who ran it saw, if anything
    if os.path.exists(notes):
        lines += ["## Notes", "", open(notes).read().strip(), ""]
    open(out_md, "w").write("\n".join(lines).rstrip() + "\n")
    print("written: %s" % out_md)


if __name__ == "__main__":
    main()
