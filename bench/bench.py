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
BENCH_PROV_HSM_DEVICES (devices of the provisioning scenario with the master
key in SoftHSM2; default BENCH_PROV_DEVICES; fewer are measured as a rate and
extrapolated to 1,000,000),
BENCH_TMPDIR (where the temporary directory goes; default the system's).
The gateway scenarios: BENCH_DEVICES (fleet provisioned into the gateway's
database; default 100000), BENCH_SECONDS (length of each timed measurement;
default 10), BENCH_CONNECTIONS (connections of ddns-load, clients of
pgbench; default 32), BENCH_DB_POOL and BENCH_DB_BATCH (the gateway's
[database] pool_size and batch_size; default 1 and 64),
BENCH_IDLE_CONNECTIONS (default 10000),
BENCH_PROP_RATE (changes per second of the propagation measurement; default
1000), BENCH_BACKLOG (outbox rows committed at once for the backlog
measurement; default 50000), BENCH_KNSUPDATE_MESSAGES (knsupdate messages of one change; default
2000, and a tenth as many of 100 changes), BENCH_RENUMBER_DEVICES (devices of
the renumbering wave, provisioned for it besides the fleet; default 100000)
and BENCH_RENUMBER_SECONDS (the wave's length; default 60). The admin scenario:
BENCH_ADMIN_DEVICES (fleet generated for it; default 1000000).
"""
import argparse
import datetime
import ipaddress
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
        self.prov_walls = {}     # devices -> wall time of the file-key batch of this run
        self._stack = None
        self.gateway = None
        self.on_stop = []

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
        for fn in self.on_stop:
            fn()
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
        f.write("\\copy devices (device_id, kid, generation, serial, model, batch_id) FROM '%s'\n"
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
            dv.write("%s\tk1\t1\tSN%09d\tIPC-G5\t1\n" % (dev, i + 1))
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
    ctx.prov_walls[n] = wall

    # 2. the baseline: the rows the tool registered (taken from its output,
    #    names included), loaded with plain COPY into the same tables of an
    #    equally fresh database, in one transaction
    progress("provision: preparing the same rows for a raw COPY")
    dev_path, names_path = os.path.join(d, "devices.tsv"), os.path.join(d, "names.tsv")
    lines = 0
    with open(out_path) as src, open(dev_path, "w") as dv, open(names_path, "w") as nm:
        for line in src:
            c = json.loads(line)
            # the key id and generation of the key reference (k1/1)
            dv.write("%s\t%s\t%d\t%s\t%s\t1\n" % (c["device_id"], c["kid"].split("/")[0],
                                                   c["generation"], c["serial"], c["model"]))
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


SOFTHSM_MODULES = ["/usr/lib/softhsm/libsofthsm2.so",
                   "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
                   "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"]


def softhsm_token(d):
    """A SoftHSM2 token of its own in directory d with master key b1
    generated in it by ddns-provision; returns (URI, environment)."""
    module = next((m for m in SOFTHSM_MODULES if os.path.exists(m)), None)
    if module is None or shutil.which("softhsm2-util") is None:
        raise BenchError("SoftHSM2 is not installed (Debian package softhsm2; "
                         "scripts/install-deps installs it)")
    os.makedirs(os.path.join(d, "tokens"), mode=0o700)
    conf, pin = os.path.join(d, "softhsm2.conf"), os.path.join(d, "token.pin")
    with open(conf, "w") as f:
        f.write("directories.tokendir = %s/tokens\nobjectstore.backend = file\n"
                "log.level = ERROR\n" % d)
    fd = os.open(pin, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("1234-5678\n")
    env = dict(os.environ, SOFTHSM2_CONF=conf)
    ddnsstack.run(["softhsm2-util", "--init-token", "--free", "--label", "bench",
                   "--pin", "1234-5678", "--so-pin", "8765-4321"], env=env)
    uri = "pkcs11:token=bench?module-path=%s&pin-source=%s" % (module, pin)
    ddnsstack.run([os.path.join(BIN, "ddns-provision"), "keygen", "--pkcs11", uri, "--kid",
                   "b1"], env=env)
    return uri, env


@scenario("provision-hsm", "the provisioning batch with its master key in a PKCS#11 token "
          "(SoftHSM2) against the same batch with a key file")
def provision_hsm_scenario(ctx):
    n_file = count_env("BENCH_PROV_DEVICES", 1000000)
    n = count_env("BENCH_PROV_HSM_DEVICES", n_file)
    zone = "bench.example.test"
    d = os.path.join(ctx.tmp, "provision-hsm")
    os.makedirs(d)
    uri, env = softhsm_token(os.path.join(d, "softhsm"))
    csv_path = os.path.join(d, "devices.csv")
    progress("provision-hsm: writing %d device lines to %s" % (n, csv_path))
    with open(csv_path, "w") as f:
        f.write("mac,serial,model\n")
        f.writelines("%s,SN%09d,IPC-G5\n" % (mac_of(i + 1), i + 1) for i in range(n))

    def batch(label, keys):
        db = ctx.fresh_database("bench_" + label)
        ctx.psql(db, "-c", "CHECKPOINT")
        progress("provision-hsm: ddns-provision batch of %d devices, %s" % (n, label))
        cmd = [os.path.join(BIN, "ddns-provision"), "batch", "--csv", csv_path, "--zone", zone,
               "--operator", "bench", "--db", db, "--format", "jsonl",
               "--out", os.path.join(d, label + ".jsonl")] + keys
        wall, rss, _ = run_measured(cmd, "ddns-provision", env=env)
        got = ctx.psql(db, "-At", "-c", "SELECT count(*) FROM devices").stdout.strip()
        if got != str(n):
            raise BenchError("after the %s batch the database holds %s devices, not %d"
                             % (label, got, n))
        ctx.stack.psql("DROP DATABASE bench_" + label)
        return wall, rss

    # 1. the baseline: the same batch under a key file, measured by the
    #    provision scenario of this run when it had as many devices
    base = ctx.prov_walls.get(n)
    if base is None:
        base, _ = batch("file", ["--key-dir", ctx.stack.key_dir])
    # 2. every secret derived by the token (C_Sign, CKM_SHA256_HMAC)
    wall, rss = batch("softhsm", ["--pkcs11", uri])
    label = "provision %s devices, master key in SoftHSM2" % "{:,}".format(n)
    figures = [
        Figure(label + ": wall time", wall, "s", baseline=base,
               note="baseline: the same batch with a key file"),
        Figure(label + ": rate", n / wall, "rows/s", baseline=n / base, higher_is_better=True),
        Figure(label + ": peak RSS", rss, "MB", target=Target("<", 200.0, "< 200 MB")),
    ]
    if n != 1000000:
        figures.append(Figure("provision 1,000,000 devices, master key in SoftHSM2: wall "
                              "time extrapolated from %s" % "{:,}".format(n),
                              wall * 1e6 / n, "s", baseline=base * 1e6 / n,
                              note="measured %d devices at %.0f rows/s" % (n, n / wall)))
    return figures


# -- the gateway scenarios -----------------------------------------------------
#
# They share one stack (the run's PostgreSQL, Knot DNS on loopback, the
# gateway) with a fleet of BENCH_DEVICES devices provisioned into its
# database, and one ddns-hello TLS server as the baseline. See bench/README.md.

def bench_seconds():
    return count_env("BENCH_SECONDS", 10)


def proc_cpu_s(pid):
    """User + system CPU seconds of a running process (/proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3): utime and stime are fields 14, 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_tree_cpu_s(pid):
    """User + system CPU seconds of process pid and of all its live
    descendants (found by their PPid in /proc), each with its exited and
    waited-for children's (cutime, cstime)."""
    stats = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stats[int(d)] = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
    if pid not in stats:
        raise BenchError("process %d is gone" % pid)
    children = {}
    for p, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(p)
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += sum(int(x) for x in stats[p][11:15])
        todo += children.get(p, [])
    return total / os.sysconf("SC_CLK_TCK")


def pg_cpu_s(stack):
    """CPU seconds of the stack's PostgreSQL so far: the postmaster's, its
    live children's and its exited children's."""
    with open(os.path.join(stack.pg_data, "postmaster.pid")) as f:
        return proc_tree_cpu_s(int(f.readline()))


def proc_status(pid, key):
    """A kB value of /proc/PID/status (VmRSS, ...)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise BenchError("no %s in /proc/%d/status" % (key, pid))


def proc_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class GatewayBench:
    """The stack of the gateway scenarios, set up on first use."""

    def __init__(self, ctx):
        self.ctx = ctx
        s = self.stack = ctx.stack
        self.n = count_env("BENCH_DEVICES", 100000)
        self.conns = count_env("BENCH_CONNECTIONS", 32)
        self.d = os.path.join(ctx.tmp, "gateway")
        os.makedirs(self.d)
        self.nochg_rate = None      # scenario 1's gateway rate, for 4 and 7
        self.warmed = False
        self.polled = None          # the workload the nochg devices last polled with
        # descriptors for 10,000 idle connections and more: the gateway
        # (a child) inherits the limit
        progress("gateway: file descriptor limit %d" % ddnsstack.raise_fd_limit())
        # one source (127.0.0.1) opens every connection, idle ones are held
        # for minutes: no connection limits, long time-outs
        s.gateway_extra = "request_timeout = 300\n"
        # one connection per worker: PostgreSQL shares this machine's cores
        # with the gateway and the load generator, and fewer statements in
        # flight make larger batches (docs/PERFORMANCE.md)
        s.pool_size = count_env("BENCH_DB_POOL", 1)
        s.database_extra = "batch_size = %d\n" % count_env("BENCH_DB_BATCH", 64)
        # "last seen" of the polls that write nothing: written by the gateway
        # in batches of the whole fleet every [database] seen_interval. A
        # batch falling into a 10 s measurement or not would swing its
        # PostgreSQL CPU by the whole fleet's rows; the batches are held
        # back here and their cost measured on its own (seen_write_ms) and
        # added to the figures explicitly
        s.database_extra += "seen_interval = 3600\n"
        self.seen_ms = None
        s.LIMIT_DEFAULTS = {"auth_fail_limit": "0", "header_timeout": "300",
                            "max_connections": "0", "max_connections_per_source": "0",
                            "device_rate": "0"}
        s.start_dns()
        s.make_tls()
        s.write_gateway_config()
        csv_path = os.path.join(self.d, "fleet.csv")
        with open(csv_path, "w") as f:
            f.write("mac,serial,model\n")
            f.writelines("%s,SN%09d,IPC-G5\n" % (mac_of(i + 1), i + 1) for i in range(self.n))
        self.fleet = os.path.join(self.d, "fleet.jsonl")
        progress("gateway: provisioning %d devices into the gateway's database" % self.n)
        wall, _, _ = run_measured([os.path.join(BIN, "ddns-provision"), "batch", "--csv", csv_path,
                                   "--zone", ddnsstack.ZONE, "--operator", "bench", "--key-dir",
                                   s.key_dir, "--db", s.conninfo, "--format", "jsonl",
                                   "--out", self.fleet], "ddns-provision")
        progress("gateway: %d devices provisioned in %.1f s" % (self.n, wall))
        with open(self.fleet) as f:
            lines = f.readlines()
        # the nochg workloads use the first half of the fleet, the change
        # workloads the other half: a device's fixed address stays recorded
        # for nochg. A device sends at most one update a second (the
        # gateway wants a newer ts each time), so a workload's rate is at
        # most its number of devices per second: 50,000 a second with the
        # default fleet
        k = max(1, len(lines) // 2)
        self.nochg_devices = os.path.join(self.d, "nochg.jsonl")
        self.change_devices = os.path.join(self.d, "change.jsonl")
        with open(self.nochg_devices, "w") as f:
            f.writelines(lines[:k])
        with open(self.change_devices, "w") as f:
            f.writelines(lines[k:] or lines)
        self.n_nochg, self.n_change = k, len(lines[k:] or lines)
        s.start_gateway()
        self.gw_pid = s.procs["gateway"].pid
        # the baseline server: the gateway's HTTP and TLS stack, nothing else
        self.hello = subprocess.Popen(
            [os.path.join(BIN, "ddns-hello"), "--listen", "127.0.0.1:0", "--tls",
             os.path.join(s.dir, "tls", "server.crt"), os.path.join(s.dir, "tls", "server.key"),
             "--timeout", "300"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        line = self.hello.stdout.readline()
        if "listening on" not in line:
            raise BenchError("ddns-hello did not start: %r" % line)
        self.hello_addr = line.split("listening on ")[1].split()[0]
        progress("gateway: ddns-hello %s" % line.strip())

    def stop(self):
        if self.hello.poll() is None:
            self.hello.terminate()
            try:
                self.hello.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.hello.kill()
                self.hello.wait()

    def load(self, label, *args, server=None, devices=None, workload="nochg", quiet=False):
        """Runs ddns-load against the gateway (or server); returns its summary.
        Its progress lines are echoed."""
        cmd = [os.path.join(BIN, "ddns-load"), "--server",
               server or "127.0.0.1:%d" % self.stack.https_port, "--ca", self.stack.ca_cert,
               "--workload", workload]
        if workload != "hello" and "idle" not in args:
            cmd += ["--devices", devices or self.nochg_devices]
        if "idle" in args:
            cmd = cmd[:cmd.index("--workload")]
        cmd += [str(a) for a in args]
        if quiet:
            cmd.append("-q")
        progress("%s: %s" % (label, " ".join(os.path.basename(c) for c in cmd[:1]) + " " +
                             " ".join(cmd[1:]).replace(self.stack.dir, "...")))
        batches_before = self.batch_counters() if server is None else None
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        errlines = []

        def pump():
            for line in p.stderr:
                errlines.append(line.rstrip("\n"))
                progress("  ddns-load| %s" % line.rstrip())

        t = threading.Thread(target=pump, daemon=True)
        t.start()
        out = p.stdout.read()
        p.wait()
        t.join()
        if p.returncode != 0:
            raise BenchError("ddns-load (%s) exited with %d: %s" % (label, p.returncode,
                                                                  " / ".join(errlines[-5:])))
        try:
            summary = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise BenchError("ddns-load (%s) printed no summary" % label) from None
        lat = summary.get("latency_ms") or {}
        progress("%s: %s ok of %s requests, %.0f/s, p50 %s ms, p99 %s ms, errors %s, "
                 "device_waits %s" % (label, summary.get("ok"), summary.get("requests"),
                                      summary.get("rate_per_s") or 0, lat.get("p50"),
                                      lat.get("p99"), summary["errors"]["total"],
                                      summary.get("device_waits")))
        if batches_before is not None:
            b0, r0, h0, q0 = batches_before
            b1, r1, h1, q1 = self.batch_counters()
            if b1 > b0:
                summary["db_batch_mean"] = (r1 - r0) / (b1 - b0)
                progress("%s: %d database statements, %.1f requests each on average"
                         % (label, b1 - b0, summary["db_batch_mean"]))
            if h1 > h0:
                summary["quiet_hits"] = h1 - h0
                progress("%s: %d answers from memory, %d barriers (%.1f answers each)"
                         % (label, h1 - h0, q1 - q0, (h1 - h0) / max(1, q1 - q0)))
        return summary

    def batch_counters(self):
        m = ddnsstack.admin_metrics(self.stack.admin_port)
        return (m.get("ddns_db_batches_total", 0), m.get("ddns_db_batched_requests_total", 0),
                m.get("ddns_quiet_hits_total", 0), m.get("ddns_quiet_barriers_total", 0))

    def nochg(self, label, *args):
        if not self.warmed:
            self.warm_up()
        self.settle("nochg")
        return self.load(label, "--mode", "keepalive", *args)

    def settle(self, workload):
        """Brings the nochg devices back to the steady state of workload
        (nochg or dyndns2) after they polled with the other, unmeasured: a
        device's first request of the other protocol is written (another
        User-Agent, PROTOCOL.md section 5.1), then VACUUM and CHECKPOINT as
        in the warm-up, and its next one is the database's quiet answer
        that the gateway keeps; a fleet does not switch protocols between
        two polls."""
        if self.polled == workload:
            return
        time.sleep(1.1)     # a device's timestamp must be newer
        self.load("settle: first %s poll of every device (written)" % workload, "--mode",
                  "keepalive", "--connections", self.conns, "--count", self.n_nochg,
                  workload=workload)
        self.after_writes()
        self.quiet_round("settle", workload)

    def warm_up(self):
        """Brings the nochg devices to the steady state of a polling fleet,
        unmeasured: a first update records each device's address (good),
        the first nochg after it is recorded too (it sets the device's
        last answer back to nochg, PROTOCOL.md section 5.1); every later
        poll is answered without a write. Then the row versions those
        writes left are vacuumed and the dirty pages written, so that the
        measured runs do not pay for the warm-up; and every device polls
        once more, the database's quiet answer that the gateway keeps in
        memory for the next polls (docs/ARCHITECTURE.md, "The quiet
        cache")."""
        self.warmed = True
        self.load("warm-up: first update and first nochg of every nochg device",
                  "--mode", "keepalive", "--warmup", "--connections", self.conns,
                  "--count", self.n_nochg)
        self.after_writes()
        self.quiet_round("warm-up", "nochg")

    def after_writes(self):
        """VACUUM and CHECKPOINT after an unmeasured round that wrote every
        device's row: the measured runs do not pay for it."""
        self.psql("VACUUM (ANALYZE) devices, names, ddns_changes")
        self.psql("CHECKPOINT")

    def quiet_round(self, label, workload):
        """One poll of every nochg device with workload that writes nothing:
        the database answers it and the gateway keeps the answer
        ([database] quiet_cache), as it holds those of a fleet that polls
        every few minutes. A second after the last round: a device's
        timestamp must be newer."""
        time.sleep(1.1)
        self.load("%s: first quiet %s poll of every device" % (label, workload), "--mode",
                  "keepalive", "--connections", self.conns, "--count", self.n_nochg,
                  workload=workload)
        self.polled = workload

    def nochg_max(self):
        """Scenario 1's gateway rate (measured now if scenario 1 did not run)."""
        if self.nochg_rate is None:
            s = self.nochg("nochg keepalive", "--connections", self.conns,
                           "--duration", bench_seconds())
            self.nochg_rate = s["rate_per_s"]
        return self.nochg_rate

    def psql(self, sql):
        return self.stack.psql(sql)

    def second_gateway(self, name, **kw):
        """Starts gateway-NAME on the same database, keys and zone, with the
        workers, pool and time-outs of the gateway under test and
        gateway_config_text's kw; returns its port (stop_process to stop)."""
        s = self.stack
        port = ddnsstack.free_port()
        conf = os.path.join(self.d, "gateway-%s.conf" % name)
        text = s.gateway_config_text(port, **kw)
        text = text.replace("[gateway]\n", "[gateway]\n" + "workers = 2\n" + s.gateway_extra, 1)
        with open(conf, "w") as f:
            f.write(text)
        s._launch_gateway("gateway-" + name, conf, os.path.join(self.d, "gateway-%s.log" % name),
                          port)
        return port


def gateway_bench(ctx):
    if getattr(ctx, "gateway", None) is None:
        ctx.gateway = GatewayBench(ctx)
        ctx.on_stop.append(ctx.gateway.stop)
    return ctx.gateway


def need_ok(summary, what, token=None):
    n = summary["results"].get(token, 0) if token else summary["ok"]
    if n < 1:
        raise BenchError("%s: no %s answer" % (what, token or "valid"))
    return n


@scenario("gw-nochg", "gateway nochg updates over kept-alive HTTPS connections against "
          "ddns-hello's TLS keep-alive rate")
def gw_nochg_scenario(ctx):
    g = gateway_bench(ctx)
    sec = bench_seconds()
    hello = g.load("ddns-hello keepalive", "--mode", "keepalive", "--connections", g.conns,
                   "--duration", sec, server=g.hello_addr, workload="hello")
    need_ok(hello, "ddns-hello")
    g.warm_up()
    pg0 = pg_cpu_s(g.stack)
    gw = g.nochg("gateway nochg keepalive", "--connections", g.conns, "--duration", sec)
    n = need_ok(gw, "gateway nochg", "nochg")
    read_ms = (pg_cpu_s(g.stack) - pg0) * 1000 / n
    # with the default [database] seen_interval of 60 s, a device polling
    # this often has its last seen written once per 60 s of its polls
    per_poll = min(1.0, g.n_nochg / (gw["rate_per_s"] * 60.0))
    g.nochg_pg_cpu_ms = read_ms + per_poll * seen_write_ms(g)
    progress("gateway nochg: PostgreSQL CPU %.3f ms per nochg (%.3f ms answering, %.3f ms "
             "for its share of the last seen writes, one per %.0f polls)"
             % (g.nochg_pg_cpu_ms, read_ms, per_poll * seen_write_ms(g), 1 / per_poll))
    g.nochg_rate = gw["rate_per_s"]
    return [Figure("nochg keepalive HTTPS, %d connections: rate" % g.conns, gw["rate_per_s"],
                   "req/s", baseline=hello["rate_per_s"], higher_is_better=True,
                   target=Target(">=", 0.6, ">= 0.60 x ddns-hello TLS", on_ratio=True))]


@scenario("gw-keyproc", "gateway nochg rate with the master keys in the key process against the "
          "same gateway holding them itself ([keys] separate_process = no)")
def gw_keyproc_scenario(ctx):
    g = gateway_bench(ctx)
    s = g.stack
    port = g.second_gateway("inline-keys", keys_extra="separate_process = no\n")
    sec = bench_seconds()
    sep, inline = [], []
    try:
        # alternating runs, the better of two each: the machine's other load
        # moves both alike
        for _ in range(2):
            sep.append(g.nochg("nochg keepalive, key process", "--connections", g.conns,
                               "--duration", sec)["rate_per_s"])
            inline.append(g.load("nochg keepalive, keys in the gateway", "--mode", "keepalive",
                                 "--connections", g.conns, "--duration", sec,
                                 server="127.0.0.1:%d" % port)["rate_per_s"])
    finally:
        s.stop_process("gateway-inline-keys")
    return [Figure("nochg keepalive, %d connections, master keys in the key process: rate"
                   % g.conns, max(sep), "req/s", baseline=max(inline), higher_is_better=True,
                   target=Target(">=", 0.9, ">= 0.90 x keys in the gateway's process",
                                 on_ratio=True))]


@scenario("gw-dyndns2", "gateway dyndns2 /nic/update (nochg) over kept-alive connections against "
          "the gw-nochg rate")
def gw_dyndns2_scenario(ctx):
    g = gateway_bench(ctx)
    base = g.nochg_max()
    g.settle("dyndns2")
    s = g.load("gateway dyndns2 keepalive", "--mode", "keepalive", "--connections", g.conns,
               "--duration", bench_seconds(), workload="dyndns2")
    need_ok(s, "gateway dyndns2")
    return [Figure("dyndns2 /nic/update keepalive, %d connections: rate" % g.conns,
                   s["rate_per_s"], "req/s", baseline=base, higher_is_better=True,
                   target=Target(">=", 0.9, ">= 0.90 x signed nochg", on_ratio=True))]


@scenario("gw-latency", "gateway nochg keep-alive latency p99 at half the gw-nochg rate, open "
          "loop, against ddns-hello's p99 at the same rate")
def gw_latency_scenario(ctx):
    g = gateway_bench(ctx)
    rate = max(1, int(g.nochg_max() / 2))
    g.settle("nochg")
    s = g.load("gateway nochg at %d/s" % rate, "--mode", "keepalive", "--connections", g.conns,
               "--rate", rate, "--duration", bench_seconds())
    need_ok(s, "gateway nochg at a fixed rate", "nochg")
    lat = s["latency_ms"]
    # the bare server at the same rate: what the load generator, TLS and the
    # machine alone add to a request
    h = g.load("ddns-hello at %d/s" % rate, "--mode", "keepalive", "--connections", g.conns,
               "--rate", rate, "--duration", bench_seconds(), server=g.hello_addr,
               workload="hello")
    need_ok(h, "ddns-hello at a fixed rate", "hello")
    hlat = h["latency_ms"]
    note = "baseline: ddns-hello at the same rate"
    return [Figure("nochg keepalive at %d/s (half the maximum): latency p50" % rate, lat["p50"],
                   "ms", baseline=hlat["p50"], note=note),
            Figure("nochg keepalive at %d/s (half the maximum): latency p99" % rate, lat["p99"],
                   "ms", baseline=hlat["p99"], note=note,
                   target=Target(">=", 1 / 2.5, "<= 2.5 x ddns-hello p99", on_ratio=True))]


@scenario("gw-abuse", "p99 of fleet nochg updates while one device's signed request is replayed "
          "from 64 source addresses at full speed, against the same load without the attack "
          "(the shipped [limits]: device budget and failed-authentication limiter on)")
def gw_abuse_scenario(ctx):
    import attack
    g = gateway_bench(ctx)
    s = g.stack
    # the shipped defaults of the budget and the limiter (the gateway under
    # test has them off: its scenarios send each device's request often)
    port = g.second_gateway("abuse", extra="[limits]\nauth_fail_limit = 10\n"
                                           "device_rate = 6\ndevice_burst = 20\n")
    server = "127.0.0.1:%d" % port
    with open(g.change_devices) as f:
        victim = json.loads(f.readlines()[-1])
    raw = attack.signed_update(victim, b"ipv4=192.0.2.200")
    status, body = s.https_request(raw, port=port)
    if status != 200:
        raise BenchError("the replayed request was not accepted first: %d %r" % (status, body))
    req = os.path.join(g.d, "replayed.http")
    with open(req, "wb") as f:
        f.write(raw)
    sec = bench_seconds()
    rate = count_env("BENCH_ABUSE_RATE", 1000)
    row = lambda: s.psql("SELECT fail_count, last_ts FROM devices WHERE device_id = '%s'"
                         % victim["device_id"])
    before = row()
    try:
        quiet = g.load("fleet nochg at %d/s, no attack" % rate, "--mode", "keepalive",
                       "--connections", g.conns, "--rate", rate, "--duration", sec,
                       server=server)
        need_ok(quiet, "fleet nochg without the attack")
        attacker = subprocess.Popen(
            [os.path.join(BIN, "ddns-load"), "--server", server, "--ca", s.ca_cert,
             "--workload", "replay", "--request", req, "--sources", "64",
             "--connections", "64", "--duration", str(float(sec) + 30), "-q"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(2)
            loud = g.load("fleet nochg at %d/s, one credential replayed from 64 sources" % rate,
                          "--mode", "keepalive", "--connections", g.conns, "--rate", rate,
                          "--duration", sec, server=server)
        finally:
            attacker.terminate()
            out, _ = attacker.communicate(timeout=60)
        hit = json.loads(out.strip().splitlines()[-1])
        need_ok(loud, "fleet nochg under the attack")
    finally:
        s.stop_process("gateway-abuse")
    answered = {k: v for k, v in hit["results"].items() if v}
    progress("attack: %d answers (%.0f/s): %s" % (sum(answered.values()), hit["rate_per_s"],
                                                  answered))
    if set(answered) - {"replay", "ratelimit"} or loud["results"].get("911"):
        raise BenchError("the attack got %s; the fleet %s" % (answered, loud["results"]))
    if row() != before:
        raise BenchError("the database saw the attacker: %s then %s" % (before, row()))
    note = ("baseline: the same load without the attack; the attacker got %.0f answers/s, "
            "none from the database" % hit["rate_per_s"])
    return [Figure("fleet nochg at %d/s under a 64-source replay: latency p99" % rate,
                   loud["latency_ms"]["p99"], "ms", baseline=quiet["latency_ms"]["p99"],
                   target=Target(">=", 0.5, "<= 2 x without the attack", on_ratio=True),
                   note=note)]


@scenario("gw-new", "gateway CPU per update with a new TLS connection per update (full and "
          "resumed handshakes) against ddns-hello's CPU per new connection")
def gw_new_scenario(ctx):
    g = gateway_bench(ctx)
    g.nochg_max()   # the devices' addresses are recorded: every answer is nochg
    sec = bench_seconds()
    figures = []
    for resume in (False, True):
        extra = ["--resume"] if resume else []
        what = "resumed" if resume else "full"
        cpu0 = proc_cpu_s(g.hello.pid)
        h = g.load("ddns-hello new connections (%s handshakes)" % what, "--mode", "new",
                   "--connections", g.conns, "--duration", sec, *extra, server=g.hello_addr,
                   workload="hello")
        hello_cpu = (proc_cpu_s(g.hello.pid) - cpu0) / need_ok(h, "ddns-hello new")
        cpu0 = proc_cpu_s(g.gw_pid)
        s = g.load("gateway nochg new connections (%s handshakes)" % what, "--mode", "new",
                   "--connections", g.conns, "--duration", sec, *extra)
        gw_cpu = (proc_cpu_s(g.gw_pid) - cpu0) / need_ok(s, "gateway nochg new", "nochg")
        progress("new connections (%s): gateway %.3f ms CPU per update, ddns-hello %.3f ms per "
                 "connection; resumed %d/%d" % (what, gw_cpu * 1e3, hello_cpu * 1e3,
                                               s.get("handshakes_resumed", 0),
                                               s.get("connections_opened", 0)))
        figures += [
            Figure("new TLS connection per update (%s handshake): rate" % what, s["rate_per_s"],
                   "req/s", baseline=h["rate_per_s"], higher_is_better=True),
            Figure("new TLS connection per update (%s handshake): server CPU" % what,
                   gw_cpu * 1e3, "ms/req", baseline=hello_cpu * 1e3,
                   target=Target(">=", 1 / 1.3, "<= 1.3 x ddns-hello", on_ratio=True))]
    return figures


def seen_write_ms(g):
    """PostgreSQL CPU ms per device of writing "last seen" later, as the
    gateway does (ddns_record_seen(), 1,000 devices a statement, sorted),
    over the nochg devices; measured once."""
    if g.seen_ms is None:
        with open(g.nochg_devices) as f:
            ids = sorted(json.loads(line)["device_id"] for line in f)
        script = os.path.join(g.d, "seen.sql")
        with open(script, "w") as f:
            for i in range(0, len(ids), 1000):
                chunk = ids[i:i + 1000]
                f.write("SELECT ddns_record_seen('{%s}', array_fill(extract(epoch FROM "
                        "clock_timestamp()), ARRAY[%d]), array_fill('198.18.0.1'::inet, "
                        "ARRAY[%d]));\n" % (",".join(chunk), len(chunk), len(chunk)))
        pg0 = pg_cpu_s(g.stack)
        ddnsstack.run(["psql", "-X", "-q", "-o", "/dev/null", "-v", "ON_ERROR_STOP=1",
                       g.stack.conninfo, "-f", script])
        g.seen_ms = (pg_cpu_s(g.stack) - pg0) * 1e3 / len(ids)
        progress("last seen written later: %d devices, PostgreSQL CPU %.4f ms per device"
                 % (len(ids), g.seen_ms))
    return g.seen_ms


def new_resumed_cpu(g, label, workload, devices, token, seconds):
    """Runs ddns-load --mode new --resume against the gateway; returns (ms of
    CPU of the gateway's process tree, ms of PostgreSQL's CPU) per answer
    with result token, the DNS publishing of the changes included."""
    wait_outbox_empty(g)
    gw0, pg0 = proc_tree_cpu_s(g.gw_pid), pg_cpu_s(g.stack)
    s = g.load(label, "--mode", "new", "--resume", "--connections", g.conns, "--duration",
               seconds, devices=devices, workload=workload)
    n = need_ok(s, label, token)
    wait_outbox_empty(g)
    gw_ms = (proc_tree_cpu_s(g.gw_pid) - gw0) * 1e3 / n
    pg_ms = (pg_cpu_s(g.stack) - pg0) * 1e3 / n
    progress("%s: %d %s, CPU per answer: gateway process tree %.3f ms, PostgreSQL %.3f ms; "
             "resumed %d/%d" % (label, n, token, gw_ms, pg_ms, s.get("handshakes_resumed", 0),
                                s.get("connections_opened", 0)))
    return gw_ms, pg_ms


POLL_INTERVAL_S = 600       # the fleet's poll: every 10 minutes
POLL_CHANGE_SHARE = 0.01    # of the polls, the share that changes an address


@scenario("gw-fleet", "fleet capacity: devices per core polling every 10 minutes over a new "
          "resumed TLS connection, 99 % nochg (gateway process tree + PostgreSQL CPU), "
          "against the same for ddns-hello")
def gw_fleet_scenario(ctx):
    g = gateway_bench(ctx)
    g.nochg_max()   # the devices' addresses are recorded: every answer is nochg
    sec = bench_seconds()
    cpu0 = proc_cpu_s(g.hello.pid)
    h = g.load("ddns-hello new connections (resumed handshakes)", "--mode", "new", "--resume",
               "--connections", g.conns, "--duration", sec, server=g.hello_addr,
               workload="hello")
    hello_ms = (proc_cpu_s(g.hello.pid) - cpu0) * 1e3 / need_ok(h, "ddns-hello new")
    nochg = new_resumed_cpu(g, "gateway nochg, new resumed connections", "nochg",
                            g.nochg_devices, "nochg", sec)
    change = new_resumed_cpu(g, "gateway change, new resumed connections", "change",
                             g.change_devices, "good", max(1.0, sec / 2))
    gw_ms, pg_ms = ((1 - POLL_CHANGE_SHARE) * a + POLL_CHANGE_SHARE * b
                    for a, b in zip(nochg, change))
    # a device polling every 10 minutes is past [database] seen_interval
    # (60 s) at every poll: each nochg poll has its last seen written later
    pg_ms += (1 - POLL_CHANGE_SHARE) * seen_write_ms(g)
    per_core = POLL_INTERVAL_S * 1e3 / (gw_ms + pg_ms)
    hello_per_core = POLL_INTERVAL_S * 1e3 / hello_ms
    progress("fleet: CPU per poll (99 %% nochg): gateway process tree %.3f ms, PostgreSQL "
             "%.3f ms; %.0f devices per core (ddns-hello %.3f ms per connection: %.0f)"
             % (gw_ms, pg_ms, per_core, hello_ms, hello_per_core))
    what = "poll every 10 min, new resumed TLS connection, 99 % nochg"
    return [
        Figure("fleet capacity (%s): devices per core" % what, per_core, "devices",
               baseline=hello_per_core, higher_is_better=True,
               target=Target(">=", 0.8, ">= 0.80 x ddns-hello", on_ratio=True),
               note="CPU of the gateway's process and its children (key process, DNS "
                    "publisher) plus PostgreSQL's, its last seen writes included; "
                    "baseline: ddns-hello's process per resumed connection"),
        Figure("fleet poll (%s): gateway process tree CPU" % what, gw_ms, "ms/poll"),
        Figure("fleet poll (%s): PostgreSQL CPU" % what, pg_ms, "ms/poll"),
        Figure("last seen written later (ddns_record_seen, 1,000 devices a statement): "
               "PostgreSQL CPU", seen_write_ms(g), "ms/device"),
        Figure("change over a new resumed connection: gateway process tree CPU", change[0],
               "ms/req"),
        Figure("change over a new resumed connection: PostgreSQL CPU", change[1], "ms/req"),
    ]


def idle_rss(g, label, pid, n, hold, server=None):
    """Holds n idle TLS connections to the server of process pid; returns
    (connections held, RSS before, RSS with them) in kB."""
    rss0, fds0 = proc_status(pid, "VmRSS"), proc_fds(pid)
    progress("idle: %s RSS %d kB with %d descriptors before" % (label, rss0, fds0))
    samples = []
    stop = threading.Event()

    def sample():
        while not stop.wait(0.5):
            try:
                samples.append((proc_fds(pid), proc_status(pid, "VmRSS")))
            except (OSError, BenchError):
                pass

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        s = g.load("idle TLS connections to %s" % label, "--mode", "idle", "--connections", n,
                   "--duration", hold, server=server,
                   workload="hello" if server is not None else "nochg")
    finally:
        stop.set()
        t.join()
    if not samples:
        raise BenchError("idle: no sample of the memory of %s" % label)
    # the sample with the most connections open (the latest of them)
    fds, rss = max(samples, key=lambda x: (x[0], samples.index(x)))
    conns = fds - fds0
    progress("idle: %d connections held (ddns-load: open_max %d, open_end %d, closed by %s "
             "%d); %s RSS %d kB" % (conns, s["open_max"], s["open_end"], label,
                                    s["closed_by_peer"], label, rss))
    if conns < 1:
        raise BenchError("idle: %s held no connection" % label)
    return conns, rss0, rss


@scenario("gw-idle", "gateway memory per idle TLS connection (BENCH_IDLE_CONNECTIONS held open) "
          "against ddns-hello's")
def gw_idle_scenario(ctx):
    g = gateway_bench(ctx)
    n = count_env("BENCH_IDLE_CONNECTIONS", 10000)
    hold = min(10, bench_seconds())
    # the bare server first: the same libevent, evhttp and OpenSSL objects
    # per connection, and nothing of the gateway's own
    hconns, hrss0, hrss = idle_rss(g, "ddns-hello", g.hello.pid, n, hold, server=g.hello_addr)
    conns, rss0, rss = idle_rss(g, "the gateway", g.gw_pid, n, hold)
    per = (rss - rss0) / conns
    return [Figure("%s idle TLS connections: gateway RSS" % "{:,}".format(conns), rss / 1024.0,
                   "MB", baseline=rss0 / 1024.0, note="baseline: the idle gateway"),
            Figure("%s idle TLS connections: RSS per connection" % "{:,}".format(conns), per,
                   "KB", baseline=(hrss - hrss0) / hconns,
                   target=Target(">=", 1 / 1.05, "<= 1.05 x ddns-hello", on_ratio=True),
                   note="baseline: ddns-hello's RSS per idle connection")]


def pgbench_tps(g, clients, seconds, cpu=False):
    """Single-row UPDATE transactions per second by pgbench on the same
    server, in a database of its own; with cpu, also PostgreSQL's CPU
    milliseconds per transaction during the run (not its set-up)."""
    s = g.stack
    s.psql("DROP DATABASE IF EXISTS bench_pgbench")
    s.psql("CREATE DATABASE bench_pgbench")
    pgbench = os.path.join(ddnsstack.pg_bindir(), "pgbench")
    conn = ["-h", "127.0.0.1", "-p", str(s.pg_port), "-U", "ddns"]
    ddnsstack.run([pgbench, "-i", "-q", "-s", "1"] + conn + ["bench_pgbench"])
    script = os.path.join(g.d, "update.sql")
    with open(script, "w") as f:
        f.write("\\set id random(1, 100000)\n"
                "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :id;\n")
    progress("pgbench: %d clients, %d s of single-row UPDATEs" % (clients, seconds))
    pg0 = pg_cpu_s(s)
    out = ddnsstack.run([pgbench, "-n", "-f", script, "-c", str(clients), "-j", "1",
                         "-T", str(seconds)] + conn + ["bench_pgbench"]).stdout
    pg_s = pg_cpu_s(s) - pg0
    tps = txs = None
    for line in out.splitlines():
        if line.startswith("tps ="):
            tps = float(line.split()[2])
        if line.startswith("number of transactions actually processed:"):
            txs = int(line.split(":")[1].split("/")[0])
    if tps is None or txs is None:
        raise BenchError("pgbench printed no tps: %s" % out[-300:])
    progress("pgbench: %.0f tps" % tps)
    s.psql("DROP DATABASE bench_pgbench")
    return (tps, pg_s * 1000 / txs) if cpu else tps


def wait_outbox_empty(g, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if g.psql("SELECT count(*) FROM dns_outbox") == [["0"]]:
            return time.monotonic()
        time.sleep(0.05)
    raise BenchError("the DNS outbox was not empty after %d s" % timeout)


@scenario("gw-change", "gateway change updates (good, durable) against pgbench single-row "
          "UPDATEs on the same PostgreSQL")
def gw_change_scenario(ctx):
    g = gateway_bench(ctx)
    sec = bench_seconds()
    wait_outbox_empty(g)
    # neither pays for the dirty pages of earlier bulk loads
    g.psql("CHECKPOINT")
    s = g.load("gateway change keepalive", "--mode", "keepalive", "--connections", g.conns,
               "--duration", sec, devices=g.change_devices, workload="change")
    good = need_ok(s, "gateway change", "good")
    rate = good / s["elapsed_s"]
    wait_outbox_empty(g)
    g.psql("CHECKPOINT")
    tps, pg_tx_ms = pgbench_tps(g, g.conns, sec, cpu=True)
    progress("pgbench: PostgreSQL CPU %.3f ms per transaction" % pg_tx_ms)
    figs = [Figure("change (good, durable), %d connections: rate" % g.conns, rate, "req/s",
                   baseline=tps, higher_is_better=True, note="baseline: pgbench UPDATE tps",
                   target=Target(">=", 0.5, ">= 0.50 x pgbench", on_ratio=True))]
    if getattr(g, "nochg_pg_cpu_ms", None):
        # what the database spends on a poll that changes nothing, against
        # one single-row UPDATE transaction of pgbench
        figs.append(Figure("PostgreSQL CPU per signed nochg (gw-nochg)", g.nochg_pg_cpu_ms,
                           "ms", baseline=pg_tx_ms,
                           note="baseline: PostgreSQL CPU per pgbench UPDATE transaction",
                           target=Target(">=", 10.0, "<= 0.10 x pgbench UPDATE",
                                         on_ratio=True)))
    return figs


PROPAGATION_TRIGGER = """
CREATE TABLE IF NOT EXISTS bench_published (created_at timestamptz, deleted_at timestamptz);
TRUNCATE bench_published;
-- the trigger runs as the publisher's role, which deletes the outbox rows
GRANT INSERT ON bench_published TO ddns_gateway;
CREATE OR REPLACE FUNCTION bench_record_published() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bench_published SELECT created_at, clock_timestamp() FROM old_rows;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS bench_published ON dns_outbox;
CREATE TRIGGER bench_published AFTER DELETE ON dns_outbox REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bench_record_published();
"""


def published_delays(g):
    """(count, p50 ms, p99 ms, rows per second from the first commit to the
    last acknowledgement) of the outbox rows deleted since the trigger was
    set, then clears them."""
    rows = g.psql("SELECT count(*), "
                  "percentile_cont(0.5) WITHIN GROUP (ORDER BY delay), "
                  "percentile_cont(0.99) WITHIN GROUP (ORDER BY delay), "
                  "extract(epoch FROM max(deleted_at) - min(created_at)) "
                  "FROM (SELECT created_at, deleted_at, "
                  "extract(epoch FROM deleted_at - created_at) * 1000 AS delay "
                  "FROM bench_published) d")
    g.psql("TRUNCATE bench_published")
    n, p50, p99, span = rows[0]
    if int(n) == 0:
        raise BenchError("propagation: no outbox row was published")
    return int(n), float(p50), float(p99), int(n) / max(float(span), 1e-3)


def knsupdate_rate(g, messages, per_message, tag):
    """Changes per second by knsupdate into the same Knot, per_message
    changes (delete + add of one name's A record) in each message, waiting
    for each answer; returns (changes, rate)."""
    s = g.stack
    script = os.path.join(g.d, "knsupdate-%s.txt" % tag)
    with open(script, "w") as f:
        f.write("server 127.0.0.1 %d\nzone %s.\norigin %s.\n" % (s.dns_port, ddnsstack.ZONE,
                                                                 ddnsstack.ZONE))
        for m in range(messages):
            for c in range(per_message):
                i = m * per_message + c
                name = "%s-%d" % (tag, i)
                f.write("update delete %s A\nupdate add %s 60 A 100.%d.%d.%d\n"
                        % (name, name, 64 + (i >> 16) % 64, (i >> 8) & 255, i & 255))
            f.write("send\n")
    key = "hmac-sha256:%s:%s" % (ddnsstack.TSIG_NAME, s.tsig_secret)
    progress("knsupdate: %d messages of %d change(s)" % (messages, per_message))
    t0 = time.monotonic()
    p = subprocess.run(["knsupdate", "-y", key, script], capture_output=True, text=True)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise BenchError("knsupdate exited with %d: %s" % (p.returncode, p.stderr[-300:]))
    last = messages * per_message - 1
    want = "100.%d.%d.%d" % (64 + (last >> 16) % 64, (last >> 8) & 255, last & 255)
    got = s.dig("%s-%d.%s" % (tag, last, ddnsstack.ZONE))
    if want not in (got or ""):
        raise BenchError("knsupdate: Knot does not serve %s-%d (%r)" % (tag, last, got))
    n = messages * per_message
    progress("knsupdate: %d changes in %.2f s, %.0f/s" % (n, wall, n / wall))
    return n, n / wall


def dns_mismatch_report(g, fqdn):
    """What tells a name's missing change apart: the DNS server's answer
    status, the name's last changes in the database, the last records of
    the name in Knot's journal, and the answer a second later."""
    s = g.stack
    lines = []
    p = subprocess.run(["dig", "+noall", "+comments", "+time=1", "+tries=1", "-p",
                        str(s.dns_port), "@127.0.0.1", fqdn, "A"], capture_output=True, text=True)
    lines += ["dig: " + l.strip() for l in p.stdout.splitlines() if "status:" in l]
    hist = g.psql("SELECT to_char(at, 'HH24:MI:SS.MS'), host(new_address) FROM history "
                  "WHERE fqdn = '%s' AND rrtype = 'A' ORDER BY id DESC LIMIT 3"
                  % fqdn.replace("'", "''"))
    lines.append("database history, newest first: %s"
                 % ", ".join("%s at %s" % (a, t) for t, a in hist))
    conf = os.path.join(s.dir, "knot", "knot.conf")
    p = subprocess.run(["kjournalprint", "-x", "-c", conf, ddnsstack.ZONE],
                       capture_output=True, text=True, timeout=60)
    serials, part, seen = "", "", []
    for l in p.stdout.splitlines():
        if l.startswith(";; Changes between zone versions: "):
            serials = l.split(": ", 1)[1].split(",")[0]
        elif l.startswith(";; "):
            part = l[3:].lower()
        elif l.startswith(fqdn + "."):
            seen.append("%s %s %s" % (serials, part, l.split()[-1]))
    lines.append("Knot's journal, last records of the name: %s"
                 % ("; ".join(seen[-4:]) or "none (%s)" % (p.stderr.strip()[:200] or "no record")))
    with open(s.gw_log, errors="replace") as f:
        warned = [l.strip() for l in f if " warn " in l or " error " in l]
    lines.append("gateway warnings and errors: %d%s"
                 % (len(warned), ", the last: " + warned[-1][:240] if warned else ""))
    time.sleep(1)
    lines.append("a second later Knot serves %r" % s.dig(fqdn, quiet=True))
    return "\n  ".join(lines)


def check_dns_serves(g, count=20):
    """The last addresses the database holds for some of the changed names
    are what Knot serves."""
    rows = g.psql("SELECT label || '.' || zone, host(ipv4) FROM names WHERE ipv4 << "
                  "'100.64.0.0/10' ORDER BY updated_at DESC LIMIT %d" % count)
    for fqdn, addr in rows:
        got = g.stack.dig(fqdn)
        if addr not in (got or ""):
            raise BenchError("propagation: Knot serves %r for %s, the database %s\n  %s"
                             % (got, fqdn, addr, dns_mismatch_report(g, fqdn)))
    return len(rows)


@scenario("gw-propagation", "commit-to-DNS delay at a fixed change rate, and changes visible "
          "in DNS per second against knsupdate")
def gw_propagation_scenario(ctx):
    g = gateway_bench(ctx)
    sec = bench_seconds()
    rate = count_env("BENCH_PROP_RATE", 1000)
    wait_outbox_empty(g)
    g.psql("CHECKPOINT")
    g.psql(PROPAGATION_TRIGGER)
    try:
        s = g.load("gateway change at %d/s" % rate, "--mode", "keepalive", "--connections",
                   g.conns, "--rate", rate, "--duration", sec, devices=g.change_devices,
                   workload="change")
        need_ok(s, "gateway change at a fixed rate", "good")
        wait_outbox_empty(g)
        n, p50, p99, _ = published_delays(g)
        progress("propagation: %d changes, commit to DNS acknowledgement p50 %.1f ms, p99 %.1f ms"
                 % (n, p50, p99))
        # sustained: as many changes as the gateway takes, until all are in DNS
        t0 = time.monotonic()
        s2 = g.load("gateway change, closed loop", "--mode", "keepalive", "--connections",
                    g.conns, "--duration", sec, devices=g.change_devices, workload="change")
        good = need_ok(s2, "gateway change", "good")
        t1 = wait_outbox_empty(g)
        n2, _, sp99, visible = published_delays(g)
        progress("sustained: %d good answers, %d outbox rows published, %.0f changes/s visible "
                 "in DNS (%.1f s to the empty outbox after the run); delay p99 %.0f ms"
                 % (good, n2, visible, t1 - t0 - s2["elapsed_s"], sp99))
        checked = check_dns_serves(g)
        progress("propagation: Knot serves the database's address for %d changed names" % checked)
    finally:
        g.psql("DROP TRIGGER IF EXISTS bench_published ON dns_outbox")
    # the DNS side alone: a backlog committed at once (as after an outage of
    # the DNS server), published as fast as the publisher and Knot go
    nb = count_env("BENCH_BACKLOG", 50000)
    t0 = time.monotonic()
    g.psql("BEGIN; INSERT INTO dns_outbox (zone, fqdn, rrtype, address) "
           "SELECT '%s', 'backlog-' || n || '.%s', 'A', '100.96.0.0'::inet + n "
           "FROM generate_series(1, %d) n; SELECT pg_notify('ddns_outbox', ''); COMMIT"
           % (ddnsstack.ZONE, ddnsstack.ZONE, nb))
    t1 = wait_outbox_empty(g)
    backlog_rate = nb / (t1 - t0)
    got = g.stack.dig("backlog-%d.%s" % (nb, ddnsstack.ZONE))
    if str(ipaddress.ip_address("100.96.0.0") + nb) not in (got or ""):
        raise BenchError("backlog: Knot serves %r for backlog-%d" % (got, nb))
    progress("backlog: %d changes committed at once, in DNS after %.2f s: %.0f/s"
             % (nb, t1 - t0, backlog_rate))
    msgs1 = count_env("BENCH_KNSUPDATE_MESSAGES", 2000)
    _, kn1 = knsupdate_rate(g, msgs1, 1, "kn1")
    _, kn100 = knsupdate_rate(g, max(1, msgs1 // 10), 100, "kn100")
    # the rate the gateway kept up with (below the target when it could not)
    label = "change at %d/s (%.0f/s answered)" % (rate, need_ok(s, "change", "good") /
                                                  s["elapsed_s"])
    return [
        Figure("%s: good answer to DNS acknowledgement p50" % label, p50, "ms"),
        Figure("%s: good answer to DNS acknowledgement p99" % label, p99, "ms",
               target=Target("<", 1000.0, "< 1 s")),
        Figure("sustained changes visible in DNS vs knsupdate 1/message", visible, "changes/s",
               baseline=kn1, higher_is_better=True,
               target=Target(">=", 50.0, ">= 50 x knsupdate 1/msg", on_ratio=True)),
        Figure("sustained changes visible in DNS vs knsupdate 100/message", visible,
               "changes/s", baseline=kn100, higher_is_better=True,
               target=Target(">=", 1.0, ">= 1 x knsupdate 100/msg", on_ratio=True)),
        Figure("backlog of %s changes published into DNS vs knsupdate 100/message"
               % "{:,}".format(nb), backlog_rate, "changes/s", baseline=kn100,
               higher_is_better=True, target=Target(">=", 5000.0, ">= 5000/s")),
    ]


def provision_batch(g, label, n, first):
    """Provisions n more devices (MACs and serials from first + 1) into the
    gateway's database; returns the path of their JSON lines."""
    d = os.path.join(g.d, label)
    os.makedirs(d, exist_ok=True)
    csv_path = os.path.join(d, "devices.csv")
    with open(csv_path, "w") as f:
        f.write("mac,serial,model\n")
        f.writelines("%s,SN%09d,IPC-G5\n" % (mac_of(first + i + 1), first + i + 1)
                     for i in range(n))
    out = os.path.join(d, "devices.jsonl")
    progress("%s: provisioning %d more devices" % (label, n))
    run_measured([os.path.join(BIN, "ddns-provision"), "batch", "--csv", csv_path, "--zone",
                  ddnsstack.ZONE, "--operator", "bench", "--key-dir", g.stack.key_dir, "--db",
                  g.stack.conninfo, "--format", "jsonl", "--out", out], "ddns-provision")
    return out


def zone_a_records(g):
    """Every A record of the zone Knot serves (AXFR): {fqdn: {address}}."""
    s = g.stack
    p = subprocess.run(["dig", "-y", "hmac-sha256:%s:%s" % (ddnsstack.TSIG_NAME, s.tsig_secret),
                        "-p", str(s.dns_port), "@127.0.0.1", ddnsstack.ZONE, "AXFR",
                        "+noall", "+answer"], capture_output=True, text=True, timeout=300)
    if p.returncode != 0 or "Transfer failed" in p.stdout:
        raise BenchError("AXFR of %s failed: %s" % (ddnsstack.ZONE,
                                                     (p.stderr or p.stdout)[-300:]))
    zone = {}
    for line in p.stdout.splitlines():
        f = line.split()
        if len(f) == 5 and f[3] == "A":
            zone.setdefault(f[0].rstrip(".").lower(), set()).add(f[4])
    return zone


@scenario("gw-renumber", "renumbering wave: BENCH_RENUMBER_DEVICES devices change their address "
          "once within BENCH_RENUMBER_SECONDS, open loop; good answer to DNS p99 and no change "
          "lost")
def gw_renumber_scenario(ctx):
    g = gateway_bench(ctx)
    n = count_env("BENCH_RENUMBER_DEVICES", 100000)
    secs = count_env("BENCH_RENUMBER_SECONDS", 60)
    # devices of their own, after the fleet's MACs and serials, each with a
    # recorded address outside the change workload's 100.64.0.0/10 (set in
    # the database only, as a device that renumbers had one): every request
    # of the wave is a change to a new address
    devices = provision_batch(g, "renumber", n, g.n + 10000000)
    with open(devices) as f:
        ids = [json.loads(line)["device_id"] for line in f]
    g.psql("CREATE TABLE bench_renumber (device_id text PRIMARY KEY)")
    try:
        with open(os.path.join(g.d, "renumber", "ids.txt"), "w") as f:
            f.writelines(i + "\n" for i in ids)
        ddnsstack.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", g.stack.conninfo, "-c",
                       "\\copy bench_renumber FROM '%s'" % os.path.join(g.d, "renumber",
                                                                         "ids.txt")])
        g.psql("UPDATE names SET ipv4 = '198.18.0.0'::inet + name_id % 131072, "
               "updated_at = now() WHERE device_id IN (SELECT device_id FROM bench_renumber)")
        wait_outbox_empty(g)
        g.psql("CHECKPOINT")
        g.psql(PROPAGATION_TRIGGER)
        hist0 = int(g.psql("SELECT coalesce(max(id), 0) FROM history")[0][0])
        rate = n / secs
        try:
            # --count n over n devices: each device sends exactly once
            s = g.load("renumbering wave, %d devices in %d s" % (n, secs), "--mode",
                       "keepalive", "--connections", g.conns, "--rate", "%.3f" % rate,
                       "--count", n, devices=devices, workload="change")
            good = need_ok(s, "renumbering wave", "good")
            t_answered = time.monotonic()
            wait_outbox_empty(g, timeout=max(120, secs * 5))
            published, p50, p99, _ = published_delays(g)
        finally:
            g.psql("DROP TRIGGER IF EXISTS bench_published ON dns_outbox")
        progress("renumber: %d good answers of %d devices in %.1f s, DNS caught up %.1f s after "
                 "the last answer; good answer to DNS acknowledgement p50 %.0f ms, p99 %.0f ms"
                 % (good, n, s["elapsed_s"], time.monotonic() - t_answered, p50, p99))
        hist = int(g.psql("SELECT count(*) FROM history h JOIN bench_renumber r "
                          "USING (device_id) WHERE h.id > %d" % hist0)[0][0])
        rows = g.psql("SELECT n.label || '.' || n.zone, host(n.ipv4) FROM names n "
                      "JOIN bench_renumber r USING (device_id)")
    finally:
        g.psql("DROP TABLE IF EXISTS bench_renumber")
    zone = zone_a_records(g)
    wrong = [(fqdn, addr, sorted(zone.get(fqdn.lower(), ())))
             for fqdn, addr in rows if zone.get(fqdn.lower()) != {addr}]
    lost = abs(good - hist) + abs(hist - published) + len(wrong)
    progress("renumber: %d good answers, %d history rows, %d outbox rows published, %d of %d "
             "names in the zone (AXFR) differ from the database: lost %d"
             % (good, hist, published, len(wrong), len(rows), lost))
    if lost:
        raise BenchError("renumber: %d changes lost (good %d, history %d, published %d; names "
                         "that differ: %s)" % (lost, good, hist, published, wrong[:3]))
    label = "renumbering wave, %s devices in %d s (%.0f/s answered)" % (
        "{:,}".format(n), secs, good / s["elapsed_s"])
    return [
        Figure("%s: changes answered good" % label, good, "changes",
               target=Target(">=", n, "all %s" % "{:,}".format(n))),
        Figure("%s: good answer to DNS acknowledgement p50" % label, p50, "ms"),
        Figure("%s: good answer to DNS acknowledgement p99" % label, p99, "ms",
               target=Target("<", 5000.0, "< 5 s")),
        Figure("%s: changes lost" % label, lost, "changes", target=Target("<=", 0, "== 0"),
               note="good answers, history rows, outbox rows published and the zone's "
                    "addresses (AXFR) of the changed names agree"),
    ] + database_size_figures(g)


def database_size_figures(g):
    """Bytes on disk (tables, indexes, TOAST) per device of devices + names,
    and per row of history."""
    (devs, hrows, per_dev, per_hist), = g.psql(
        "SELECT (SELECT count(*) FROM devices), (SELECT count(*) FROM history), "
        "(pg_total_relation_size('devices') + pg_total_relation_size('names')) "
        "/ greatest((SELECT count(*) FROM devices), 1), "
        "pg_total_relation_size('history') / greatest((SELECT count(*) FROM history), 1)")
    progress("database size: %s bytes per device (devices + names, %s devices), %s bytes per "
             "history row (%s rows)" % (per_dev, devs, per_hist, hrows))
    return [Figure("database size per device (devices + names, %s devices)"
                   % "{:,}".format(int(devs)), float(per_dev), "bytes"),
            Figure("database size per change (history, %s rows)" % "{:,}".format(int(hrows)),
                   float(per_hist), "bytes")]


# -- the admin API -------------------------------------------------------------

def admin_fleet_sql(n, zone):
    """Server-side generation of n devices with one name each, varied like a
    real fleet: locally administered unicast MACs (0a:...), four models, four
    firmware versions, two key ids, one device in 500 revoked, last seen
    spread over 120 days, a serial each. Returns the statements, to run one
    by one (VACUUM needs its own)."""
    return ["""
INSERT INTO devices (device_id, kid, status, serial, model, firmware, last_seen, seen_day,
                     last_source, last_result, batch_id)
SELECT '0a' || lpad(to_hex(i), 10, '0'),
       CASE WHEN i % 10 = 0 THEN 'k2' ELSE 'k1' END,
       CASE WHEN i % 500 = 0 THEN 'revoked' ELSE 'active' END,
       'SN' || lpad(i::text, 9, '0'),
       (ARRAY['IPC-G5', 'IPC-G6', 'DVR-8', 'NVR-16'])[i % 4 + 1],
       (ARRAY['4.0.2', '4.1.0', '4.1.1', '5.0.0'])[(i / 7) % 4 + 1],
       now() - (i % 2880) * interval '1 hour',
       (now() - (i % 2880) * interval '1 hour')::date,
       ('10.' || ((i >> 16) & 255) || '.' || ((i >> 8) & 255) || '.' || (i & 255))::inet,
       'nochg', 1
FROM generate_series(1, {n}) i""".format(n=int(n)),
            """
INSERT INTO names (device_id, label, zone, ipv4, updated_at)
SELECT device_id, 'd' || substr(md5(device_id), 1, 13), '{zone}', last_source, last_seen
FROM devices""".format(zone=zone),
            "VACUUM ANALYZE devices", "VACUUM ANALYZE names"]


def admin_get(port, token, path):
    import urllib.request
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                 headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=30) as r:
        body = r.read()
        if r.status != 200:
            raise BenchError("GET %s answered %d" % (path, r.status))
        return json.loads(body)


def admin_median_ms(port, token, paths, check):
    """Median wall time of GET over paths (one round each after a warm-up
    of three), in ms, through the gateway's admin listener."""
    for p in paths[:3]:
        admin_get(port, token, p)
    times = []
    for p in paths:
        t0 = time.perf_counter()
        j = admin_get(port, token, p)
        times.append((time.perf_counter() - t0) * 1000.0)
        check(j)
    times.sort()
    return times[len(times) // 2]


@scenario("admin", "admin API latency on a fleet of BENCH_ADMIN_DEVICES devices: MAC lookup, "
          "hostname search, fleet overview")
def admin_scenario(ctx):
    n = count_env("BENCH_ADMIN_DEVICES", 1000000)
    s = ctx.stack
    db = ctx.fresh_database("bench_admin")
    label = "{:,}".format(n)
    progress("admin: generating %s devices with names in PostgreSQL" % label)
    t0 = time.monotonic()
    args = []
    for stmt in admin_fleet_sql(n, ddnsstack.ZONE):
        args += ["-c", stmt]
    ctx.psql(db, *args)
    progress("admin: fleet ready in %.1f s" % (time.monotonic() - t0))
    # a gateway on that database, with its admin listener; the DNS server
    # need not run (nothing is published)
    s.make_tls()
    secret = os.path.join(s.dir, "tsig.secret")
    if not os.path.exists(secret):
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, b"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=\n")
        os.close(fd)
    admin_port = ddnsstack.free_port()
    tok = ddnsstack.run([os.path.join(BIN, "ddnsctl"), "token", "create", "--db", db,
                         "--scope", "read", "--comment", "bench"]).stdout.strip()
    rows = ctx.psql(db, "-At", "-F", " ", "-c",
                    "SELECT device_id, label FROM names WHERE (name_id - 1) %% %d = 0 LIMIT 40"
                    % max(1, n // 40)).stdout.split("\n")
    picks = [r.split() for r in rows if r.strip()]
    if len(picks) < 10:
        raise BenchError("the generated fleet has too few devices to pick from")
    with s.extra_gateway("admin", conninfo=db,
                         extra="[admin]\nlisten = 127.0.0.1:%d\n" % admin_port):
        def mac(d):
            return ":".join(d[i:i + 2] for i in range(0, 12, 2)).upper()

        def one_device(j):
            if j["total"] != 1:
                raise BenchError("a MAC lookup found %d devices" % j["total"])

        def some_devices(j):
            if j["total"] < 1:
                raise BenchError("a hostname search found nothing")

        def fleet(j):
            if j["devices"] != n:
                raise BenchError("the fleet overview counts %d devices, not %d"
                                 % (j["devices"], n))

        base = admin_median_ms(admin_port, tok, ["/api/v1/whoami"] * 20, lambda j: None)
        mac_ms = admin_median_ms(admin_port, tok, ["/api/v1/devices?q=" + mac(d)
                                                   for d, _ in picks], one_device)
        host_ms = admin_median_ms(admin_port, tok, ["/api/v1/devices?q=" + lab[:6]
                                                    for _, lab in picks], some_devices)
        fleet_ms = admin_median_ms(admin_port, tok, ["/api/v1/fleet"] * 9, fleet)
    ctx.stack.psql("DROP DATABASE bench_admin")
    note = "median; baseline: GET /api/v1/whoami"
    return [
        Figure("admin %s devices: MAC lookup" % label, mac_ms, "ms", baseline=base,
               target=Target("<", 10.0, "< 10 ms"), note=note),
        Figure("admin %s devices: hostname search" % label, host_ms, "ms", baseline=base,
               target=Target("<", 50.0, "< 50 ms"), note=note),
        Figure("admin %s devices: fleet overview" % label, fleet_ms, "ms", baseline=base,
               target=Target("<", 200.0, "< 200 ms"), note=note),
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
