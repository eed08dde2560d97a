#!/bin/busybox sh
# /init of the nsverify VM initramfs (built by ci/src/initramfs.rs).
#
# Runs the case binary as root, then as uid/gid 65534, then the optional
# fuzz binary (as root), then the optional bench binary (benches/README.md, "Standalone"), and powers off.
# Console (ttyS0; arm64 ttyAMA0): kernel messages and the runs' output, for humans.
# Results channel (ttyS1; arm64 ttyS0; raw): only this script writes there, in lines the
# host parses (ci/src/vm.rs):
#   @@NSVERIFY phase <name> [detail]     progress, host-side phase machine
#   @@NSVERIFY exit <run> <code>         exit code of a run
#   @@NSVERIFY file <name> <bytes>       followed by exactly <bytes> bytes
#   @@NSVERIFY phase done                last line before poweroff
# No `set -e`: a failing run must still be reported and the VM powered off.
set -u

setup() {
	/bin/busybox --install -s /bin
	export PATH=/bin HOME=/tmp
	mount -t proc proc /proc
	mount -t sysfs sysfs /sys
	mount -t devtmpfs devtmpfs /dev
	mount -t tmpfs -o mode=1777 tmpfs /tmp
	mount -t tmpfs -o mode=0755 tmpfs /run
	# nsdelegate, as systemd mounts it: cgroup namespaces are delegation
	# boundaries, which the U4 case (cgroupns.procs.open_time_namespace)
	# needs; without it the kernel checks no cgroup namespace on a write.
	mkdir -p /sys/fs/cgroup && mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
	# Written by the driver: NSVERIFY_TIMEOUT_SCALE, NSVERIFY_CHANNEL (the
	# results channel's device: ttyS1 on x86_64, ttyS0 on arm64) and friends.
	. /nsverify/env
	: "${NSVERIFY_CHANNEL:=/dev/ttyS1}"
	stty -F "$NSVERIFY_CHANNEL" raw -echo
	exec 3>"$NSVERIFY_CHANNEL"
	# The kernel's config, when the driver recorded one: the suite reads
	# which namespace kinds are built in from it.
	if [ -f /nsverify/kernel.config ]; then export NSVERIFY_KERNEL_CONFIG=/nsverify/kernel.config; fi
}

say() { echo "@@NSVERIFY $*" >&3; }

send_file() { # name path
	[ -f "$2" ] || return 0
	say file "$1" "$(wc -c <"$2")"
	cat "$2" >&3
}

# run <name> <command...>: the command gets the arguments in /nsverify/<name>.args
# (one per line), its output goes to the console and back as <name>.out.
run() {
	name=$1
	shift
	while IFS= read -r arg; do set -- "$@" "$arg"; done <"/nsverify/$name.args"
	say phase "$name"
	rm -f "/tmp/$name.jsonl"
	{
		cd /tmp && NSVERIFY_REPORT="/tmp/$name.jsonl" NSVERIFY_REPORT_EXACT=1 NSVERIFY_BENCH_REPORT="/tmp/$name.json" \
			CRITERION_HOME=/tmp/criterion "$@" 2>&1
		echo $? >"/tmp/$name.rc"
	} | tee "/tmp/$name.out"
	say exit "$name" "$(cat "/tmp/$name.rc")"
	send_file "$name.jsonl" "/tmp/$name.jsonl"
	send_file "$name.json" "/tmp/$name.json"
	send_file "$name.md" "/tmp/$name.md"
	send_file "$name.out" "/tmp/$name.out"
}

setup
say phase init "$(uname -r)"
run root /nsverify/cases
run unprivileged /nsverify/setpriv --reuid 65534 --regid 65534 --clear-groups /nsverify/cases
[ -x /nsverify/fuzz ] && run fuzz /nsverify/fuzz
[ -x /nsverify/bench ] && run bench /nsverify/bench
say phase done
sync
poweroff -f
