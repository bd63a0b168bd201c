#!/usr/bin/env python3
"""CPU time and WAL per update, split between the gateway and PostgreSQL.

Starts PostgreSQL, Knot DNS and the gateway on loopback in a temporary
directory (tests/integration/ddnsstack.py), registers 20,000 devices, and
runs ddns-load four times: one round of first updates (answers good), nochg
on keep-alive connections, nochg with a new TLS connection per update, and
change on keep-alive connections. Around each run it reads the CPU time of
the gateway and of PostgreSQL (the postmaster and its children, exited ones
included: bench.py's pg_cpu_s, as make bench) and the WAL position, and
prints per answer: gateway CPU, PostgreSQL CPU and WAL bytes; at the end the
size of the devices and names tables per device. The gateway has one database
connection per worker, as in make bench (environment DB_POOL to change).
docs/SCALING.md and docs/PERFORMANCE.md use these
figures. Build first (make BUILD=build/release OPT=-O2 all), then:

  DDNS_BIN=build/release/bin /usr/bin/python3 bench/cpu_split.py
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import ddnsstack  # noqa: E402
from bench import pg_cpu_s, proc_cpu_s  # noqa: E402

BIN = ddnsstack.BIN
DEVICES = 20000
SECONDS = 10


def main():
    base = tempfile.mkdtemp(prefix="ddns-cpusplit-")
    s = ddnsstack.Stack(base, log=lambda m: print("[cpu_split] " + m, file=sys.stderr))
    s.LIMIT_DEFAULTS = {"auth_fail_limit": "0", "max_connections": "0",
                        "max_connections_per_source": "0"}
    s.gateway_extra = "request_timeout = 300\n"
    # as make bench: one database connection per worker (DB_POOL to change)
    s.pool_size = int(os.environ.get("DB_POOL", "1"))
    try:
        s.start_postgres()
        s.start_dns()
        s.make_keys()
        s.make_tls()
        s.write_gateway_config()
        csv = os.path.join(base, "fleet.csv")
        with open(csv, "w") as f:
            f.write("mac,serial,model\n")
            for i in range(DEVICES):
                f.write("02:%02x:%02x:%02x:%02x:01,SN%07d,IPC-G5\n"
                        % ((i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255, i))
        fleet = os.path.join(base, "fleet.jsonl")
        ddnsstack.run([os.path.join(BIN, "ddns-provision"), "batch", "--csv", csv, "--zone",
                       ddnsstack.ZONE, "--operator", "cpu_split", "--key-dir", s.key_dir,
                       "--db", s.conninfo, "--format", "jsonl", "--out", fleet])
        with open(fleet) as f:
            lines = f.readlines()
        half = len(lines) // 2
        for name, part in (("nochg", lines[:half]), ("change", lines[half:])):
            with open(os.path.join(base, name + ".jsonl"), "w") as f:
                f.writelines(part)
        s.start_gateway()
        gw = s.procs["gateway"].pid

        def measure(label, devices, workload, *args):
            cmd = [os.path.join(BIN, "ddns-load"), "--server", "127.0.0.1:%d" % s.https_port,
                   "--ca", s.ca_cert, "--workload", workload,
                   "--devices", os.path.join(base, devices + ".jsonl"), "-q"] + list(args)
            lsn = s.psql("SELECT pg_current_wal_lsn()")[0][0]
            g0, p0 = proc_cpu_s(gw), pg_cpu_s(s)
            out = ddnsstack.run(cmd)
            g1, p1 = proc_cpu_s(gw), pg_cpu_s(s)
            wal = int(s.psql("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '%s')" % lsn)[0][0])
            summary = json.loads(out.stdout)
            ok = summary["ok"]
            pg = p1 - p0
            print("%-34s %6d answers %7.0f/s  gateway %.3f ms  postgres %.3f ms  WAL %5d B"
                  % (label, ok, summary["rate_per_s"], (g1 - g0) / ok * 1e3, pg / ok * 1e3,
                     wal // ok), flush=True)

        dur = str(SECONDS)
        measure("first updates (good)", "nochg", "nochg", "--mode", "keepalive",
                "--connections", "32", "--count", str(half))
        measure("nochg, keep-alive", "nochg", "nochg", "--mode", "keepalive",
                "--connections", "32", "--duration", dur)
        measure("nochg, new TLS connection each", "nochg", "nochg", "--mode", "new",
                "--connections", "16", "--duration", dur)
        measure("change, keep-alive", "change", "change", "--mode", "keepalive",
                "--connections", "32", "--duration", dur)
        size = s.psql("SELECT (pg_total_relation_size('devices') + "
                      "pg_total_relation_size('names')) / %d" % DEVICES)[0][0]
        print("devices and names with indexes: %s bytes per device" % size)
    finally:
        s.stop()
        import shutil
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
