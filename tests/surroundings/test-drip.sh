#!/bin/bash
# Issue 13, surroundings 6: targets that answer byte by byte. An HTTP server
# that drips its answer (one byte every 200 ms), one that sends a header line
# without end, an SMTP server that drips its greeting, and a server that
# accepts and never speaks (for the http and the smtp check). rerouterd
# --once must report each check failed at its deadline ("timeout"), not hang
# with the dripping server; the elapsed times are figures, not assertions.
# The targets are on loopback (127.0.70.6).
set -u
. "$RR_SRCDIR/tests/lib/common.sh"

rr_need_cmd python3
rr_tmpdir
rr_trap

T=$RR_TMPDIR
RERD=$RR_BUILDDIR/rerouterd
ADDR=127.0.70.6
rr_spawn sur-drip python3 "$RR_SRCDIR/tests/surroundings/drip.py" "$ADDR" \
	http-drip:20761 http-flood:20762 smtp-drip:20763 silent:20764
for p in 20761 20762 20763 20764; do
	wait_for 10 rr_tcp_open "$ADDR" "$p" || rr_die "drip server on port $p did not start"
done

cat >"$T/drip.conf" <<EOF
[agent]
interval = 10s
failed_checks = 1

[check "http-drip"]
type = http
target = http://$ADDR:20761/
timeout = 1500ms

[check "http-flood"]
type = http
target = http://$ADDR:20762/
timeout = 1500ms

[check "smtp-drip"]
type = smtp
target = $ADDR:20763
timeout = 1500ms

[check "http-silent"]
type = http
target = http://$ADDR:20764/
timeout = 1500ms

[check "smtp-silent"]
type = smtp
target = $ADDR:20764
timeout = 1500ms
EOF
"$RERD" --check-config -c "$T/drip.conf" >/dev/null || rr_die "config rejected: $("$RERD" --check-config -c "$T/drip.conf" 2>&1)"

rr_step "rerouterd --once against the dripping targets (deadline 1500 ms each)"
t0=$(rr_now_ms)
timeout 30 "$RERD" --once -c "$T/drip.conf" >"$T/once.out" 2>"$T/once.err"
rc=$?
t1=$(rr_now_ms)
cat "$T/once.out" >&2
rr_expect_eq "the run failed (exit 1; 124 would be a hang)" 1 "$rc"
for c in http-drip http-flood smtp-drip http-silent smtp-silent; do
	line=$(grep "^$c " "$T/once.out")
	rr_check "$c: FAIL, timeout" eval '[[ "$line" =~ \ FAIL\ +[0-9]+\ +timeout ]]'
	ms=$(awk '{ for (i = 1; i < NF; i++) if ($i == "FAIL") print $(i + 1) }' <<<"$line")
	rr_info "FIGURE: $c failed after ${ms:-?} ms (deadline 1500 ms)"
done
rr_check "the verdict counts all five" grep -q '^run FAILED (5 of 5 checks failed)' "$T/once.out"
rr_info "FIGURE: rerouterd --once took $((t1 - t0)) ms in all (checks run in parallel)"

if [ "$RR_FAILURES" -gt 0 ]; then
	rr_log "$RR_FAILURES check(s) failed; logs in $T"
	exit 1
fi
rr_log "all checks passed"
