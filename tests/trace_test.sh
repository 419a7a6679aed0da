#!/bin/sh
# vmap-trace: the sample traces replay in every mode with vmap_check and the
# replay's conservation checks (the child fails on any), and at the kernel's
# purge moments reproduce every purge's count within 1%; every malformed
# trace is refused with its line and nothing written; recording (as root,
# where the kernel has the vmalloc events) leaves tracefs as it found it.
#   trace_test.sh BIN_DIR DATA_DIR
set -u
bin=$1
data=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# 1. The samples.
for f in "$data"/tiny.trace "$data"/*.trace.gz "$data"/*.txt.gz; do
	"$bin/vmap-trace" replay --check --rounds 1 --json "$tmp/r.json" "$f" \
		> "$tmp/out" 2> "$tmp/err" || { bad "replay $f"; cat "$tmp/err"; continue; }
	[ -s "$tmp/r.json" ] || bad "replay $f: no JSON"
	grep -q '"modes":{' "$tmp/r.json" || bad "replay $f: JSON without modes"
	rm -f "$tmp/r.json"
	"$bin/vmap-trace" replay --rounds 1 --purge-at kernel "$f" > "$tmp/out" \
		2> "$tmp/err" || { bad "replay --purge-at kernel $f"; cat "$tmp/err"; continue; }
	# "purges within 1% of the kernel's   N of M   N of M   N of M"
	line=$(grep "purges within 1%" "$tmp/out")
	[ -n "$line" ] || bad "$f: no 'purges within 1%' line"
	echo "$f: $line"
	case $f in *raw*) continue ;; esac # raw dumps: the state is inferred
	for nm in $(echo "$line" | grep -o '[0-9]* of [0-9]*' | tr -d ' '); do
		[ "${nm%of*}" = "${nm#*of}" ] || bad "$f: $nm purges within 1%"
	done
done
if command -v gnuplot > /dev/null; then
	"$bin/vmap-trace" replay --rounds 1 --plot "$tmp/p.png" "$data/tiny.trace" \
		> /dev/null || bad "replay --plot"
	[ -s "$tmp/p.png" ] || bad "--plot wrote no picture"
fi

# A trace with nothing to replay says so (check accepts it).
printf 'vmap-trace 1\nend 0 0 0\n' > "$tmp/empty.trace"
"$bin/vmap-trace" check "$tmp/empty.trace" > /dev/null || bad "check of an empty trace"
"$bin/vmap-trace" replay "$tmp/empty.trace" > /dev/null 2> "$tmp/err" &&
	bad "replay of an empty trace succeeded"
grep -q "nothing to replay" "$tmp/err" || bad "empty trace: $(cat "$tmp/err")"

# 2. Malformed traces: exit 1, FILE:LINE: and the reason, nothing written.
tab=$(printf '\t')
while IFS="$tab" read -r name line what; do
	f=$data/bad/$name
	"$bin/vmap-trace" replay --json "$tmp/bad.json" --plot "$tmp/bad.png" \
		"$f" > "$tmp/out" 2> "$tmp/err"
	rc=$?
	[ $rc -eq 1 ] || bad "$name: exit $rc, not 1"
	[ -s "$tmp/out" ] && bad "$name: printed a report"
	grep -qF "$f:$line: " "$tmp/err" || bad "$name: no '$f:$line:' in: $(cat "$tmp/err")"
	grep -qF "$what" "$tmp/err" || bad "$name: no '$what' in: $(cat "$tmp/err")"
	[ -e "$tmp/bad.json" ] || [ -e "$tmp/bad.png" ] && bad "$name: wrote output"
	"$bin/vmap-trace" check "$f" > /dev/null 2>&1 && bad "$name: check accepted it"
done < "$data/bad/EXPECT"

# 3. Recording.
tfs=/sys/kernel/tracing
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP recording: not root"
else
	if command -v setpriv > /dev/null; then
		setpriv --reuid=65534 --regid=65534 --clear-groups \
			"$bin/vmap-trace" record -o "$tmp/no.trace" -- true 2> "$tmp/err"
		[ $? -eq 1 ] || bad "record as nobody did not fail"
		grep -q "must run as root" "$tmp/err" || bad "record as nobody: $(cat "$tmp/err")"
		[ -e "$tmp/no.trace" ] && bad "record as nobody wrote a file"
	fi
	kptr=$(cat /proc/sys/kernel/kptr_restrict)
	"$bin/vmap-trace" record -o "$tmp/r.trace" -- "$bin/vmap-storm" threads 50 4 \
		2> "$tmp/err"
	rc=$?
	if [ $rc -ne 0 ] && grep -q "no vmalloc tracepoints\|cannot mount" "$tmp/err"; then
		echo "SKIP recording: $(cat "$tmp/err")"
	else
		[ $rc -eq 0 ] || bad "record: exit $rc: $(cat "$tmp/err")"
		"$bin/vmap-trace" check "$tmp/r.trace" || bad "the recorded trace does not check"
		"$bin/vmap-trace" replay --check --rounds 1 "$tmp/r.trace" > /dev/null ||
			bad "the recorded trace does not replay"
		[ "$(cat /proc/sys/kernel/kptr_restrict)" = "$kptr" ] || bad "kptr_restrict changed"
		ls -d "$tfs"/instances/vmap-trace-* 2> /dev/null && bad "instance left behind"
		# The command's exit status is passed on; the trace is kept.
		"$bin/vmap-trace" record -o "$tmp/s.trace" -- sh -c 'exit 3' 2> /dev/null
		[ $? -eq 3 ] || bad "record did not pass the command's status on"
		[ -s "$tmp/s.trace" ] || bad "record of a failing command wrote nothing"
		# No command: record until SIGINT.
		"$bin/vmap-trace" record -o "$tmp/i.trace" 2> /dev/null &
		pid=$!
		sleep 1
		kill -INT $pid
		wait $pid || bad "record stopped by SIGINT: exit $?"
		"$bin/vmap-trace" check "$tmp/i.trace" > /dev/null || bad "the SIGINT trace does not check"
		ls -d "$tfs"/instances/vmap-trace-* 2> /dev/null && bad "instance left behind"
	fi
fi
[ $fail -eq 0 ] && echo "trace_test: all passed"
exit $fail
