#!/usr/bin/env python3
"""Validates an nsverify JSON-lines report: every line has the documented
fields with sane values, nothing failed (but documented known kernel
deviations) or broke, every skip has a reason.
Prints a one-line summary; exits 1 on any problem."""
import json
import sys

FIELDS = {"id": str, "claims": list, "outcome": str, "reason": str, "kernel": str, "duration_ms": (int, float)}
OUTCOMES = {"pass", "fail", "skip", "broken"}


def main(path):
    problems, counts = [], {o: 0 for o in OUTCOMES}
    with open(path) as f:
        lines = [l for l in f if l.strip()]
    if not lines:
        problems.append("empty report")
    for n, line in enumerate(lines, 1):
        try:
            rec = json.loads(line)
        except ValueError as e:
            problems.append(f"line {n}: not JSON: {e}")
            continue
        for name, typ in FIELDS.items():
            if not isinstance(rec.get(name), typ):
                problems.append(f"line {n}: field {name!r} missing or not {typ}")
        outcome = rec.get("outcome")
        if outcome not in OUTCOMES:
            problems.append(f"line {n}: outcome {outcome!r}")
            continue
        counts[outcome] += 1
        if outcome == "pass" and rec.get("xpass"):
            counts["xpass"] = counts.get("xpass", 0) + 1
            print(f"  XPASS {rec['id']}: a known deviation expected here did not happen: {rec['xpass']}")
        if outcome == "fail" and rec.get("known_deviation"):
            counts["known deviation"] = counts.get("known deviation", 0) + 1
        elif outcome in ("fail", "broken"):
            problems.append(f"{rec['id']}: {outcome}: {rec['reason']}")
        if outcome == "skip" and not rec["reason"].strip():
            problems.append(f"{rec['id']}: skipped without a reason")
    # A report merged from several processes (cargo nextest) names its run
    # in every record; records of two runs mean a merge went wrong.
    runs = set()
    for line in lines:
        try:
            runs.add(json.loads(line).get("run"))
        except ValueError:
            pass
    if len(runs) > 1:
        problems.append(f"records of more than one run (or with and without a run id): {sorted(map(str, runs))}")
    print(f"{path}: {len(lines)} records: " + ", ".join(f"{counts.get(o, 0)} {o}" for o in ("pass", "xpass", "fail", "known deviation", "skip", "broken")))
    for p in problems:
        print("  " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
