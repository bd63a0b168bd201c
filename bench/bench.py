#!/usr/bin/python3
"""Benchmarks of the DDNS backend: `make bench` runs this with the programs
of the release build (build/release/bin, -O2, no sanitizers).

Every scenario in SCENARIOS runs with a fixed amount of work and stops by
itself. Each yields figures (value, unit, an optional baseline measured in
the same run, and a target); the run prints them as one table and writes the
same to bench/results/<timestamp>.json. A missed target is printed as MISSED
but is no failure: the exit status is nonzero only when a scenario cannot
run (a program fails, PostgreSQL does not start, wrong row counts).

Standard library only. PostgreSQL is started on 127.0.0.1 in a temporary
directory by tests/integration/ddnsstack.py, as for the integration tests.

  bench/bench.py [--list] [--only NAME]... [--results-dir DIR] [--keep]

Environment: DDNS_BIN (programs to measure; default build/release/bin),
BENCH_PROV_DEVICES (devices of the provisioning scenario; default 1000000),
BENCH_TMPDIR (where the temporary directory goes; default the system's).
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
os.environ.setdefault("DDNS_BIN", os.path.join(ROOT, "build", "release", "bin"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import ddnsstack  # noqa: E402  (reads DDNS_BIN when imported)

BIN = ddnsstack.BIN
STARTED = time.monotonic()


class BenchError(Exception):
    """A scenario cannot run (not a missed target)."""


def progress(msg):
    print("[bench %6.1f s] %s" % (time.monotonic() - STARTED, msg), flush=True)


# -- figures and targets -------------------------------------------------------

class Target:
    """A target for a figure: op is '<=', '<' or '>='; on_ratio compares the
    figure's ratio to its baseline instead of its value."""

    def __init__(self, op, limit, text, on_ratio=False):
        self.op, self.limit, self.text, self.on_ratio = op, limit, text, on_ratio

    def met(self, value, ratio):
        x = ratio if self.on_ratio else value
        if x is None:
            return None
        return {"<=": x <= self.limit, "<": x < self.limit, ">=": x >= self.limit}[self.op]


class Figure:
    def __init__(self, name, value, unit, baseline=None, target=None, higher_is_better=False,
                 note=None):
        self.name, self.value, self.unit = name, value, unit
        self.baseline, self.target, self.note = baseline, target, note
        # ratio: how the figure compares with its baseline, >1 is better
        self.ratio = None
        if baseline:
            self.ratio = value / baseline if higher_is_better else baseline / value
        self.met = target.met(value, self.ratio) if target else None

    def as_dict(self):
        return {"figure": self.name, "value": self.value, "unit": self.unit,
                "baseline": self.baseline, "ratio": self.ratio,
                "target": self.target.text if self.target else None, "met": self.met,
                "note": self.note}


# -- the run's shared services -------------------------------------------------

class Context:
    """What scenarios share: the temporary directory, the programs, and a
    PostgreSQL server started on first use."""

    def __init__(self, tmp):
        self.tmp = tmp
        self._stack = None

    @property
    def stack(self):
        if self._stack is None:
            progress("starting PostgreSQL on 127.0.0.1 in %s" % self.tmp)
            self._stack = ddnsstack.Stack(os.path.join(self.tmp, "stack"), log=progress)
            self._stack.start_postgres()
            self._stack.make_keys()
        return self._stack

    def fresh_database(self, name):
        """A new database with the schema of db/migrations; returns its conninfo."""
        s = self.stack
        s.psql("DROP DATABASE IF EXISTS %s" % name)
        s.psql("CREATE DATABASE %s" % name)
        conninfo = s.conninfo.replace("dbname=ddns", "dbname=" + name)
        ddnsstack.run([os.path.join(ROOT, "db", "migrate"), conninfo])
        return conninfo

    def psql(self, conninfo, *args):
        return ddnsstack.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", conninfo] + list(args))

    def stop(self):
        if self._stack is not None:
            self._stack.stop()


def run_measured(cmd, label, env=None):
    """Runs cmd, echoing its standard error as progress lines; returns
    (wall seconds, peak RSS in MB of that process, stderr lines). Fails with
    BenchError on a nonzero exit."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         env=env)
    lines = []

    def pump():
        for line in p.stderr:
            lines.append(line.rstrip("\n"))
            progress("  %s| %s" % (label, line.rstrip()))

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    # wait4 gives the resource usage of exactly this child
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    t.join()
    if p.returncode != 0:
        raise BenchError("%s exited with %d: %s" % (label, p.returncode,
                                                     " / ".join(lines[-5:])))
    return wall, ru.ru_maxrss / 1024.0, lines


# -- scenarios -----------------------------------------------------------------

SCENARIOS = []


def scenario(name, summary):
    def register(fn):
        SCENARIOS.append((name, summary, fn))
        return fn
    return register


def count_env(name, default):
    raw = os.environ.get(name, str(default))
    try:
        n = int(raw.replace("_", ""))
    except ValueError:
        raise BenchError("%s=%r is not a number" % (name, raw)) from None
    if n < 1:
        raise BenchError("%s must be at least 1" % name)
    return n


def copy_load(ctx, conninfo, d, dev_path, names_path, label):
    """Loads devices and names from tab-separated files with psql's \\copy
    (COPY FROM STDIN, as the tool stages its rows) in one transaction, after
    a checkpoint; returns the wall time of psql."""
    ctx.psql(conninfo, "-c", "CHECKPOINT")
    script = os.path.join(d, "copy-%s.sql" % label)
    with open(script, "w") as f:
        f.write("\\copy devices (device_id, kid, serial, model, batch_id) FROM '%s'\n"
                "\\copy names (device_id, label, zone) FROM '%s'\n" % (dev_path, names_path))
    wall, _, _ = run_measured(["psql", "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", conninfo,
                               "-f", script], label)
    return wall


def mac_of(i):
    # locally administered unicast (first octet 0x0a), unique per i
    return "0a:%02x:%02x:%02x:%02x:%02x" % ((i >> 32) & 0xff, (i >> 24) & 0xff, (i >> 16) & 0xff,
                                             (i >> 8) & 0xff, i & 0xff)


@scenario("provision", "ddns-provision batch of BENCH_PROV_DEVICES new devices against a raw COPY "
          "of the same rows")
def provision_scenario(ctx):
    n = count_env("BENCH_PROV_DEVICES", 1000000)
    zone = "bench.example.test"
    d = os.path.join(ctx.tmp, "provision")
    os.makedirs(d)
    csv_path = os.path.join(d, "devices.csv")
    progress("provision: writing %d device lines to %s" % (n, csv_path))
    with open(csv_path, "w") as f:
        f.write("mac,serial,model\n")
        f.writelines("%s,SN%09d,IPC-G5\n" % (mac_of(i + 1), i + 1) for i in range(n))

    # 0. warm-up, not measured: the first bulk load into a new cluster also
    #    pays for creating its WAL segment files, which later loads reuse.
    #    A raw COPY of rows of the same shape, then the database is dropped.
    progress("provision: warm-up load (not measured)")
    warm_dev, warm_names = os.path.join(d, "warm-devices.tsv"), os.path.join(d, "warm-names.tsv")
    with open(warm_dev, "w") as dv, open(warm_names, "w") as nm:
        for i in range(n):
            dev = mac_of(i + 1).replace(":", "")
            dv.write("%s\tk1\tSN%09d\tIPC-G5\t1\n" % (dev, i + 1))
            nm.write("%s\tw%013d\t%s\n" % (dev, i + 1, zone))
    copy_load(ctx, ctx.fresh_database("bench_warm"), d, warm_dev, warm_names, "warm-up")
    ctx.stack.psql("DROP DATABASE bench_warm")
    os.unlink(warm_dev)
    os.unlink(warm_names)

    # 1. the tool: validate, check against the database, derive every
    #    secret, COPY + INSERT ... SELECT, write the flashing output (JSON
    #    lines, fsynced) and commit
    tool_db = ctx.fresh_database("bench_tool")
    ctx.psql(tool_db, "-c", "CHECKPOINT")
    out_path = os.path.join(d, "flash.jsonl")
    progress("provision: ddns-provision batch of %d devices" % n)
    cmd = [os.path.join(BIN, "ddns-provision"), "batch", "--csv", csv_path, "--zone", zone,
           "--operator", "bench", "--key-dir", ctx.stack.key_dir, "--db", tool_db,
           "--format", "jsonl", "--out", out_path]
    wall, rss, _ = run_measured(cmd, "ddns-provision")
    got = ctx.psql(tool_db, "-At", "-c", "SELECT (SELECT count(*) FROM devices), "
                   "(SELECT count(*) FROM names)").stdout.strip()
    if got != "%d|%d" % (n, n):
        raise BenchError("after the batch the database holds %s devices|names, not %d" % (got, n))

    # 2. the baseline: the rows the tool registered (taken from its output,
    #    names included), loaded with plain COPY into the same tables of an
    #    equally fresh database, in one transaction
    progress("provision: preparing the same rows for a raw COPY")
    dev_path, names_path = os.path.join(d, "devices.tsv"), os.path.join(d, "names.tsv")
    lines = 0
    with open(out_path) as src, open(dev_path, "w") as dv, open(names_path, "w") as nm:
        for line in src:
            c = json.loads(line)
            dv.write("%s\t%s\t%s\t%s\t1\n" % (c["device_id"], c["kid"], c["serial"], c["model"]))
            nm.write("%s\t%s\t%s\n" % (c["device_id"], c["fqdn"][:-len(zone) - 1], zone))
            lines += 1
    if lines != n:
        raise BenchError("the flashing output has %d lines, not %d" % (lines, n))
    copy_db = ctx.fresh_database("bench_copy")
    progress("provision: raw COPY of %d devices and names (psql \\copy, one transaction)" % n)
    base_wall = copy_load(ctx, copy_db, d, dev_path, names_path, "psql")
    got = ctx.psql(copy_db, "-At", "-c", "SELECT count(*) FROM names").stdout.strip()
    if got != str(n):
        raise BenchError("the raw COPY loaded %s names, not %d" % (got, n))

    per_million = 30.0
    time_limit = per_million * n / 1e6
    label = "%s devices" % ("{:,}".format(n))
    return [
        Figure("provision %s: wall time" % label, wall, "s", baseline=base_wall,
               target=Target("<=", time_limit, "<= %.3g s (30 s per 1M)" % time_limit)),
        Figure("provision %s: rate" % label, n / wall, "rows/s", baseline=n / base_wall,
               higher_is_better=True,
               target=Target(">=", 0.5, ">= 0.5 x raw COPY", on_ratio=True)),
        Figure("provision %s: peak RSS" % label, rss, "MB",
               target=Target("<", 200.0, "< 200 MB")),
    ]


# -- output --------------------------------------------------------------------

def fmt_num(x, unit=""):
    if x is None:
        return "-"
    if unit == "rows/s" or abs(x) >= 10000:
        return "{:,.0f}".format(x)
    if abs(x) >= 100:
        return "%.0f" % x
    return "%.2f" % x if abs(x) < 10 else "%.1f" % x


def print_table(figures):
    head = ["figure", "value", "unit", "baseline", "ratio", "target", "met?"]
    rows = []
    for f in figures:
        met = "-" if f.met is None else ("yes" if f.met else "MISSED")
        rows.append([f.name, fmt_num(f.value, f.unit), f.unit, fmt_num(f.baseline, f.unit),
                     "-" if f.ratio is None else "%.2f" % f.ratio,
                     f.target.text if f.target else "-", met])
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    right = {1, 3, 4}

    def line(r):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(r, widths))).rstrip()

    print(line(head))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))


def environment():
    pg = ""
    try:
        pg = subprocess.run([os.path.join(ddnsstack.pg_bindir(), "postgres"), "--version"],
                            capture_output=True, text=True).stdout.strip()
    except (OSError, RuntimeError):
        pass
    return {"host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "postgresql": pg, "bin": BIN}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    ap.add_argument("--only", action="append", metavar="NAME", help="run only this scenario")
    ap.add_argument("--results-dir", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    if args.list:
        for name, summary, _ in SCENARIOS:
            print("%-12s %s" % (name, summary))
        return 0
    chosen = [s for s in SCENARIOS if not args.only or s[0] in args.only]
    unknown = set(args.only or ()) - {s[0] for s in SCENARIOS}
    if unknown:
        print("bench: unknown scenario %s (see --list)" % ", ".join(sorted(unknown)),
              file=sys.stderr)
        return 2
    if not os.access(os.path.join(BIN, "ddns-provision"), os.X_OK):
        print("bench: %s/ddns-provision not found: run 'make bench' (it builds the release "
              "programs first)" % BIN, file=sys.stderr)
        return 2

    tmp = tempfile.mkdtemp(prefix="ddns-bench-", dir=os.environ.get("BENCH_TMPDIR"))
    os.chmod(tmp, 0o755)
    ctx = Context(tmp)
    figures, results, failed = [], [], []
    stamp = datetime.datetime.now(datetime.timezone.utc)
    try:
        for name, summary, fn in chosen:
            progress("scenario %s: %s" % (name, summary))
            t0 = time.monotonic()
            try:
                got = fn(ctx)
            except (BenchError, RuntimeError, OSError) as e:
                progress("scenario %s cannot run: %s" % (name, e))
                failed.append(name)
                results.append({"scenario": name, "error": str(e)})
                continue
            figures += got
            results.append({"scenario": name, "seconds": round(time.monotonic() - t0, 1),
                            "figures": [f.as_dict() for f in got]})
            progress("scenario %s done in %.1f s" % (name, time.monotonic() - t0))
    except KeyboardInterrupt:
        progress("interrupted")
        failed.append("interrupted")
    finally:
        ctx.stop()
        if args.keep:
            progress("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print()
    if figures:
        print_table(figures)
    missed = [f.name for f in figures if f.met is False]
    os.makedirs(args.results_dir, exist_ok=True)
    path = os.path.join(args.results_dir, stamp.strftime("%Y%m%dT%H%M%SZ") + ".json")
    with open(path, "w") as f:
        json.dump({"started": stamp.isoformat(timespec="seconds"),
                   "seconds": round(time.monotonic() - STARTED, 1),
                   "environment": environment(), "scenarios": results,
                   "missed": missed, "failed": failed}, f, indent=2)
        f.write("\n")
    print()
    if missed:
        print("MISSED %d target%s: %s" % (len(missed), "" if len(missed) == 1 else "s",
                                          "; ".join(missed)))
    elif figures:
        print("all %d targets met" % sum(1 for f in figures if f.met is not None))
    if failed:
        print("bench: could not run: %s" % ", ".join(failed), file=sys.stderr)
    shown = os.path.relpath(path, ROOT) if path.startswith(ROOT + os.sep) else path
    print("results written to %s" % shown)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
