"""The database roles (db/functions/90_roles.sql, docs/OPERATIONS.md
"Database roles"): each program's role tries what it must not do and is
refused, and nothing changed; the owner cannot empty the append-only
tables either; admin tokens never outlive, out-rank or survive their
creator, whoever asks. What each role may do is what the rest of the
suite does through it (the harness runs the gateway, its publisher and
ddns-provision as their roles)."""
import hashlib
import json
import os
import subprocess
import urllib.error
import urllib.request

import pytest

import ddnsstack

ROOT = ddnsstack.ROOT
CTL = os.path.join(ddnsstack.BIN, "ddnsctl")


@pytest.fixture(scope="module")
def updated(stack, tmp_path_factory):
    """A device with an address (through the gateway's role), so that
    history holds rows."""
    creds = stack.provision("0A:5E:%02X:00:00:01" % (os.getpid() & 0xff))
    path = stack.write_credentials(creds, str(tmp_path_factory.mktemp("roles") / "d.json"))
    p = stack.client(path, "--ipv4", "192.0.2.77")
    assert p.stdout.strip() == "good 192.0.2.77", p.stdout + p.stderr
    return creds


def sql_as(conninfo, sql):
    """Runs sql in one psql session, stopping at the first error; returns
    (ok, output + errors)."""
    p = subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", conninfo, "-c", sql],
                       capture_output=True, text=True, timeout=30)
    return p.returncode == 0, p.stdout + p.stderr


def counts(stack):
    """The rows of the tables nobody may erase."""
    return stack.psql("SELECT (SELECT count(*) FROM history), (SELECT count(*) FROM admin_audit), "
                      "(SELECT count(*) FROM provision_batches), "
                      "(SELECT count(*) FROM admin_tokens), (SELECT count(*) FROM devices), "
                      "(SELECT count(*) FROM names)")[0]


def sha(n):
    return hashlib.sha256(("token %s" % n).encode()).hexdigest()


def refused(stack, conninfo, statements):
    """Every statement fails with the error matched by its pattern, and no
    row of the protected tables went away."""
    before = counts(stack)
    for sql, want in statements:
        ok, out = sql_as(conninfo, sql)
        assert not ok, "accepted: %s\n%s" % (sql, out)
        assert want in out, "%s: %s" % (sql, out)
    assert counts(stack) == before


# Refused to every role of a program, with the reason.
NO_SCHEMA = [
    ("ALTER TABLE devices ADD COLUMN x integer", "must be owner of table devices"),
    ("CREATE TABLE x (a integer)", "permission denied for schema public"),
    ("CREATE FUNCTION x() RETURNS integer LANGUAGE sql AS 'SELECT 1'",
     "permission denied for schema public"),
    ("DROP TABLE history", "must be owner of table history"),
    ("ALTER TABLE history DISABLE TRIGGER USER", "must be owner of table history"),
    ("CREATE OR REPLACE FUNCTION append_only_refuse() RETURNS trigger LANGUAGE plpgsql AS "
     "'BEGIN RETURN NULL; END'", "permission denied for schema public"),
    ("TRUNCATE history", "permission denied for table history"),
    ("TRUNCATE admin_audit", "permission denied for table admin_audit"),
    ("TRUNCATE provision_batches", "permission denied for table provision_batches"),
    ("DELETE FROM history", "permission denied for table history"),
    ("UPDATE history SET new_address = NULL", "permission denied for table history"),
    ("DELETE FROM admin_audit", "permission denied for table admin_audit"),
    ("UPDATE admin_audit SET actor = 'forged'", "permission denied for table admin_audit"),
    ("DELETE FROM devices", "permission denied for table devices"),
    ("DELETE FROM names", "permission denied for table names"),
    ("INSERT INTO admin_tokens (token_sha256, scope, created_by) VALUES ('%s', 'write', 'x')"
     % sha("direct"), "permission denied for table admin_tokens"),
    ("UPDATE admin_tokens SET revoked_at = NULL", "permission denied for table admin_tokens"),
    ("DELETE FROM admin_tokens", "permission denied for table admin_tokens"),
    ("GRANT ddns_gateway TO ddns_readonly_login", 'role "ddns_gateway"'),  # wording varies
]


def test_gateway_role_cannot_change_schema_erase_or_mint_tokens(stack, updated):
    refused(stack, stack.gateway_conninfo, NO_SCHEMA + [
        # a token with no creator: the owner's bootstrap only
        ("SELECT * FROM admin_token_add(NULL, 'x', 'database', '%s', 'write', NULL, '')"
         % sha("bootstrap"), "created by the database owner only"),
    ])


def test_provision_role_has_nothing_of_the_admin_api(stack, updated):
    refused(stack, stack.provision_conninfo, NO_SCHEMA + [
        ("SELECT token_sha256 FROM admin_tokens", "permission denied for table admin_tokens"),
        ("INSERT INTO admin_audit (actor, action, source) VALUES ('x', 'forged', 'x')",
         "permission denied for table admin_audit"),
        ("DELETE FROM firmware_policy", "permission denied for table firmware_policy"),
        ("UPDATE firmware_policy_state SET version = version + 1",
         "permission denied for table firmware_policy_state"),
        ("SELECT * FROM admin_token_add(1, 'x', 'x', '%s', 'write', NULL, '')" % sha("prov"),
         "permission denied for function admin_token_add"),
        ("SELECT * FROM admin_token_revoke(NULL, 'x', 'x', 1)",
         "permission denied for function admin_token_revoke"),
    ])


def test_readonly_role_writes_nothing(stack, updated):
    ro = stack.readonly_conninfo
    refused(stack, ro, NO_SCHEMA + [
        ("UPDATE devices SET status = 'revoked'", "permission denied for table devices"),
        ("INSERT INTO history (device_id, fqdn, rrtype) VALUES ('x', 'x', 'A')",
         "permission denied for table history"),
        ("DELETE FROM dns_outbox", "permission denied for table dns_outbox"),
        ("INSERT INTO dns_outbox (zone, fqdn, rrtype, ttl) VALUES ('x', 'x', 'A', 60)",
         "permission denied for table dns_outbox"),
        ("UPDATE names SET ipv4 = '192.0.2.1'", "permission denied for table names"),
        ("SELECT token_sha256 FROM admin_tokens", "permission denied for table admin_tokens"),
        ("SELECT status FROM admin_set_status(NULL, 'x', 'x', '%s', true)"
         % updated["device_id"], "permission denied for table devices"),
        ("SELECT * FROM admin_token_revoke(NULL, 'x', 'x', 1)",
         "permission denied for function admin_token_revoke"),
    ])
    # and reads what reports need
    ok, out = sql_as(ro, "SELECT count(*) FROM devices WHERE device_id = '%s'"
                     % updated["device_id"])
    assert ok and out.strip() == "1", out
    ok, out = sql_as(ro, "SELECT admin_tokens_json()::text")
    assert ok and json.loads(out)["tokens"] is not None, out


def test_owner_cannot_empty_the_append_only_tables(stack, updated):
    refused(stack, stack.conninfo, [
        ("TRUNCATE history", "history is append-only"),
        ("TRUNCATE admin_audit", "admin_audit is append-only"),
        ("TRUNCATE provision_batches", "provision_batches is append-only"),
        ("TRUNCATE history, names, devices CASCADE", "history is append-only"),
        ("DELETE FROM history", "history is append-only"),
        ("UPDATE provision_batches SET operator = 'forged'", "provision_batches is append-only"),
        ("DELETE FROM provision_batches", "provision_batches is append-only"),
    ])
    assert int(counts(stack)[0]) > 0 and int(counts(stack)[2]) > 0


def owner_token(stack, n, scope="write", expires=None):
    """A token made by the owner (the bootstrap); returns its id."""
    return int(stack.psql(
        "SELECT body->>'token_id' FROM admin_token_add(NULL, 'test', 'database', '%s', '%s', %s, "
        "'roles test')" % (sha(n), scope, "now() + interval '%s'" % expires if expires
                           else "NULL"))[0][0])


def add_as_gateway(stack, parent, n, scope="write", expires="NULL"):
    ok, out = sql_as(stack.gateway_conninfo,
                     "SELECT status, body::text FROM admin_token_add(%d, 'token %d', '127.0.0.1', "
                     "'%s', '%s', %s, '')" % (parent, parent, sha(n), scope, expires))
    assert ok, out
    status, body = out.strip().split("|", 1)
    return int(status), json.loads(body)


def test_gateway_role_creates_tokens_only_within_the_creator(stack):
    day = owner_token(stack, "day", expires="1 day")
    forever = owner_token(stack, "forever")
    reader = owner_token(stack, "reader", scope="read")
    revoked = owner_token(stack, "revoked")
    stack.psql("SELECT status FROM admin_token_revoke(NULL, 'test', 'database', %d)" % revoked)
    before = counts(stack)[3]

    # outlives its creator: refused
    st, body = add_as_gateway(stack, day, "long", expires="now() + interval '2 days'")
    assert st == 400 and body["field"] == "expires", body
    # out-ranks it: refused
    st, body = add_as_gateway(stack, reader, "up", scope="write")
    assert st == 403 and body["field"] == "scope", body
    # made by a revoked or unknown token: refused
    for parent in (revoked, 999999):
        st, body = add_as_gateway(stack, parent, "orphan-%d" % parent)
        assert st == 403, body
    assert counts(stack)[3] == before

    # no expiry asked: the creator's
    st, body = add_as_gateway(stack, day, "inherit")
    assert st == 201, body
    assert stack.psql("SELECT c.expires_at = p.expires_at, c.parent_id FROM admin_tokens c, "
                      "admin_tokens p WHERE c.token_id = %d AND p.token_id = %d"
                      % (body["token_id"], day)) == [["t", str(day)]]
    # within it: as asked; a read token makes read tokens
    st, body = add_as_gateway(stack, forever, "child", expires="now() + interval '1 hour'")
    assert st == 201, body
    st, body = add_as_gateway(stack, reader, "read-child", scope="read")
    assert st == 201 and body["scope"] == "read", body

    # the rules hold for the owner's own rows too (the trigger)
    ok, out = sql_as(stack.conninfo,
                     "INSERT INTO admin_tokens (token_sha256, scope, created_by, parent_id, "
                     "expires_at) VALUES ('%s', 'write', 'x', %d, now() + interval '3 days')"
                     % (sha("owner-long"), day))
    assert not ok and "would outlive its creator" in out, out
    ok, out = sql_as(stack.conninfo, "INSERT INTO admin_tokens (token_sha256, scope, created_by, "
                     "parent_id) VALUES ('%s', 'write', 'x', %d)" % (sha("owner-up"), reader))
    assert not ok and "cannot create one of scope write" in out, out
    ok, out = sql_as(stack.conninfo, "UPDATE admin_tokens SET revoked_at = NULL WHERE "
                     "token_id = %d" % revoked)
    assert not ok and "never undone" in out, out


def api(stack, method, path, token, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (stack.admin_port, path),
                                 method=method, data=data,
                                 headers={"Authorization": "Bearer " + token,
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, json.loads(r.read().decode())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode())


def ctl_token(stack, comment, expires=None):
    args = [CTL, "token", "create", "--db", stack.conninfo, "--scope", "write",
            "--comment", comment] + (["--expires", expires] if expires else [])
    env = {k: v for k, v in os.environ.items() if not k.startswith("DDNS")}
    p = subprocess.run(args, capture_output=True, text=True, timeout=30, env=env)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def test_tokens_made_by_a_token_die_with_it(stack):
    """Through the admin API: a write token makes a token, which makes
    another; revoking the first (by a token of its own line or not) ends
    the whole line at once, and a token cannot be made to outlive its
    creator."""
    root = ctl_token(stack, "roles root", expires="2d")
    other = ctl_token(stack, "roles other")
    st, child = api(stack, "POST", "/api/v1/tokens", root, {"scope": "write",
                                                            "comment": "child"})
    assert st == 201, child
    assert child["expires"] is not None          # its creator's
    st, grandchild = api(stack, "POST", "/api/v1/tokens", child["token"],
                         {"scope": "read", "comment": "grandchild"})
    assert st == 201, grandchild
    st, body = api(stack, "POST", "/api/v1/tokens", child["token"],
                   {"scope": "write", "expires": "30d", "comment": "too long"})
    assert st == 400 and body.get("field") == "expires", body
    for tok in (child["token"], grandchild["token"]):
        assert api(stack, "GET", "/api/v1/whoami", tok)[0] == 200

    root_id = api(stack, "GET", "/api/v1/whoami", root)[1]["token_id"]
    st, body = api(stack, "DELETE", "/api/v1/tokens/%d" % root_id, other)
    assert st == 200, body
    for tok in (root, child["token"], grandchild["token"]):
        assert api(stack, "GET", "/api/v1/whoami", tok)[0] == 401
    assert api(stack, "GET", "/api/v1/whoami", other)[0] == 200
    states = {t["token_id"]: t["state"] for t in
              api(stack, "GET", "/api/v1/tokens", other)[1]["tokens"]}
    assert states[child["token_id"]] == states[grandchild["token_id"]] == "revoked"


def test_roles_are_named_per_deployment(stack):
    """db/migrate --role-prefix: another database of the cluster gets its
    own group roles, NOLOGIN; the prefix is chosen once."""
    conninfo = stack.conninfo.replace("dbname=ddns", "dbname=ddns_roles_prefix")
    stack.psql("DROP DATABASE IF EXISTS ddns_roles_prefix")
    stack.psql("CREATE DATABASE ddns_roles_prefix")
    migrate = os.path.join(ROOT, "db", "migrate")
    ddnsstack.run([migrate, "--role-prefix", "staging", conninfo])
    rows = stack.psql("SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'staging%' "
                      "ORDER BY 1")
    assert rows == [["staging_gateway", "f"], ["staging_provision", "f"],
                    ["staging_readonly", "f"]]
    ok, out = sql_as(conninfo, "SELECT prefix FROM db_roles")
    assert ok and out.strip() == "staging"
    # ddns_gateway has nothing in it
    ok, out = sql_as(conninfo.replace("user=ddns", "user=ddns_gateway_login"),
                     "SELECT count(*) FROM devices")
    assert not ok and "permission denied for table devices" in out, out
    again = ddnsstack.run([migrate, "--role-prefix", "staging", conninfo])
    assert "0 migration(s) applied" in again.stdout
    other = ddnsstack.run([migrate, "--role-prefix", "prod", conninfo], check=False)
    assert other.returncode == 1 and "not prod_*" in other.stderr, other.stderr
    bad = ddnsstack.run([migrate, "--role-prefix", "Bad-Name", conninfo], check=False)
    assert bad.returncode == 2
