#!/bin/sh
# Compiles every reproducer of this directory with cc, runs it on the
# running kernel and prints a table; compares each verdict with the one
# DEVIATIONS.md records for this kernel (deviations/expected.tsv, generated
# with it).
#
# Exit 0: every reproducer gave the expected verdict, or could not run here
# (exit 2: no privilege, or the kernel lacks the interface); a race entry
# ("intermittent") may also conform where it is expected to deviate.
# Exit 1: a verdict differs from the expected one, or a reproducer broke
# (exit 3 or a signal). CC overrides the compiler; arguments name a subset.
set -u
dir=$(cd "$(dirname "$0")" && pwd)
cc=${CC:-cc}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The upstream release: Debian's uname -v names it ("Debian 6.12.118-1"),
# its uname -r only major.minor ("6.12.0-37-amd64").
release=$(uname -r)
base=$(echo "$release" | sed -n 's/^\([0-9]*\.[0-9]*\)\(\.[0-9]*\)\{0,1\}.*/\1\2/p')
named=$(uname -v | sed -n 's/.* Debian \([0-9]*\.[0-9]*\.[0-9]*\).*/\1/p')
kernel=$base
case "$named" in "${base%.*}".*) kernel=$named ;; esac
case "$kernel" in *.*.*) ;; *) kernel=$kernel.0 ;; esac
cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)

# version_ge A B: A >= B.
version_ge() {
	[ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" = "$2" ]
}

# in_spans SPANS: the running kernel lies in one of SPANS (from-until,...).
in_spans() {
	for span in $(echo "$1" | tr ',' ' '); do
		[ "$span" = none ] && continue
		from=${span%-*}
		until=${span#*-}
		if version_ge "$kernel" "$from" && { [ -z "$until" ] || ! version_ge "$kernel" "$until"; }; then
			return 0
		fi
	done
	return 1
}

echo "deviations/run.sh on Linux $release (upstream $kernel, $cpus CPUs, uid $(id -u))"
printf '%-36s %-9s %-10s %-8s %s\n' reproducer expected verdict result output
failed=0
grep -v '^#' "$dir/expected.tsv" | while IFS="$(printf '\t')" read -r name spans condition intermittent; do
	if [ $# -gt 0 ]; then
		wanted=no
		for a in "$@"; do [ "$a" = "$name" ] && wanted=yes; done
		[ $wanted = yes ] || continue
	fi
	expected=CONFORMS
	if in_spans "$spans"; then
		case "$condition" in
		-) expected=DEVIATES ;;
		cpus\>1) [ "$cpus" -gt 1 ] && expected=DEVIATES ;;
		*) echo "unknown condition $condition" >&2; exit 1 ;;
		esac
	fi
	if ! "$cc" -O1 -o "$work/$name" "$dir/$name.c" 2>"$work/$name.cc"; then
		printf '%-36s %-9s %-10s %-8s %s\n' "$name" $expected "-" FAIL "does not compile: $(head -n 1 "$work/$name.cc")"
		echo 1 >"$work/failed"
		continue
	fi
	if command -v timeout >/dev/null; then
		timeout 120 "$work/$name" >"$work/$name.out" 2>&1
	else
		"$work/$name" >"$work/$name.out" 2>&1
	fi
	code=$?
	line=$(tail -n 1 "$work/$name.out")
	case $code in
	0) verdict=CONFORMS ;;
	1) verdict=DEVIATES ;;
	2) verdict="CANNOT" ;;
	*) verdict="BROKEN($code)" ;;
	esac
	result=ok
	case $verdict in
	"$expected" | CANNOT) ;;
	CONFORMS) [ "$intermittent" = yes ] || result=MISMATCH ;;
	*) result=MISMATCH ;;
	esac
	printf '%-36s %-9s %-10s %-8s %s\n' "$name" $expected "$verdict" $result "$line"
	[ $result = ok ] || echo 1 >"$work/failed"
done
[ -f "$work/failed" ] && failed=1
if [ $failed = 0 ]; then
	echo "every reproducer gave the verdict DEVIATIONS.md expects on $kernel (or cannot run here)"
else
	echo "a reproducer's verdict differs from DEVIATIONS.md's for $kernel, or it broke" >&2
fi
exit $failed
