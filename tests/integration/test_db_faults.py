"""The database refuses to write: read-only, or its disk is full. The
gateway answers the temporary error (503 911 with Retry-After on
/v1/update, 911 on /nic/update), nothing is half-written, and updates are
accepted again as soon as the database can write, with no step on the
gateway (docs/SECURITY.md, "Disk full or read-only database").

Read-only: ALTER SYSTEM SET default_transaction_read_only, as a database
put into maintenance or a replica answering after a fail-over would be.
Disk full: history and dns_outbox are moved to a tablespace on a small
tmpfs that this test mounts (it needs root, like the harness that runs
PostgreSQL as its own user) and a filler table takes the rest of its
space, so that an update cannot extend those tables; the write-ahead log
stays on the data directory's disk (a full WAL disk makes PostgreSQL stop
itself, which is the restart case of test_publish_faults and test_soak)."""
import os
import pwd
import re
import subprocess
import tempfile
import time

import pytest

import attack
import ddnsstack


@pytest.fixture(scope="module")
def dbstack():
    with ddnsstack.started("ddns-dbfault-", "db faults") as s:
        yield s


def new_device(stack):
    n = new_device.n = getattr(new_device, "n", 0) + 1
    return stack.provision("0a:%02x:00:d6:00:%02x" % (os.getpid() & 0xff, n))


def psql_super(stack, sql):
    """Runs sql outside any transaction block, in a session that may write
    even while writing is off by default."""
    env = dict(os.environ, PGOPTIONS="-c default_transaction_read_only=off")
    out = ddnsstack.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", stack.conninfo,
                         "-c", sql], env=env)
    return out.stdout


def history(stack, creds):
    return [r[0] for r in stack.psql("SELECT host(new_address) FROM history WHERE device_id = "
                                     "'%s' ORDER BY id" % creds["device_id"])]


def update(stack, creds, addr):
    raw = attack.signed_update(creds, ("ipv4=" + addr).encode())
    status, body, headers = stack.https_request(raw, headers=True)
    return status, body.decode(), headers


def dyn(stack, creds, addr):
    raw = attack.nic_raw("hostname=%s&myip=%s" % (creds["fqdn"], addr),
                         auth=attack.basic(creds["device_id"], creds["password"]))
    return stack.https_request(raw)


def consistent(stack):
    """Every name's address is the newest history row of its device and
    name (nothing was half-applied), and the indexes check out."""
    bad = stack.psql("""
        SELECT n.device_id, host(n.ipv4), h.addr FROM names n
        LEFT JOIN LATERAL (SELECT host(new_address) AS addr FROM history h
                           WHERE h.device_id = n.device_id AND h.rrtype = 'A'
                             AND h.fqdn = n.label || '.' || n.zone
                           ORDER BY h.id DESC LIMIT 1) h ON true
        WHERE host(n.ipv4) IS DISTINCT FROM h.addr""")
    assert bad == [], bad
    psql_super(stack, "CREATE EXTENSION IF NOT EXISTS amcheck")
    for (index,) in stack.psql("SELECT indexrelid::regclass FROM pg_index i JOIN pg_class c ON "
                               "c.oid = i.indrelid WHERE c.relname IN ('history', 'dns_outbox', "
                               "'names', 'devices')"):
        stack.psql("SELECT bt_index_check('%s', true)" % index)


def test_read_only_database_gives_911_then_recovers(dbstack):
    stack = dbstack
    creds = new_device(stack)
    assert update(stack, creds, "192.0.2.1")[:2] == (200, "good 192.0.2.1\n")
    assert stack.outbox_empty()
    psql_super(stack, "ALTER SYSTEM SET default_transaction_read_only = on")
    psql_super(stack, "SELECT pg_reload_conf()")
    try:
        deadline = time.time() + 10
        while stack.psql("SHOW default_transaction_read_only") != [["on"]]:
            assert time.time() < deadline
            time.sleep(0.1)
        for i in range(5):      # every pooled connection of both workers
            status, body, headers = update(stack, creds, "192.0.2.%d" % (10 + i))
            assert (status, body, headers.get("retry-after")) == (503, "911\n", "30"), body
            assert dyn(stack, creds, "192.0.2.%d" % (20 + i)) == (200, b"911\n")
        assert history(stack, creds) == ["192.0.2.1"]
        assert stack.dig(creds["fqdn"]) == ["192.0.2.1"]
        assert "read-only transaction" in stack.gateway_log()
    finally:
        psql_super(stack, "ALTER SYSTEM RESET default_transaction_read_only")
        psql_super(stack, "SELECT pg_reload_conf()")
    # no step on the gateway: the next attempts are accepted
    deadline = time.time() + 10
    while True:
        status, body, _ = update(stack, creds, "192.0.2.30")
        if status == 200 or time.time() > deadline:
            break
        time.sleep(0.5)
    assert (status, body) == (200, "good 192.0.2.30\n")
    assert dyn(stack, creds, "192.0.2.31") == (200, b"good 192.0.2.31\n")
    assert stack.wait_dns(creds["fqdn"], "A", ["192.0.2.31"]) == ["192.0.2.31"]
    assert history(stack, creds) == ["192.0.2.1", "192.0.2.30", "192.0.2.31"]
    consistent(stack)


def test_full_disk_gives_911_then_recovers(dbstack):
    stack = dbstack
    if os.geteuid() != 0:
        pytest.skip("mounting the small file system needs root")
    creds = [new_device(stack) for _ in range(3)]
    for i, c in enumerate(creds):
        assert update(stack, c, "198.51.100.%d" % (i + 1))[0] == 200
    assert stack.outbox_empty()
    mnt = tempfile.mkdtemp(prefix="ddns-full-")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", mnt],
                       capture_output=True, text=True)
    if p.returncode != 0:
        os.rmdir(mnt)
        pytest.skip("cannot mount a tmpfs here: %s" % p.stderr.strip())
    pg = pwd.getpwnam("postgres")
    os.chown(mnt, pg.pw_uid, pg.pw_gid)
    moved = False
    try:
        psql_super(stack, "CREATE TABLESPACE small LOCATION '%s'" % mnt)
        psql_super(stack, "ALTER TABLE history SET TABLESPACE small")
        psql_super(stack, "ALTER TABLE dns_outbox SET TABLESPACE small")
        moved = True
        psql_super(stack, "CREATE TABLE filler (x text) TABLESPACE small")
        psql_super(stack, "ALTER TABLE filler ALTER x SET STORAGE EXTERNAL")
        # fill the file system: random text does not compress
        for _ in range(200):
            try:
                psql_super(stack, "INSERT INTO filler SELECT string_agg(md5(random()::text), '') "
                                  "FROM generate_series(1, 4000)")
            except RuntimeError as e:
                assert re.search(r"No space left on device|could not extend", str(e)), e
                break
        else:
            pytest.fail("the small file system never filled")
        # updates until one needs a new page: each answer is good or 911
        answers, n = [], 0
        while n < 400 and not any(a == (503, "911\n") for a, _ in answers):
            c = creds[n % 3]
            addr = "198.51.%d.%d" % (101 + n // 250, n % 250 + 1)
            status, body, _ = update(stack, c, addr)
            answers.append(((status, body), (c["device_id"], addr)))
            n += 1
        got = {a for a, _ in answers}
        assert (503, "911\n") in got, got
        assert got <= {(200, "good %s\n" % addr) for _, (_, addr) in answers} | {(503, "911\n")}
        assert "No space left on device" in stack.gateway_log() or \
            "could not extend" in stack.gateway_log()
        # nothing half-written: goods are in the history, refusals are not
        stored = stack.psql("SELECT device_id, host(new_address) FROM history WHERE "
                            "device_id IN (%s)" % ", ".join("'%s'" % c["device_id"] for c in creds))
        stored = sorted(tuple(r) for r in stored)
        assert len(stored) == len(set(stored))
        for (status, body), key in answers:
            assert (key in stored) == (status == 200), (key, status, body)
        print("disk full: %d updates accepted before the first 911" % (len(answers) - 1))
        consistent(stack)
        # the space comes back: accepted again, no step on the gateway
        psql_super(stack, "DROP TABLE filler")
        psql_super(stack, "CHECKPOINT")
        c = creds[0]
        deadline = time.time() + 10
        while True:
            status, body, _ = update(stack, c, "203.0.113.77")
            if status == 200 or time.time() > deadline:
                break
            time.sleep(0.5)
        assert (status, body) == (200, "good 203.0.113.77\n")
        assert stack.wait_dns(c["fqdn"], "A", ["203.0.113.77"]) == ["203.0.113.77"]
        assert stack.outbox_empty()
        consistent(stack)
    finally:
        try:
            psql_super(stack, "DROP TABLE IF EXISTS filler")
            if moved:
                psql_super(stack, "ALTER TABLE history SET TABLESPACE pg_default")
                psql_super(stack, "ALTER TABLE dns_outbox SET TABLESPACE pg_default")
            psql_super(stack, "DROP TABLESPACE IF EXISTS small")
        finally:
            if subprocess.run(["umount", mnt]).returncode != 0:
                stack.stop_postgres()
                subprocess.run(["umount", mnt])
                stack.start_postgres()
            os.rmdir(mnt)
