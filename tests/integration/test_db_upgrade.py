"""A database of schema version 8 (migrations 0001..0008 only, with the
functions they defined) upgrades in place with the current db/migrate: the
version is the newest, the old forms of ddns_apply_request are gone, the
data is kept, its devices are of secret generation 0, and updates work
through the functions of db/functions, also through the form of
ddns_apply_batch() that the gateways of the previous release call.
Running db/migrate again changes nothing and succeeds; --status works.

Only PostgreSQL runs here (and ddns-provision against it)."""
import os
import shutil
import tempfile

import pytest

import ddnsstack

MIGRATE = os.path.join(ddnsstack.ROOT, "db", "migrate")
MIGRATIONS = os.path.join(ddnsstack.ROOT, "db", "migrations")
OLD = 8


@pytest.fixture(scope="module")
def pg():
    base = tempfile.mkdtemp(prefix="ddns-upgrade-")
    s = ddnsstack.Stack(base, log=lambda m: print("[upgrade] %s" % m))
    try:
        s.start_postgres()
        s.make_keys()
        yield s
    finally:
        s.stop()
        shutil.rmtree(base, ignore_errors=True)


def psql(conninfo, sql):
    out = ddnsstack.run(["psql", "-X", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1", conninfo,
                         "-c", sql])
    return [line.split("\t") for line in out.stdout.splitlines() if line]


def old_db(pg, tmp_path, name):
    """A new database at schema version OLD, built by db/migrate with
    migrations 0001..OLD only and no functions files: what a release of
    that version left."""
    pg.psql("DROP DATABASE IF EXISTS %s" % name)
    pg.psql("CREATE DATABASE %s" % name)
    conninfo = pg.conninfo.replace("dbname=ddns", "dbname=" + name)
    old = tmp_path / "db"
    os.makedirs(old / "migrations")
    shutil.copy(MIGRATE, old / "migrate")
    for f in sorted(os.listdir(MIGRATIONS)):
        if f.endswith(".sql") and int(f[:4]) <= OLD:
            shutil.copy(os.path.join(MIGRATIONS, f), old / "migrations" / f)
    out = ddnsstack.run([str(old / "migrate"), conninfo])
    assert out.stdout.endswith("%d migration(s) applied, schema version %d\n" % (OLD, OLD))
    return conninfo


def signatures(conninfo, name):
    return sorted(r[0] for r in psql(conninfo, "SELECT pg_get_function_identity_arguments(oid) "
                                               "FROM pg_proc WHERE proname = '%s'" % name))


def test_a_version_8_database_upgrades_in_place(pg, tmp_path):
    db = old_db(pg, tmp_path, "ddns_v8")
    assert len(signatures(db, "ddns_apply_request")) == 3     # 9, 10 and 11 arguments

    # -- filled as version 8's tools did (devices of one key id, no
    #    generation) and through its functions
    devs = []
    for i in range(3):
        dev = "0200000800%02x" % (i + 1)
        psql(db, "INSERT INTO devices (device_id, kid, serial, model) VALUES ('%s', 'k1', "
                 "'SN-%d', 'IPC-G5'); INSERT INTO names (device_id, label, zone) VALUES "
                 "('%s', 'up%d', '%s')" % (dev, i, dev, i, ddnsstack.ZONE))
        psql(db, "INSERT INTO provision_batches (command, operator, kid, zone, input_name, "
                 "input_sha256, input_bytes, lines, devices_new, devices_unchanged, "
                 "lines_rejected, output_format, tool_version, device_id, fqdn) VALUES "
                 "('issue', 'upgrade', 'k1', '%s', '--mac %s', repeat('0', 64), 13, 1, 1, 0, 0, "
                 "'jsonl', '0.2.0', '%s', 'up%d.%s')"
                 % (ddnsstack.ZONE, dev, dev, i, ddnsstack.ZONE))
        devs.append({"device_id": dev, "kid": "k1", "fqdn": "up%d.%s" % (i, ddnsstack.ZONE)})
    a, b, c = devs
    call11 = ("SELECT string_agg(result, ',') FROM ddns_apply_request('{d}', '{k}', {ts}, {v4}, "
              "NULL, '127.0.0.1', NULL, false, 0, 'fw/1.0', '1.0')")
    assert psql(db, call11.format(d=a["device_id"], k=a["kid"], ts=100, v4="'192.0.2.1'")) \
        == [["good"]]
    assert psql(db, call11.format(d=a["device_id"], k=a["kid"], ts=101, v4="'192.0.2.2'")) \
        == [["good"]]
    assert psql(db, "SELECT string_agg(result, ',') FROM ddns_apply_request('%s', '%s', 100, "
                    "'192.0.2.3', NULL, '127.0.0.1', NULL, false, 0)"
                    % (b["device_id"], b["kid"])) == [["good"]]
    assert psql(db, "SELECT string_agg(result, ',' ORDER BY item) FROM ddns_apply_batch("
                    "ARRAY['%s'], ARRAY['%s'], ARRAY[100]::bigint[], ARRAY['192.0.2.4']::inet[], "
                    "ARRAY[NULL]::inet[], ARRAY['127.0.0.1']::inet[], ARRAY[NULL]::text[], "
                    "ARRAY[false], ARRAY[0], ARRAY['fw/2.0'], ARRAY[NULL]::text[])"
                    % (c["device_id"], c["kid"])) == [["good"]]
    psql(db, "INSERT INTO admin_tokens (token_sha256, scope, comment, created_by) "
             "VALUES (repeat('ab', 32), 'write', 'laptop', 'ddnsctl (database)')")
    # tokens made by tokens, as version 8's admin API made them (no expiry of
    # their own): one of a token that expires, one of a revoked token
    psql(db, "INSERT INTO admin_tokens (token_sha256, scope, created_by, expires_at, revoked_at) "
             "VALUES (repeat('c1', 32), 'write', 'ddnsctl (database)', now() + interval '1 day', "
             "NULL), (repeat('c2', 32), 'write', 'ddnsctl (database)', NULL, now())")
    psql(db, "INSERT INTO admin_tokens (token_sha256, scope, created_by) SELECT repeat('d' || "
             "right(token_sha256, 1), 32), 'write', 'token ' || token_id FROM admin_tokens "
             "WHERE token_sha256 IN (repeat('c1', 32), repeat('c2', 32))")
    assert psql(db, "SELECT (admin_set_ttl(NULL, 'upgrade test', 'database', '%s', 120)).status"
                % b["device_id"]) == [["200"]]
    counts = "SELECT (SELECT count(*) FROM %s)" % ") || ',' || (SELECT count(*) FROM ".join(
        ["devices", "names", "history", "dns_outbox", "provision_batches", "admin_tokens",
         "admin_audit", "fleet_deltas"])
    before = psql(db, counts)
    rows = ("SELECT device_id, host(ipv4), ttl FROM names ORDER BY name_id",
            "SELECT device_id, fqdn, host(old_address), host(new_address) FROM history ORDER BY id",
            "SELECT fqdn, host(address), ttl FROM dns_outbox ORDER BY id",
            "SELECT device_id, last_ts, last_result, user_agent, firmware, fail_count "
            "FROM devices ORDER BY device_id",
            "SELECT action, device_id, detail::text FROM admin_audit ORDER BY audit_id",
            "SELECT command, device_id, operator FROM provision_batches ORDER BY batch_id")
    kept = [psql(db, q) for q in rows]
    assert [r[1] for r in kept[1]] == [a["fqdn"], a["fqdn"], b["fqdn"], c["fqdn"]]

    # -- the upgrade
    up = ddnsstack.run([MIGRATE, db])
    newest = max(int(f[:4]) for f in os.listdir(MIGRATIONS) if f.endswith(".sql"))
    assert "db/migrate: functions applied:" in up.stdout
    assert up.stdout.endswith("%d migration(s) applied, schema version %d\n"
                              % (newest - OLD, newest))
    assert psql(db, "SELECT max(version) FROM schema_version") == [[str(newest)]]
    assert signatures(db, "ddns_apply_request") == [
        "p_device text, p_kid text, p_generation integer, p_ts bigint, p_ipv4 inet, "
        "p_ipv6 inet, p_source inet, p_fqdns text[], p_offline boolean, "
        "p_min_interval integer, p_agent text, p_firmware text"]
    assert signatures(db, "ddns_apply_update") == []
    # the gateways' form (p_own: polls that write nothing), and the forms of
    # the two releases before it (with and without generations), so that
    # their gateways keep working during an upgrade
    assert sorted(s.count("[]") for s in signatures(db, "ddns_apply_batch")) == [11, 12, 13]
    assert psql(db, counts) == before
    assert [psql(db, q) for q in rows] == kept
    # the tokens made by tokens now belong to them: bounded by the one that
    # expires, revoked with the revoked one
    assert psql(db, "SELECT c.parent_id = p.token_id, c.expires_at IS NOT DISTINCT FROM "
                    "p.expires_at, c.revoked_at IS NOT DISTINCT FROM p.revoked_at, "
                    "c.revoked_at IS NULL FROM admin_tokens c JOIN admin_tokens p ON "
                    "c.created_by = 'token ' || p.token_id ORDER BY c.token_id") == [
        ["t", "t", "t", "t"], ["t", "t", "t", "f"]]
    # every device registered before generations is generation 0, may use dyndns2
    assert psql(db, "SELECT DISTINCT generation, dyndns2 FROM devices") == [["0", "t"]]

    # -- and it works: a change, a replay, the outbox
    outbox = int(psql(db, "SELECT count(*) FROM dns_outbox")[0][0])
    assert psql(db, "SELECT ord, fqdn, result, host(ipv4) FROM ddns_apply_request('%s', '%s', "
                    "0, 102, '192.0.2.5', NULL, '127.0.0.1', NULL, false, 0, 'fw/1.1', '1.1')"
                % (a["device_id"], a["kid"])) == [["1", a["fqdn"], "good", "192.0.2.5"]]
    assert psql(db, "SELECT ord, result FROM ddns_apply_request('%s', '%s', 0, 102, "
                    "'192.0.2.6', NULL, '127.0.0.1', NULL, false, 0, 'fw/1.1', '1.1')"
                % (a["device_id"], a["kid"])) == [["", "replay"]]
    assert psql(db, "SELECT fqdn, host(address) FROM dns_outbox WHERE id > (SELECT max(id) - 1 "
                    "FROM dns_outbox)") == [[a["fqdn"], "192.0.2.5"]]
    assert int(psql(db, "SELECT count(*) FROM dns_outbox")[0][0]) == outbox + 1
    assert psql(db, "SELECT last_ts, last_result, fail_count, firmware FROM devices "
                    "WHERE device_id = '%s'" % a["device_id"]) == [["102", "replay", "1", "1.1"]]
    # another generation than the registered one is an unknown device
    assert psql(db, "SELECT ord, result FROM ddns_apply_request('%s', '%s', 1, 103, "
                    "'192.0.2.6', NULL, '127.0.0.1', NULL, false, 0, 'fw/1.1', '1.1')"
                % (a["device_id"], a["kid"])) == [["", "unknown"]]
    # the previous release's gateways call the form without generations: their
    # requests are generation 0 (the only secrets they can verify)
    assert psql(db, "SELECT item, ord, result FROM ddns_apply_batch(ARRAY['%s', '%s'], "
                    "ARRAY['%s', '%s'], ARRAY[101, 102]::bigint[], "
                    "ARRAY['192.0.2.3', '192.0.2.7']::inet[], ARRAY[NULL, NULL]::inet[], "
                    "ARRAY['127.0.0.1', '127.0.0.1']::inet[], ARRAY[NULL, NULL]::text[], "
                    "ARRAY[false, false], ARRAY[0, 0], ARRAY['x', 'x'], ARRAY[NULL, NULL]::text[]) "
                    "ORDER BY item" % (b["device_id"], c["device_id"], b["kid"], c["kid"])) \
        == [["1", "1", "nochg"], ["2", "1", "good"]]
    psql(db, "UPDATE devices SET generation = 1 WHERE device_id = '%s'" % c["device_id"])
    assert psql(db, "SELECT item, ord, result FROM ddns_apply_batch(ARRAY['%s'], ARRAY['%s'], "
                    "ARRAY[103]::bigint[], ARRAY['192.0.2.8']::inet[], ARRAY[NULL]::inet[], "
                    "ARRAY['127.0.0.1']::inet[], ARRAY[NULL]::text[], ARRAY[false], ARRAY[0], "
                    "ARRAY['x'], ARRAY[NULL]::text[])" % (c["device_id"], c["kid"])) \
        == [["1", "", "unknown"]]
    psql(db, "UPDATE devices SET generation = 0 WHERE device_id = '%s'" % c["device_id"])

    # -- again: nothing to migrate, the same functions, still working
    defs = "SELECT string_agg(pg_get_functiondef(oid), '' ORDER BY oid) FROM pg_proc " \
           "WHERE pronamespace = 'public'::regnamespace"
    same = psql(db, defs)
    again = ddnsstack.run([MIGRATE, db])
    assert again.stdout.endswith("0 migration(s) applied, schema version %d\n" % newest)
    assert psql(db, defs) == same
    assert psql(db, counts)[0][0].split(",")[:3] == ["3", "3", "6"]
    status = ddnsstack.run([MIGRATE, "--status", db])
    assert status.stdout == "schema version %d, newest migration %d\n" % (newest, newest)
    pg.psql("DROP DATABASE ddns_v8")


def test_a_failing_run_leaves_the_database_as_it_was(pg, tmp_path):
    """The pending migrations and the functions are one transaction: a
    functions file that fails takes the migrations of the run with it."""
    db = old_db(pg, tmp_path, "ddns_v8_fail")
    broken = tmp_path / "broken" / "db"
    shutil.copytree(os.path.join(ddnsstack.ROOT, "db"), broken)
    with open(broken / "functions" / "99_broken.sql", "w") as f:
        f.write("CREATE OR REPLACE FUNCTION broken() RETURNS integer LANGUAGE sql AS $$\n"
                "    SELECT no_such_column FROM devices\n$$;\n")
    out = ddnsstack.run([str(broken / "migrate"), db], check=False)
    assert out.returncode == 1
    assert "99_broken.sql" in out.stderr and "no_such_column" in out.stderr, out.stderr
    assert psql(db, "SELECT max(version) FROM schema_version") == [[str(OLD)]]
    assert len(signatures(db, "ddns_apply_request")) == 3
    pg.psql("DROP DATABASE ddns_v8_fail")
