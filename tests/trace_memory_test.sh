#!/bin/sh
# SPDX-License-Identifier: MIT
#
# vmap-trace replay --memory: every sample strace log in DATA-DIR replays,
# with --check (vmap_check and the replay's invariants after every step),
# and every malformed log in DATA-DIR/bad-memory is refused: exit status 1,
# one "FILE:LINE: ..." message on stderr, nothing on stdout, no --json file.
#
#   trace_memory_test.sh VMAP-TRACE DATA-DIR
set -u

bin=${1:?usage: trace_memory_test.sh VMAP-TRACE DATA-DIR}
data=${2:?usage: trace_memory_test.sh VMAP-TRACE DATA-DIR}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fails=0
n=0

bad() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

# The samples: replayed, checked, a table and a JSON file.
for log in "$data"/*.strace; do
	[ -e "$log" ] || { bad "no sample logs in $data"; break; }
	n=$((n + 1))
	rm -f "$tmp/out.json"
	"$bin" replay --memory --check --rounds 1 --json "$tmp/out.json" \
		"$log" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ $rc -ne 0 ]; then
		bad "$log: exit status $rc"
		cat "$tmp/err"
		continue
	fi
	grep -q 'wall time' "$tmp/out" || bad "$log: no table"
	grep -q '"vmap": {"wall_ns"' "$tmp/out.json" 2>/dev/null ||
		bad "$log: no JSON results"
	if command -v python3 >/dev/null 2>&1 &&
	   ! python3 -m json.tool "$tmp/out.json" >/dev/null 2>&1; then
		bad "$log: the JSON file does not parse"
	fi
	echo "ok: $log"
done

# The malformed logs: refused before anything happens.
for log in "$data"/bad-memory/*; do
	[ -e "$log" ] || { bad "no malformed logs in $data/bad-memory"; break; }
	n=$((n + 1))
	rm -f "$tmp/out.json"
	"$bin" replay --memory --json "$tmp/out.json" "$log" \
		>"$tmp/out" 2>"$tmp/err"
	rc=$?
	[ $rc -eq 1 ] || bad "$log: exit status $rc, expected 1"
	[ -s "$tmp/out" ] && bad "$log: wrote to stdout"
	[ -e "$tmp/out.json" ] && bad "$log: wrote the --json file"
	if [ "$(wc -l <"$tmp/err")" -ne 1 ] ||
	   ! grep -q "^$log:[0-9][0-9]*: ." "$tmp/err"; then
		bad "$log: expected one '$log:LINE: ...' message, got:"
		cat "$tmp/err"
	else
		echo "ok: $(cat "$tmp/err")"
	fi
done

# A log attached to a running program may free what it never saw mapped.
log="$data/bad-memory/munmap-never-mapped.strace"
if [ -e "$log" ]; then
	n=$((n + 1))
	"$bin" replay --memory --check --attached --rounds 1 "$log" \
		>"$tmp/out" 2>&1 || bad "$log --attached: refused"
	grep -q '1 on memory never seen mapped' "$tmp/out" ||
		bad "$log --attached: the skipped munmap is not reported"
fi

echo "$n cases, $fails failures"
[ $fails -eq 0 ]
