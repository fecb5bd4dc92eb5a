#!/usr/bin/env python3
"""Every change of state in the state database against what reached the
alert mailbox and the hook log (tests/surroundings).

A change is known by (at, new state, old state); `at` has one-second
resolution, so the same key may stand for several changes: each key must
then come as many times in the mailbox as in the database (alerts exactly
once) and at most as many times in the hook log (hooks at most once).
A mail carries one change, or several merged ("==== Change k ====" parts).

usage: account.py STATE_DB MAIL_DIR HOOK_LOG [--no-hooks]
Prints the figures; exit 1 when an alert is missing or twice, or a hook ran
more often than its change."""
import collections
import os
import re
import sqlite3
import sys

state_db, mail_dir, hook_log = sys.argv[1:4]
check_hooks = "--no-hooks" not in sys.argv[4:]

db = sqlite3.connect("file:%s?mode=ro" % state_db, uri=True, timeout=30)
changes = collections.Counter(
    (at, new, old) for at, new, old in
    db.execute("SELECT at, new_state, old_state FROM changes ORDER BY id"))
n_changes = sum(changes.values())

is_re = re.compile(r"^The internet connection of \S+ is ([A-Z]+)\.$")
time_re = re.compile(r"^Time: +.*\((\S+)\)$")
prev_re = re.compile(r"^Previous: +([A-Z?]+)")
alerts = collections.Counter()
n_mails = 0
for name in sorted(os.listdir(mail_dir)):
    with open(os.path.join(mail_dir, name), encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    n_mails += 1
    new = at = None
    for line in lines:
        m = is_re.match(line)
        if m:
            new, at = m.group(1).lower(), None
            continue
        m = time_re.match(line)
        if m and new:
            at = m.group(1)
            continue
        m = prev_re.match(line)
        if m and new and at:
            alerts[(at, new, m.group(1).lower())] += 1
            new = at = None

hooks = collections.Counter()
with open(hook_log, encoding="utf-8", errors="replace") as f:
    for line in f:
        p = line.split()
        if len(p) == 3:
            hooks[tuple(p)] += 1

missing = sum(max(0, n - alerts[k]) for k, n in changes.items())
extra = sum(max(0, alerts[k] - changes[k]) for k in alerts)
hooks_over = sum(max(0, hooks[k] - changes[k]) for k in hooks)
hooks_run = sum(min(hooks[k], changes[k]) for k in hooks)
print("changes %d; alert mails %d carrying %d alerts: exactly once %d, missing %d, extra %d; "
      "hooks run %d (at most once: %s, never run %d, over %d)"
      % (n_changes, n_mails, sum(alerts.values()), n_changes - missing, missing, extra,
         hooks_run, "yes" if hooks_over == 0 else "NO", n_changes - hooks_run, hooks_over))
bad = missing or extra or (check_hooks and hooks_over)
sys.exit(1 if bad else 0)
