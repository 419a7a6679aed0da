#!/bin/sh
# The README's usage example must be the code of examples/example.c, which the
# build compiles and the tests run: every line of the README's C block must
# appear, in order, in the example.
readme=$1 example=$2
awk '/^```c$/{on=1; next} /^```$/{on=0} on' "$readme" | grep -v '^[[:space:]]*$' >/tmp/readme_block.$$
grep -v '^[[:space:]]*$' "$example" >/tmp/example.$$
# Each README line must be found after the previous one.
awk 'BEGIN { i = 0; n = 0 }
     NR==FNR { want[n++] = $0; next }
     i < n && $0 == want[i] { i++ }
     END { if (i < n) { print "README line not in example, in order: " want[i]; exit 1 } }' \
	/tmp/readme_block.$$ /tmp/example.$$
rc=$?
rm -f /tmp/readme_block.$$ /tmp/example.$$
exit $rc
