"""The admin API (/api/v1 on the admin listener, docs/ADMIN-API.md) and
ddnsctl, against the real gateway, PostgreSQL and Knot DNS.

Each test checks the answer, and for writes what changed in the database,
in DNS, in the gateway's answers to the device, and in the audit log. The
module runs its own stack, because it changes the firmware policy that
every gateway of a database enforces."""
import hashlib
import json
import os
import subprocess
import time
import urllib.error
import urllib.request

import pytest

import ddnsstack

ZONE = ddnsstack.ZONE
CTL = os.path.join(ddnsstack.BIN, "ddnsctl")
# ddns-client's User-Agent names the SDK's version, which the gateway
# records as the device's firmware
with open(os.path.join(ddnsstack.ROOT, "firmware-sdk", "include", "ddns_sdk.h")) as _h:
    SDK_VERSION = next(line.split('"')[1] for line in _h
                       if line.startswith("#define DDNS_SDK_VERSION "))


@pytest.fixture(scope="module")
def stack():
    with ddnsstack.started("ddns-admin-", "admin") as s:
        yield s


def ctl(stack, *args, token=None, env_extra=None, check=None):
    """Runs ddnsctl; returns the CompletedProcess."""
    env = dict(os.environ)
    env.pop("DDNS_DB", None)
    env["DDNSCTL_URL"] = "http://127.0.0.1:%d" % stack.admin_port
    env["DDNSCTL_CONFIG"] = "/dev/null"
    if token is not None:
        env["DDNSCTL_TOKEN"] = token
    env.update(env_extra or {})
    p = subprocess.run([CTL] + list(args), capture_output=True, text=True, timeout=30, env=env)
    if check is not None:
        assert p.returncode == check, (p.returncode, p.stdout, p.stderr)
    return p


def make_token(stack, scope="write", comment="test", expires=None):
    """A token made directly in the database with ddnsctl (the bootstrap)."""
    args = ["token", "create", "--db", stack.conninfo, "--scope", scope, "--comment", comment]
    if expires:
        args += ["--expires", expires]
    p = ctl(stack, *args, check=0)
    tok = p.stdout.strip()
    assert tok.startswith("ddnsadm_") and len(tok) == 51, p.stdout
    return tok


@pytest.fixture(scope="module")
def wtok(stack):
    return make_token(stack, "write", "ops write")


@pytest.fixture(scope="module")
def rtok(stack):
    return make_token(stack, "read", "ops read")


def api(stack, method, path, body=None, token=None, raw=None):
    """One admin API request; returns (status, decoded JSON answer)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (stack.admin_port, path),
                                 method=method, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            status, text = r.status, r.read().decode()
            ctype = r.headers.get("Content-Type")
    except urllib.error.HTTPError as e:
        status, text, ctype = e.code, e.read().decode(), e.headers.get("Content-Type")
    assert ctype == "application/json", (status, ctype, text)
    return status, json.loads(text)


_macs = iter(range(1, 10000))


def new_device(stack, tmp_path, serial=None, model=None, name=None):
    n = next(_macs)
    mac = "0A:1B:2C:%02X:%02X:%02X" % (os.getpid() & 0xff, n >> 8, n & 0xff)
    extra = []
    if serial:
        extra += ["--serial", serial]
    if model:
        extra += ["--model", model]
    creds = stack.provision(mac, name=name, extra=extra)
    path = stack.write_credentials(creds, str(tmp_path / ("dev%d.json" % n)))
    fqdn = creds["fqdn"]
    return creds, path, mac, fqdn


_last_ts = [0]


def update(stack, cred_file, ipv4):
    """One signed update; each with a newer timestamp, so that two in the
    same second are not replays."""
    _last_ts[0] = max(_last_ts[0] + 1, int(time.time()))
    p = stack.client(cred_file, "--ipv4", ipv4, "--timestamp", str(_last_ts[0]))
    return p.stdout.strip() or "error: " + p.stderr.strip()[-300:]


def wait_for(fn, timeout=15.0):
    """Polls fn until it returns a true value; returns the last value."""
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() > deadline:
            return v
        time.sleep(0.1)


def audit_rows(stack, action, device_id=None):
    sql = ("SELECT token_id, actor, source, detail::text FROM admin_audit WHERE action = '%s'"
           % action)
    if device_id:
        sql += " AND device_id = '%s'" % device_id
    return stack.psql(sql + " ORDER BY audit_id")


# ---- authentication and scopes ----------------------------------------------

def test_token_is_stored_only_as_its_hash_and_whoami(stack, wtok):
    st, j = api(stack, "GET", "/api/v1/whoami", token=wtok)
    assert st == 200 and j["scope"] == "write" and j["comment"] == "ops write"
    assert j["expires"] is None
    rows = stack.psql("SELECT token_sha256 FROM admin_tokens WHERE token_id = %d" % j["token_id"])
    assert rows == [[hashlib.sha256(wtok.encode()).hexdigest()]]
    dump = "\n".join("\t".join(r) for r in stack.psql("SELECT * FROM admin_tokens"))
    assert wtok not in dump and wtok[8:] not in dump
    assert audit_rows(stack, "token-create")[0][2] == "database"


@pytest.mark.parametrize("auth", [None, "Bearer", "Bearer ddnsadm_" + "x" * 43, "Basic abc"])
def test_missing_or_unknown_token_is_401(stack, auth):
    headers = {"Authorization": auth} if auth else {}
    req = urllib.request.Request("http://127.0.0.1:%d/api/v1/devices" % stack.admin_port,
                                 headers=headers)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 401
    assert e.value.headers["WWW-Authenticate"].startswith("Bearer")
    assert "error" in json.loads(e.value.read())


def test_expired_and_revoked_tokens_are_refused(stack, wtok):
    exp = make_token(stack, "write", "soon expired", expires="1h")
    assert api(stack, "GET", "/api/v1/whoami", token=exp)[0] == 200
    stack.psql("UPDATE admin_tokens SET expires_at = now() - interval '1 second' "
               "WHERE comment = 'soon expired'")
    st, j = api(stack, "GET", "/api/v1/whoami", token=exp)
    assert st == 401 and "expired" in j["error"]

    st, j = api(stack, "POST", "/api/v1/tokens", {"scope": "read", "comment": "to revoke"},
                token=wtok)
    assert st == 201 and j["token"].startswith("ddnsadm_")
    tok, tid = j["token"], j["token_id"]
    assert api(stack, "GET", "/api/v1/devices", token=tok)[0] == 200
    st, j = api(stack, "DELETE", "/api/v1/tokens/%d" % tid, token=wtok)
    assert st == 200 and j["token_id"] == tid and j["revoked"]
    assert api(stack, "GET", "/api/v1/devices", token=tok)[0] == 401
    st, j = api(stack, "GET", "/api/v1/tokens", token=wtok)
    listed = {t["token_id"]: t for t in j["tokens"]}
    assert listed[tid]["state"] == "revoked" and "token" not in listed[tid]
    assert audit_rows(stack, "token-revoke")[-1][3] == '{"token_id": %d}' % tid
    assert api(stack, "DELETE", "/api/v1/tokens/999999", token=wtok)[0] == 404


WRITES = [
    ("POST", "/api/v1/devices/0a1b2c000001/revoke", None),
    ("POST", "/api/v1/devices/0a1b2c000001/restore", None),
    ("POST", "/api/v1/devices/0a1b2c000001/republish", None),
    ("POST", "/api/v1/devices/0a1b2c000001/names", {"name": "x1"}),
    ("PUT", "/api/v1/devices/0a1b2c000001/names/a." + ZONE, {"name": "x2"}),
    ("PUT", "/api/v1/devices/0a1b2c000001/ttl", {"ttl": 60}),
    ("POST", "/api/v1/devices/0a1b2c000001/reissue", {"kid": "k1"}),
    ("POST", "/api/v1/devices/0a1b2c000001/dyndns2", {"allowed": False}),
    ("PUT", "/api/v1/policy", {"blocked_models": []}),
    ("POST", "/api/v1/tokens", {"scope": "write"}),
    ("DELETE", "/api/v1/tokens/1", None),
]


@pytest.mark.parametrize("method,path,body", WRITES)
def test_read_token_cannot_write(stack, rtok, method, path, body):
    before = stack.psql("SELECT count(*) FROM admin_audit")
    st, j = api(stack, method, path, body, token=rtok)
    assert st == 403 and "write" in j["error"]
    assert stack.psql("SELECT count(*) FROM admin_audit") == before


@pytest.mark.parametrize("path", ["/api/v1/whoami", "/api/v1/devices", "/api/v1/fleet",
                                  "/api/v1/fleet/failing", "/api/v1/policy", "/api/v1/audit",
                                  "/api/v1/tokens"])
def test_read_token_reads(stack, rtok, path):
    assert api(stack, "GET", path, token=rtok)[0] == 200


def test_unknown_path_and_method(stack, wtok):
    assert api(stack, "GET", "/api/v1/nothing", token=wtok)[0] == 404
    assert api(stack, "GET", "/api/v2/devices", token=wtok)[0] == 404
    req = urllib.request.Request("http://127.0.0.1:%d/api/v1/fleet" % stack.admin_port,
                                 method="DELETE", headers={"Authorization": "Bearer " + wtok})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 405 and e.value.headers["Allow"] == "GET"


# ---- input validation --------------------------------------------------------

BAD = [
    ("GET", "/api/v1/devices?limit=0", None, "limit"),
    ("GET", "/api/v1/devices?limit=x", None, "limit"),
    ("GET", "/api/v1/devices?offset=-1", None, "offset"),
    ("GET", "/api/v1/devices?sort=secret", None, "sort"),
    ("GET", "/api/v1/devices?order=up", None, "order"),
    ("GET", "/api/v1/devices?status=lost", None, "status"),
    ("GET", "/api/v1/devices?mac=zz", None, "mac"),
    ("GET", "/api/v1/devices?addr=1.2.3", None, "addr"),
    ("GET", "/api/v1/devices?kid=K-1", None, "kid"),
    ("GET", "/api/v1/devices?batch=abc", None, "batch"),
    ("GET", "/api/v1/devices?seen_after=yesterday", None, "seen_after"),
    ("GET", "/api/v1/devices?seen_before=2026-13-01", None, "seen_before"),
    ("GET", "/api/v1/devices/not-a-mac", None, "device_id"),
    ("GET", "/api/v1/devices/ff:ff:ff:ff:ff:ff", None, "device_id"),
    ("GET", "/api/v1/fleet?not_seen_days=0", None, "not_seen_days"),
    ("GET", "/api/v1/fleet/failing?limit=5000", None, "limit"),
    ("GET", "/api/v1/audit?limit=-3", None, "limit"),
    ("POST", "/api/v1/devices/0a1b2c000001/names", {}, "name"),
    ("POST", "/api/v1/devices/0a1b2c000001/names", {"name": 5}, "name"),
    ("POST", "/api/v1/devices/0a1b2c000001/names", {"name": "-bad"}, "name"),
    ("POST", "/api/v1/devices/0a1b2c000001/names", {"name": "ok.other.zone"}, "name"),
    ("PUT", "/api/v1/devices/0a1b2c000001/names/short", {"name": "x"}, "name"),
    ("PUT", "/api/v1/devices/0a1b2c000001/ttl", {"ttl": 0}, "ttl"),
    ("PUT", "/api/v1/devices/0a1b2c000001/ttl", {"ttl": "60"}, "ttl"),
    ("PUT", "/api/v1/devices/0a1b2c000001/ttl", {}, "ttl"),
    ("POST", "/api/v1/devices/0a1b2c000001/reissue", {"kid": "K2!"}, "kid"),
    ("POST", "/api/v1/devices/0a1b2c000001/reissue", {"kid": "k77"}, "kid"),
    ("POST", "/api/v1/devices/0a1b2c000001/dyndns2", {}, "allowed"),
    ("POST", "/api/v1/devices/0a1b2c000001/dyndns2", {"allowed": 0}, "allowed"),
    ("PUT", "/api/v1/policy", {"blocked_models": "AcmeCam"}, "blocked_models"),
    ("PUT", "/api/v1/policy", {"signed_only_models": "AcmeCam"}, "signed_only_models"),
    ("PUT", "/api/v1/policy", {"signed_only_models": ["a b"]}, "signed_only_models"),
    ("PUT", "/api/v1/policy", {"blocked_models": ["a/b"]}, "blocked_models"),
    ("PUT", "/api/v1/policy", {"min_firmware": {"AcmeCam": "v2"}}, "min_firmware"),
    ("PUT", "/api/v1/policy", {"min_firmware": ["x"]}, "min_firmware"),
    ("POST", "/api/v1/tokens", {"scope": "admin"}, "scope"),
    ("POST", "/api/v1/tokens", {"scope": "read", "expires": "soon"}, "expires"),
    ("POST", "/api/v1/tokens", {"scope": "read", "expires": "2001-01-01"}, "expires"),
    ("POST", "/api/v1/tokens", {"scope": "read", "comment": "a\nb"}, "comment"),
    ("DELETE", "/api/v1/tokens/abc", None, "token_id"),
]


@pytest.mark.parametrize("method,path,body,field", BAD)
def test_bad_input_is_400_with_the_field(stack, wtok, method, path, body, field):
    before = stack.psql("SELECT count(*) FROM admin_audit")
    st, j = api(stack, method, path, body, token=wtok)
    assert (st, j.get("field")) == (400, field), j
    assert j["error"]
    assert stack.psql("SELECT count(*) FROM admin_audit") == before


def test_body_must_be_a_json_object(stack, wtok):
    st, j = api(stack, "PUT", "/api/v1/devices/0a1b2c000001/ttl", raw=b"{ttl:", token=wtok)
    assert (st, j["field"]) == (400, "body")
    st, j = api(stack, "PUT", "/api/v1/devices/0a1b2c000001/ttl", raw=b"[1]", token=wtok)
    assert (st, j["field"]) == (400, "body")


def test_unknown_device_is_404(stack, wtok):
    for method, path, body in [("GET", "/api/v1/devices/0e0000000001", None),
                               ("POST", "/api/v1/devices/0e0000000001/revoke", None),
                               ("POST", "/api/v1/devices/0e0000000001/names", {"name": "q." + ZONE}),
                               ("PUT", "/api/v1/devices/0e0000000001/ttl", {"ttl": 5})]:
        st, j = api(stack, method, path, body, token=wtok)
        assert st == 404 and j["field"] == "device_id", (path, j)


# ---- devices -----------------------------------------------------------------

def test_search_by_every_filter(stack, wtok, tmp_path):
    c1, f1, mac1, fqdn1 = new_device(stack, tmp_path, serial="SRCH-0001", model="AcmeCam-S1")
    c2, f2, mac2, fqdn2 = new_device(stack, tmp_path, serial="SRCH-0002", model="AcmeCam-S2")
    assert update(stack, f1, "198.51.100.71").startswith("good")
    id1 = c1["device_id"]

    def ids(query):
        st, j = api(stack, "GET", "/api/v1/devices?" + query, token=wtok)
        assert st == 200, j
        return [d["device_id"] for d in j["devices"]]

    # q: MAC forms and parts, hostname, serial, address
    for q in [mac1, mac1.lower().replace(":", "-"), id1, id1[:4] + "." + id1[4:8] + "." + id1[8:]]:
        assert ids("q=" + urllib.request.quote(q)) == [id1], q
    assert ids("q=" + urllib.request.quote(mac1[-8:])) == [id1]      # "3F:9A:21"
    assert ids("q=" + fqdn1.split(".")[0][:7]) == [id1]               # a label's beginning
    assert ids("q=" + fqdn1) == [id1]
    assert ids("q=SRCH-0002") == [c2["device_id"]]
    assert sorted(ids("q=SRCH-000")) == sorted([id1, c2["device_id"]])
    assert ids("q=198.51.100.71") == [id1]
    # one filter each
    assert ids("mac=" + mac1[-5:].replace(":", "")) == [id1]
    assert ids("serial=SRCH-0001") == [id1]
    assert ids("hostname=" + fqdn2) == [c2["device_id"]]
    assert ids("model=acmecam-s2") == [c2["device_id"]]
    assert ids("addr=198.51.100.71") == [id1]
    assert id1 in ids("firmware=%s&serial=SRCH" % SDK_VERSION)
    assert ids("firmware=%s&serial=SRCH" % SDK_VERSION) == [id1]
    assert ids("kid=k1&serial=SRCH&sort=serial&order=desc") == [c2["device_id"], id1]
    assert ids("status=never&serial=SRCH") == [c2["device_id"]]
    assert ids("seen_after=2000-01-01&serial=SRCH") == [id1]
    assert ids("seen_before=2000-01-01T00:00:00Z&serial=SRCH") == []
    batch = api(stack, "GET", "/api/v1/devices/" + id1, token=wtok)[1]["batch"]
    assert ids("batch=%d" % batch) == [id1]
    # paging: total counts every match, limit/offset cut the list
    st, j = api(stack, "GET", "/api/v1/devices?serial=SRCH&limit=1&offset=1", token=wtok)
    assert (j["total"], len(j["devices"]), j["devices"][0]["device_id"]) == (2, 1, c2["device_id"])
    d = api(stack, "GET", "/api/v1/devices?q=" + id1, token=wtok)[1]["devices"][0]
    assert d["mac"] == mac1 and d["serial"] == "SRCH-0001" and d["model"] == "AcmeCam-S1"
    assert d["names"] == [fqdn1] and d["ipv4"] == "198.51.100.71" and d["status"] == "active"
    assert d["kid"] == "k1" and d["last_result"] == "good" and d["firmware"] == SDK_VERSION
    assert d["first_seen"] and d["last_seen"]


def test_device_detail_with_history_and_actions(stack, wtok, tmp_path):
    c, f, mac, fqdn = new_device(stack, tmp_path)
    assert update(stack, f, "198.51.100.1").startswith("good")
    assert update(stack, f, "198.51.100.2").startswith("good")
    assert api(stack, "POST", "/api/v1/devices/%s/republish" % mac, token=wtok)[0] == 200
    st, j = api(stack, "GET", "/api/v1/devices/" + mac.replace(":", "-").lower(), token=wtok)
    assert st == 200
    assert j["device_id"] == c["device_id"] and j["user_agent"].startswith("ddns-client/")
    # how old last_seen may be: the gateway's [database] seen_interval
    assert j["last_seen_interval"] == 60
    assert [h["ipv4"] for h in j["history"]] == ["198.51.100.2", "198.51.100.1"]
    assert all(h["source"] == "127.0.0.1" and h["fqdn"] == fqdn for h in j["history"])
    acts = [a["action"] for a in j["actions"]]
    assert acts[0] == "republish" and "provision issue" in acts
    assert j["actions"][0]["actor"] == "token %d (ops write)" % api(
        stack, "GET", "/api/v1/whoami", token=wtok)[1]["token_id"]
    assert j["actions"][0]["source"] == "127.0.0.1"


def test_revoke_refuses_updates_and_removes_records_restore_accepts(stack, wtok, tmp_path):
    c, f, mac, fqdn = new_device(stack, tmp_path)
    assert update(stack, f, "198.51.100.9").startswith("good")
    assert stack.wait_dns(fqdn, "A", ["198.51.100.9"]) == ["198.51.100.9"]
    st, j = api(stack, "POST", "/api/v1/devices/%s/revoke" % c["device_id"], token=wtok)
    assert st == 200 and j["status"] == "revoked" and j["records_removed"] == 1
    assert stack.wait_dns(fqdn, "A", []) == []
    assert update(stack, f, "198.51.100.10") == "disabled"
    st, j = api(stack, "POST", "/api/v1/devices/%s/revoke" % c["device_id"], token=wtok)
    assert st == 200 and j["changed"] is False
    st, j = api(stack, "POST", "/api/v1/devices/%s/restore" % c["device_id"], token=wtok)
    assert st == 200 and j["status"] == "active"
    assert update(stack, f, "198.51.100.11").startswith("good")
    assert stack.wait_dns(fqdn, "A", ["198.51.100.11"]) == ["198.51.100.11"]
    rows = audit_rows(stack, "revoke", c["device_id"])
    assert len(rows) == 2 and rows[0][2] == "127.0.0.1" and "ops write" in rows[0][1]


def test_add_and_rename_names_with_uniqueness(stack, wtok, tmp_path):
    c, f, mac, fqdn = new_device(stack, tmp_path)
    other, _, _, other_fqdn = new_device(stack, tmp_path)
    assert update(stack, f, "198.51.100.20").startswith("good")
    base = "/api/v1/devices/%s/names" % c["device_id"]
    label = "extra-%s" % c["device_id"]
    st, j = api(stack, "POST", base, {"name": label}, token=wtok)
    assert st == 201 and j["name"] == "%s.%s" % (label, ZONE)
    assert stack.wait_dns(j["name"], "A", ["198.51.100.20"]) == ["198.51.100.20"]
    st, j = api(stack, "POST", base, {"name": other_fqdn}, token=wtok)
    assert st == 409 and j["field"] == "name" and "another device" in j["error"]
    st, j = api(stack, "POST", base, {"name": fqdn.upper()}, token=wtok)
    assert st == 409
    newer = "renamed-%s.%s" % (c["device_id"], ZONE)
    st, j = api(stack, "PUT", "%s/%s.%s" % (base, label, ZONE), {"name": newer}, token=wtok)
    assert st == 200 and j["previous_name"] == "%s.%s" % (label, ZONE)
    assert stack.wait_dns(newer, "A", ["198.51.100.20"]) == ["198.51.100.20"]
    assert stack.wait_dns("%s.%s" % (label, ZONE), "A", []) == []
    st, j = api(stack, "PUT", "%s/nothere.%s" % (base, ZONE), {"name": "zz"}, token=wtok)
    assert st == 404 and j["field"] == "name"
    names = stack.psql("SELECT label || '.' || zone FROM names WHERE device_id = '%s' "
                       "ORDER BY name_id" % c["device_id"])
    assert names == [[fqdn], [newer]]
    assert [r[3] for r in audit_rows(stack, "rename", c["device_id"])] == [
        '{"name": "%s", "previous_name": "%s.%s"}' % (newer, label, ZONE)]


def test_ttl_and_republish(stack, wtok, tmp_path):
    c, f, mac, fqdn = new_device(stack, tmp_path)
    assert update(stack, f, "198.51.100.30").startswith("good")
    st, j = api(stack, "PUT", "/api/v1/devices/%s/ttl" % mac, {"ttl": 321}, token=wtok)
    assert st == 200 and j["records_queued"] == 1
    assert stack.outbox_empty()
    out = subprocess.run(["dig", "+noall", "+answer", "-p", str(stack.dns_port), "@127.0.0.1",
                          fqdn, "A"], capture_output=True, text=True, timeout=10).stdout
    assert out.split()[1] == "321", out
    st, j = api(stack, "PUT", "/api/v1/devices/%s/ttl" % mac, {"ttl": None}, token=wtok)
    assert st == 200 and j["ttl"] is None
    assert stack.psql("SELECT ttl IS NULL FROM names WHERE device_id = '%s'"
                      % c["device_id"]) == [["t"]]
    st, j = api(stack, "POST", "/api/v1/devices/%s/republish" % mac, token=wtok)
    assert st == 200 and j["records_queued"] == 1
    assert stack.outbox_empty()
    assert stack.dig(fqdn) == ["198.51.100.30"]


def test_reissue_moves_the_key_id(stack, wtok, tmp_path):
    c, f, mac, fqdn = new_device(stack, tmp_path)
    assert update(stack, f, "198.51.100.40").startswith("good")
    stack.make_keys("k2")
    stack.procs["gateway"].send_signal(1)   # SIGHUP: the gateway loads k2
    assert wait_for(lambda: "2 master key(s)" in stack.gateway_log())
    st, j = api(stack, "POST", "/api/v1/devices/%s/reissue" % mac, {"kid": "k2"}, token=wtok)
    assert st == 200 and (j["kid"], j["previous_kid"], j["changed"]) == ("k2", "k1", True)
    assert (j["generation"], j["previous_generation"], j["key_ref"]) == (2, 1, "k2/2")
    assert "secret" not in json.dumps(j) and "password" not in json.dumps(j)
    assert update(stack, f, "198.51.100.41") == "badauth"
    show = subprocess.run([os.path.join(ddnsstack.BIN, "ddns-provision"), "show", "--mac", mac,
                           "--key-dir", stack.key_dir, "--db", stack.provision_conninfo],
                          capture_output=True, text=True, timeout=30)
    assert show.returncode == 0, show.stderr
    f2 = stack.write_credentials(json.loads(show.stdout), str(tmp_path / "k2.json"))
    assert update(stack, f2, "198.51.100.41").startswith("good")
    assert audit_rows(stack, "reissue", c["device_id"])[0][3] == \
        '{"kid": "k2", "generation": 2, "previous_kid": "k1", "previous_generation": 1}'


# ---- fleet -------------------------------------------------------------------

def test_fleet_counts_per_minute_and_outbox(stack, wtok, tmp_path):
    c, f, mac, fqdn = new_device(stack, tmp_path, model="AcmeCam-F1")
    assert update(stack, f, "198.51.100.50").startswith("good")
    assert update(stack, f, "198.51.100.50").startswith("nochg")
    stack.psql("UPDATE devices SET last_seen = now() - interval '40 days', "
               "seen_day = current_date - 40 WHERE device_id = '%s'" % c["device_id"])
    devices = int(stack.psql("SELECT count(*) FROM devices")[0][0])
    st, j = api(stack, "GET", "/api/v1/fleet?not_seen_days=30", token=wtok)
    assert st == 200
    assert j["devices"] == devices == sum(j["by_status"].values()) == sum(j["by_kid"].values())
    assert j["by_model"]["AcmeCam-F1"] == 1 and sum(j["by_model"].values()) == devices
    assert j["by_firmware"][SDK_VERSION] >= 1
    assert j["not_seen"] == {"days": 30, "count": 1}
    assert set(j["outbox"]) == {"depth", "oldest_age_s"}
    assert len(j["per_minute"]) == 60
    # the counts kept by triggers equal a count of the table, before and
    # after the deltas are folded
    by_status = dict(stack.psql("SELECT status, count(*) FROM devices GROUP BY status"))
    assert j["by_status"] == {k: int(v) for k, v in by_status.items()}
    by_fw = dict(stack.psql("SELECT coalesce(firmware, ''), count(*) FROM devices GROUP BY 1"))
    assert j["by_firmware"] == {k: int(v) for k, v in by_fw.items()}
    stack.psql("SELECT admin_fleet_compact()")
    assert stack.psql("SELECT count(*) <= 20 FROM fleet_deltas") == [["t"]]
    again = api(stack, "GET", "/api/v1/fleet?not_seen_days=30", token=wtok)[1]
    for k in ("devices", "by_status", "by_model", "by_firmware", "by_kid", "not_seen"):
        assert again[k] == j[k], k
    # the gateway flushes its counters every few seconds
    total = lambda: sum(m["updates"] for m in api(stack, "GET", "/api/v1/fleet",
                                                     token=wtok)[1]["per_minute"])
    assert wait_for(lambda: total() >= 2)
    assert update(stack, f, "198.51.100.50").startswith("nochg")
    before = total()
    stack.psql("UPDATE devices SET status = 'revoked' WHERE device_id = '%s'" % c["device_id"])
    assert update(stack, f, "198.51.100.51") == "disabled"
    errors = lambda: sum(m["errors"] for m in api(stack, "GET", "/api/v1/fleet",
                                                   token=wtok)[1]["per_minute"])
    assert wait_for(lambda: errors() >= 1 and total() >= before + 1)
    # the failing list names it, with its source address
    st, j = api(stack, "GET", "/api/v1/fleet/failing?limit=50", token=wtok)
    mine = [d for d in j["devices"] if d["device_id"] == c["device_id"]]
    assert mine and mine[0]["last_result"] == "disabled" and mine[0]["fail_count"] == 1
    assert any(s["source"] == "127.0.0.1" for s in j["sources"])
    st, j = api(stack, "GET", "/api/v1/devices?status=failing&model=AcmeCam-F1", token=wtok)
    assert [d["device_id"] for d in j["devices"]] == [c["device_id"]]

    # failed authentications (a wrong secret never reaches the database)
    # rank their source address too, counted by the gateway
    def auth_failures():
        srcs = api(stack, "GET", "/api/v1/fleet/failing", token=wtok)[1]["sources"]
        return sum(x["auth_failures"] for x in srcs if x["source"] == "127.0.0.1")
    before = auth_failures()
    wrong = {"device_id": c["device_id"], "kid": c["kid"], "secret": "A" * 43}
    wf = stack.write_credentials(wrong, str(tmp_path / "wrong.json"))
    assert update(stack, wf, "198.51.100.52") == "badauth"
    assert update(stack, wf, "198.51.100.52") == "badauth"
    assert wait_for(lambda: auth_failures() >= before + 2)


# ---- firmware policy ---------------------------------------------------------

def test_policy_from_the_api_is_enforced_and_audited(stack, wtok, tmp_path):
    c, f, mac, fqdn = new_device(stack, tmp_path)
    assert update(stack, f, "198.51.100.60").startswith("good")
    st, j = api(stack, "GET", "/api/v1/policy", token=wtok)
    assert st == 200 and "config" in j
    # ddns-client says "ddns-client/" + SDK_VERSION
    st, j = api(stack, "PUT", "/api/v1/policy",
                {"blocked_models": ["AcmeCam-Q1"], "min_firmware": {"ddns-client": "9.0"}},
                token=wtok)
    assert st == 200 and j["blocked_models"] == ["acmecam-q1"]
    assert j["min_firmware"] == {"ddns-client": "9.0"}
    assert wait_for(lambda: update(stack, f, "198.51.100.61") == "badagent")
    st, j = api(stack, "PUT", "/api/v1/policy", {"blocked_models": [], "min_firmware": {}},
                token=wtok)
    assert st == 200 and j["blocked_models"] == [] and j["min_firmware"] == {}
    assert wait_for(lambda: update(stack, f, "198.51.100.62").startswith("good"))
    rows = audit_rows(stack, "policy")
    assert len(rows) >= 2 and '"ddns-client": "9.0"' in rows[-2][3]
    # the [firmware] section of the configuration still applies
    assert "AcmeCam-X1" in api(stack, "GET", "/api/v1/policy",
                               token=wtok)[1]["config"]["blocked_models"]


# ---- audit -------------------------------------------------------------------

def test_audit_log_lists_writes_newest_first(stack, wtok, tmp_path):
    c, f, mac, fqdn = new_device(stack, tmp_path)
    assert api(stack, "POST", "/api/v1/devices/%s/revoke" % mac, token=wtok)[0] == 200
    assert api(stack, "POST", "/api/v1/devices/%s/restore" % mac, token=wtok)[0] == 200
    st, j = api(stack, "GET", "/api/v1/audit?limit=2", token=wtok)
    assert st == 200 and len(j["entries"]) == 2 and j["total"] >= 2
    e = j["entries"]
    assert [x["action"] for x in e] == ["restore", "revoke"]
    assert e[0]["device_id"] == c["device_id"] and e[0]["source"] == "127.0.0.1"
    assert e[0]["actor"].endswith("(ops write)") and e[0]["at"] >= e[1]["at"]
    st, j = api(stack, "GET", "/api/v1/audit?device=" + mac, token=wtok)
    assert [x["action"] for x in j["entries"]] == ["restore", "revoke"]
    with pytest.raises(Exception):
        stack.psql("DELETE FROM admin_audit")


# ---- ddnsctl -----------------------------------------------------------------

def test_ddnsctl_end_to_end(stack, tmp_path):
    # the first token straight in the database, then everything through the API
    tok = make_token(stack, "write", "ddnsctl e2e")
    c, f, mac, fqdn = new_device(stack, tmp_path, serial="CTL-1", model="AcmeCam-C1")
    assert update(stack, f, "198.51.100.80").startswith("good")

    p = ctl(stack, "whoami", token=tok, check=0)
    assert "scope: write" in p.stdout and tok not in p.stdout
    p = ctl(stack, "devices", "-q", mac[-8:], token=tok, check=0)
    assert p.stdout.splitlines()[0].split()[:3] == ["MAC", "SERIAL", "MODEL"]
    assert mac in p.stdout and "CTL-1" in p.stdout and "(1 shown of 1)" in p.stdout
    p = ctl(stack, "--json", "devices", "--serial", "CTL-1", token=tok, check=0)
    assert json.loads(p.stdout)["devices"][0]["device_id"] == c["device_id"]
    p = ctl(stack, "show", mac, token=tok, check=0)
    assert "198.51.100.80" in p.stdout and "address history" in p.stdout

    # revoke: the gateway refuses the device's next update; restore: accepted
    p = ctl(stack, "revoke", mac, token=tok, check=0)
    assert "status: revoked" in p.stdout
    assert update(stack, f, "198.51.100.81") == "disabled"
    assert stack.wait_dns(fqdn, "A", []) == []
    p = ctl(stack, "restore", mac, "--json", token=tok, check=0)
    assert json.loads(p.stdout)["status"] == "active"
    assert update(stack, f, "198.51.100.82").startswith("good")
    assert stack.wait_dns(fqdn, "A", ["198.51.100.82"]) == ["198.51.100.82"]

    p = ctl(stack, "add-name", mac, "ctl-%s" % c["device_id"], token=tok, check=0)
    assert "changed: yes" in p.stdout
    p = ctl(stack, "rename", mac, "ctl-%s.%s" % (c["device_id"], ZONE), "ctl2-" + c["device_id"],
            token=tok, check=0)
    p = ctl(stack, "add-name", mac, fqdn, token=tok, check=1)
    assert "409" in p.stderr and "field 'name'" in p.stderr
    ctl(stack, "ttl", mac, "90", token=tok, check=0)
    ctl(stack, "ttl", mac, "default", token=tok, check=0)
    ctl(stack, "republish", mac, token=tok, check=0)
    p = ctl(stack, "fleet", token=tok, check=0)
    assert "by status:" in p.stdout and "outbox:" in p.stdout
    assert json.loads(ctl(stack, "fleet", "--json", token=tok, check=0).stdout)["devices"] >= 1
    ctl(stack, "failing", token=tok, check=0)
    fleet = json.loads(ctl(stack, "fleet", "--not-seen-days", "3", "--json", token=tok,
                           check=0).stdout)
    assert fleet["not_seen"]["days"] == 3
    failing = json.loads(ctl(stack, "failing", "--limit", "1", "--json", token=tok,
                             check=0).stdout)
    assert len(failing["devices"]) <= 1 and len(failing["sources"]) <= 1
    p = ctl(stack, "policy", "set", "--block", "AcmeCam-C9", token=tok, check=0)
    assert "acmecam-c9" in p.stdout
    p = ctl(stack, "policy", "set", token=tok, check=0)
    assert "blocked models (database): -" in p.stdout
    p = ctl(stack, "audit", "--limit", "3", token=tok, check=0)
    assert "policy" in p.stdout and "ddnsctl e2e" in p.stdout

    # tokens through the API: created once, listed without the secret, revoked
    p = ctl(stack, "token", "create", "--scope", "read", "--expires", "2h", token=tok, check=0)
    rtok = p.stdout.strip()
    assert rtok.startswith("ddnsadm_")
    p = ctl(stack, "revoke", mac, token=rtok, check=1)
    assert "403" in p.stderr
    p = ctl(stack, "--json", "token", "list", token=tok, check=0)
    toks = json.loads(p.stdout)["tokens"]
    assert rtok not in p.stdout
    rid = [t["token_id"] for t in toks if t["scope"] == "read" and t["state"] == "valid"][-1]
    ctl(stack, "token", "revoke", str(rid), token=tok, check=0)
    p = ctl(stack, "whoami", token=rtok, check=1)
    assert "401" in p.stderr
    p = ctl(stack, "token", "list", "--db", stack.readonly_conninfo, check=0)
    assert "revoked" in p.stdout and "ddnsctl e2e" in p.stdout

    # errors: unknown device (1), usage (2), no answer (3)
    p = ctl(stack, "show", "0e:00:00:00:00:09", token=tok, check=1)
    assert "404" in p.stderr
    ctl(stack, "show", token=tok, check=2)
    ctl(stack, "frobnicate", token=tok, check=2)
    ctl(stack, "whoami", token=tok, env_extra={"DDNSCTL_URL": "http://127.0.0.1:1"}, check=3)


def test_ddnsctl_config_file_and_help(stack, wtok, tmp_path):
    conf = tmp_path / "ddnsctl.conf"
    conf.write_text("url = http://127.0.0.1:%d\ntoken = %s\n" % (stack.admin_port, wtok))
    env = dict(os.environ)
    for k in ("DDNSCTL_URL", "DDNSCTL_TOKEN", "DDNSCTL_CONFIG"):
        env.pop(k, None)
    p = subprocess.run([CTL, "--config", str(conf), "whoami"], capture_output=True, text=True,
                       env=env, timeout=30)
    assert p.returncode == 0 and "scope: write" in p.stdout, p.stderr
    conf.write_text("colour = blue\n")
    p = subprocess.run([CTL, "--config", str(conf), "whoami"], capture_output=True, text=True,
                       env=env, timeout=30)
    assert p.returncode == 2 and ":1: unknown key 'colour'" in p.stderr
    for cmd in ["devices", "show", "revoke", "add-name", "rename", "ttl", "reissue", "dyndns2",
                "fleet", "failing", "policy", "audit", "token", "whoami"]:
        p = subprocess.run([CTL, cmd, "--help"], capture_output=True, text=True, timeout=10)
        assert p.returncode == 0 and p.stdout.startswith("Usage: ddnsctl"), cmd
    p = subprocess.run([CTL, "--help"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0 and "EXIT STATUS" in p.stdout


def test_openapi_file_lists_every_endpoint():
    """docs/admin-api.yaml describes exactly the routes the gateway serves."""
    import re
    text = open(os.path.join(ddnsstack.ROOT, "docs", "admin-api.yaml")).read()
    found, path = set(), None
    for line in text.splitlines():
        m = re.match(r"^  (/api/v1/\S+):$", line)
        if m:
            path = m.group(1)
            continue
        m = re.match(r"^    (get|post|put|delete):$", line)
        if m and path:
            found.add((m.group(1).upper(), path))
        elif re.match(r"^\S", line):
            path = None
    dev = "/api/v1/devices/{id}"
    assert found == {
        ("GET", "/api/v1/whoami"), ("GET", "/api/v1/devices"), ("GET", dev),
        ("POST", dev + "/revoke"), ("POST", dev + "/restore"), ("POST", dev + "/republish"),
        ("POST", dev + "/names"), ("PUT", dev + "/names/{old}"), ("PUT", dev + "/ttl"),
        ("POST", dev + "/reissue"), ("POST", dev + "/dyndns2"), ("GET", "/api/v1/fleet"),
        ("GET", "/api/v1/fleet/failing"),
        ("GET", "/api/v1/policy"), ("PUT", "/api/v1/policy"), ("GET", "/api/v1/audit"),
        ("GET", "/api/v1/tokens"), ("POST", "/api/v1/tokens"),
        ("DELETE", "/api/v1/tokens/{id}")}


def test_a_search_that_waits_for_a_connection_keeps_its_query(stack, wtok, tmp_path):
    """The device search builds its SQL text per request and lets it go once
    queued: when both admin connections are busy it waits in the pool's
    queue, and must still run the query it was given (not freed memory)."""
    import threading
    c, _, _, _ = new_device(stack, tmp_path, serial="SNQUEUE1")
    session = subprocess.Popen(["psql", "-X", "-q", "-At", stack.conninfo], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    answers = []
    try:
        session.stdin.write("BEGIN;\nSELECT 1 FROM devices WHERE device_id = '%s' FOR UPDATE;\n"
                            % c["device_id"])
        session.stdin.flush()
        assert session.stdout.readline().strip() == "1"
        # two TTL changes of the locked device hold both admin connections
        holders = [threading.Thread(target=lambda: answers.append(api(
            stack, "PUT", "/api/v1/devices/%s/ttl" % c["device_id"], {"ttl": 120}, token=wtok)))
            for _ in range(2)]
        for t in holders:
            t.start()
        assert wait_for(lambda: stack.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND state = 'active'") == [["2"]]), "the two TTL changes did not wait"
        search = threading.Thread(target=lambda: answers.append(api(
            stack, "GET", "/api/v1/devices?serial=SNQUEUE&sort=serial&order=desc", token=wtok)))
        search.start()
        time.sleep(0.5)     # the search is queued behind the two
        session.stdin.write("COMMIT;\n")
        session.stdin.flush()
        for t in holders + [search]:
            t.join(30)
    finally:
        session.communicate("", timeout=20)
    found = [j for st, j in answers if st == 200 and "devices" in j]
    assert len(found) == 1 and [d["device_id"] for d in found[0]["devices"]] == [c["device_id"]], \
        answers
    assert sorted(st for st, _ in answers) == [200, 200, 200], answers
