#!/usr/bin/env python3
"""A SIGHUP storm (tests/surroundings/test-sighup.sh): every other write of
CONF is broken; each write is followed by a SIGHUP to PID.
usage: storm.py PID CONF GOOD_TEMPLATE SECONDS PAUSE_SEC
GOOD_TEMPLATE holds @TIMEOUT@, @NAME@ and @EXTRA@, filled differently each
time (SUR_TARGET: the second check's target). Prints the signals sent."""
import os
import signal
import sys
import time

pid, conf, template, seconds, pause = (int(sys.argv[1]), sys.argv[2], open(sys.argv[3]).read(),
                                       float(sys.argv[4]), float(sys.argv[5]))
BROKEN = [
    "[agent\ninterval = 200ms\n",                    # a section header without its bracket
    "[agent]\ninterval = soon\n",                    # not a duration
    "[agent]\ninterval = 200ms\nbogus_key = 1\n",    # an unknown key
    None,                                            # the good one, with a timeout >= interval
    "",                                              # empty: no check at all
]
EXTRA = ["", '\n[check "gw2"]\ntype = tcp\ntarget = @TARGET@\ntimeout = 50ms\n']


def good(i):
    t = template.replace("@TIMEOUT@", "%dms" % (60 + i % 7 * 10))
    t = t.replace("@NAME@", "gw-%d" % (i % 13))
    return t.replace("@EXTRA@", EXTRA[i % 2]).replace("@TARGET@", os.environ["SUR_TARGET"])


def write(text):
    tmp = conf + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, conf)


def hup():
    os.kill(pid, signal.SIGHUP)


n = 0
end = time.monotonic() + seconds
i = 0
while time.monotonic() < end:
    if i % 2 == 0:
        write(good(i))
    else:
        b = BROKEN[i // 2 % len(BROKEN)]
        write(b if b is not None else template.replace("@TIMEOUT@", "5s").replace("@NAME@", "x")
              .replace("@EXTRA@", ""))
    hup()
    n += 1
    i += 1
    time.sleep(pause)
print(n)
