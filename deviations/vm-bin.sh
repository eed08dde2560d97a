#!/bin/sh
# Builds OUT, one static executable that runs every reproducer of this
# directory in turn (each in a child, 120 s at most) and writes a JSON-lines
# report in the harness's record format to $NSVERIFY_REPORT: id
# "deviations.<name>", outcome pass (CONFORMS), fail with known_deviation
# (DEVIATES), skip (cannot run here) or broken, the verdict line as reason;
# it exits 101 (as a libtest binary) when a reproducer broke, else 0.
# It is what the VM guests run in place of the case binary:
#   deviations/vm-bin.sh /tmp/repro && ci/vm-matrix.sh --case-bin /tmp/repro --out DIR
# and for arm64 guests too (a cross compiler: gcc-aarch64-linux-gnu):
#   CC=aarch64-linux-gnu-gcc deviations/vm-bin.sh /tmp/repro-arm64
#   ci/vm-matrix.sh --case-bin /tmp/repro --case-bin /tmp/repro-arm64 --out DIR
# (a VM guest has no compiler: the reproducers are compiled here, statically).
set -eu
out=${1:?usage: deviations/vm-bin.sh OUT}
dir=$(cd "$(dirname "$0")" && pwd)
cc=${CC:-cc}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
names=""
for src in "$dir"/*.c; do
	name=$(basename "$src" .c)
	"$cc" -O1 -c -Dmain="repro_$name" -o "$work/$name.o" "$src"
	names="$names $name"
done
{
	echo '#include <stdio.h>'
	echo '#include <string.h>'
	echo '#include <stdlib.h>'
	echo '#include <unistd.h>'
	echo '#include <sys/wait.h>'
	for n in $names; do echo "int repro_$n(void);"; done
	echo 'static const struct { const char *name; int (*run)(void); } all[] = {'
	for n in $names; do echo "	{ \"$n\", repro_$n },"; done
	echo '};'
	cat <<'C'
static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

int main(void)
{
	const char *path = getenv("NSVERIFY_REPORT");
	FILE *report = path ? fopen(path, "w") : NULL;
	int failed = 0;
	for (unsigned i = 0; i < sizeof all / sizeof *all; i++) {
		int out[2];
		if (pipe(out))
			return 3;
		fflush(stdout);
		if (report)
			fflush(report);
		pid_t pid = fork();
		if (pid == 0) {
			dup2(out[1], STDOUT_FILENO);
			close(out[0]);
			alarm(120);
			exit(all[i].run());
		}
		close(out[1]);
		char text[4096] = "", line[1024] = "";
		size_t len = 0;
		ssize_t n;
		while (len < sizeof text - 1 && (n = read(out[0], text + len, sizeof text - 1 - len)) > 0)
			len += n;
		text[len] = 0;
		close(out[0]);
		int status = 0;
		waitpid(pid, &status, 0);
		int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		/* The verdict is the last line. */
		char *last = text;
		for (char *p = text; *p; p++)
			if (*p == '\n' && p[1])
				last = p + 1;
		snprintf(line, sizeof line, "%.*s", (int)strcspn(last, "\n"), last);
		const char *outcome = code == 0 ? "pass" : code == 1 ? "fail" : code == 2 ? "skip" : "broken";
		printf("%-40s exit %d  %s\n", all[i].name, code, line);
		failed |= code > 2;
		if (report) {
			fprintf(report, "{\"id\":\"deviations.%s\",\"claims\":[],\"outcome\":\"%s\",\"reason\":", all[i].name, outcome);
			json_string(report, code == 0 ? "" : line);
			if (code == 1) {
				fprintf(report, ",\"known_deviation\":");
				json_string(report, all[i].name);
			}
			fprintf(report, "}\n");
		}
	}
	if (report)
		fclose(report);
	/* 101, as libtest's: the driver reads any other code as a lost run. */
	return failed ? 101 : 0;
}
C
} >"$work/main.c"
"$cc" -O1 -static -o "$out" "$work/main.c" "$work"/*.o
