#!/bin/sh
# symbols_test.sh LIBVMAP_A LIBVMAP_SO INCLUDE_DIR [CFLAGS]
#
# libvmap's internals (lazy_init, memory_init, vm_alloc, ...) must not be
# visible to a program linking it: every defined global symbol of the static
# and the shared library starts with vmap_.  Then the effect that matters: a
# program defining its own lazy_init, memory_init, vm_alloc and batch_sort
# links against libvmap.a and runs.
#
# CFLAGS (one word-split argument, may be empty) is what the program needs to
# link against an instrumented library: -fsanitize=... in sanitizer builds.
set -u

if [ $# -lt 3 ]; then
	echo "usage: $0 LIBVMAP_A LIBVMAP_SO INCLUDE_DIR [CFLAGS]" >&2
	exit 2
fi
lib_a=$1
lib_so=$2
incdir=$3
extra=${4-}
status=0

# Defined global symbols (nm's uppercase types, but U) not starting with
# vmap_.  Undefined (U) and weak undefined (w, v) are references, not ours.
# In the .so, the linker defines these in every shared object, and they
# cannot be hidden:
#   _init, _fini            crti.o's DT_INIT / DT_FINI entry points
#   __bss_start, _edata,    section boundaries the default linker script
#   _end                    defines (PROVIDE) in every output
offenders() {
	nm -P -g "$1" | awk -v allow="$2" '
		BEGIN { n = split(allow, a, " "); for (i = 1; i <= n; i++) ok[a[i]] = 1 }
		NF >= 2 && $2 ~ /^[A-Z]$/ && $2 != "U" && $1 !~ /^vmap_/ && !($1 in ok) {
			print "  " $2 " " $1
		}' | sort -u
}

for lib in "$lib_a" "$lib_so"; do
	if [ ! -f "$lib" ]; then
		echo "FAIL: no such file: $lib"
		status=1
		continue
	fi
	case $lib in
	*.a) allow= ;;
	*) allow="_init _fini __bss_start _edata _end" ;;
	esac
	bad=$(offenders "$lib" "$allow")
	if [ -n "$bad" ]; then
		echo "FAIL: $lib exports symbols without the vmap_ prefix:"
		echo "$bad"
		status=1
	else
		echo "ok: every global symbol of $lib starts with vmap_"
	fi
done

# A program with its own lazy_init, memory_init, vm_alloc and batch_sort.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/symbols_test.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
cat >"$tmp/clash.c" <<'EOF'
#include <stdio.h>
#include <vmap.h>

/* The same names as libvmap's internals, other signatures. */
int lazy_init = 1;
const char *memory_init(void) { return "mine"; }
long vm_alloc(long x) { return x + 1; }
void batch_sort(int *v, int n) { (void)v; (void)n; }

int main(void)
{
	struct vmap_config cfg;
	vmap_space *s;
	int err;

	vmap_config_init(&cfg);
	cfg.base = 1ull << 32;
	cfg.length = 1ull << 30;
	if ((err = vmap_space_create(&cfg, &s))) {
		fprintf(stderr, "vmap_space_create: %d\n", err);
		return 1;
	}
	vmap_space_destroy(s);
	batch_sort(NULL, 0);
	return !(lazy_init == 1 && vm_alloc(1) == 2 && memory_init()[0] == 'm');
}
EOF
# shellcheck disable=SC2086 # $extra is a list of flags
if ! cc $extra -I"$incdir" -o "$tmp/clash" "$tmp/clash.c" "$lib_a" -lpthread \
	>"$tmp/log" 2>&1; then
	echo "FAIL: a program defining lazy_init, memory_init, vm_alloc and" \
	     "batch_sort does not link against $lib_a:"
	sed 's/^/  /' "$tmp/log" | head -20
	status=1
elif ! "$tmp/clash"; then
	echo "FAIL: the program defining libvmap's internal names did not run"
	status=1
else
	echo "ok: a program defining libvmap's internal names links and runs"
fi
exit $status
