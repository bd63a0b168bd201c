#!/usr/bin/env python3
"""Prints line and branch coverage per SDK source file from an lcov
tracefile and checks the totals against a minimum.

  coverage_report.py TRACEFILE [--min PERCENT]
"""
import argparse
import os
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tracefile")
    ap.add_argument("--min", type=float, default=95.0)
    args = ap.parse_args()

    # Counted from the DA (line) and BRDA (branch) records themselves.
    files = {}
    cur = None
    with open(args.tracefile) as f:
        for line in f:
            line = line.strip()
            if line.startswith("SF:"):
                cur = files.setdefault(os.path.basename(line[3:]), [0, 0, 0, 0])
            elif line.startswith("DA:"):
                cur[0] += 1
                cur[1] += int(line[3:].split(",")[1]) > 0
            elif line.startswith("BRDA:"):
                taken = line[5:].split(",")[3]
                cur[2] += 1
                cur[3] += taken not in ("-", "0")

    def pct(hit, total):
        return 100.0 * hit / total if total else 100.0

    print("| file | lines | branches |")
    print("|---|---:|---:|")
    tot = [0, 0, 0, 0]
    for name in sorted(files):
        lf, lh, bf, bh = files[name]
        tot = [a + b for a, b in zip(tot, files[name])]
        print("| %s | %.1f%% (%d/%d) | %.1f%% (%d/%d) |" % (name, pct(lh, lf), lh, lf,
                                                         pct(bh, bf), bh, bf))
    if tot[0] == 0:
        print("coverage: no line records in %s" % args.tracefile)
        return 1
    lines, branches = pct(tot[1], tot[0]), pct(tot[3], tot[2])
    print("| **total** | **%.1f%%** (%d/%d) | **%.1f%%** (%d/%d) |" % (
        lines, tot[1], tot[0], branches, tot[3], tot[2]))
    if lines < args.min or branches < args.min:
        print("coverage: below %.0f%% (lines %.1f%%, branches %.1f%%)" % (args.min, lines, branches))
        return 1
    print("coverage: lines %.1f%%, branches %.1f%% (minimum %.0f%%)" % (lines, branches, args.min))
    return 0


if __name__ == "__main__":
    sys.exit(main())
