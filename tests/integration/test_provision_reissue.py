"""ddns-provision reissue against the real gateway and Knot DNS: a device
reissued (refurbished or resold) gets a new secret generation, under
another master key id or the same, and is refused with its old secret and
accepted with the new one; with a new name its old name leaves DNS and the
new one is published with its current addresses; every run changes the
secret and no earlier secret comes back; unknown and retired key ids are
refused; a revoked device stays revoked; every reissue and every single
'issue' leaves an audit row.
Key rotation: a key id the gateway has not loaded (no restart after keygen)
verifies nothing.

These tests add keys and restart the gateway, so they run on a stack of
their own rather than the session's."""
import hashlib
import json
import os
import random
import re
import subprocess
import time
import uuid

import pytest

import ddnsstack

PROV = os.path.join(ddnsstack.BIN, "ddns-provision")
ZONE = ddnsstack.ZONE
JSON_KEYS = ["device_id", "kid", "generation", "secret", "password", "fqdn", "serial", "model"]


@pytest.fixture(scope="module")
def rstack():
    with ddnsstack.started("ddns-reissue-", "reissue stack") as s:
        yield s


def restart_gateway(stack):
    assert stack.stop_process("gateway") == 0
    stack.start_gateway()


def prov(stack, *args, env=None, operator="refurb desk"):
    cmd = [PROV] + list(args) + ["--key-dir", stack.key_dir, "--db", stack.conninfo]
    if operator is not None:
        cmd += ["--operator", operator]
    full_env = dict(os.environ)
    full_env.pop("DDNS_OPERATOR", None)
    full_env.update(env or {})
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=full_env)


def new_mac():
    return "0a:" + ":".join("%02x" % random.getrandbits(8) for _ in range(5))


def issue(stack, tmp_path, kid="k1", name=None):
    """A new device with serial and model; returns its credentials (with
    'path', a ddns-client credentials file)."""
    mac = new_mac()
    args = ["issue", "--mac", mac, "--zone", ZONE, "--kid", kid,
            "--serial", "SN-" + uuid.uuid4().hex[:10], "--model", "IPC-G5"]
    if name:
        args += ["--name", name]
    p = prov(stack, *args)
    assert p.returncode == 0, p.stderr
    return with_path(stack, tmp_path, json.loads(p.stdout))


def with_path(stack, tmp_path, creds):
    creds["path"] = stack.write_credentials(
        {k: creds[k] for k in ("device_id", "kid", "secret")},
        str(tmp_path / ("%s-%s-%s.json" % (creds["device_id"], creds["kid"].replace("/", "-"),
                                            uuid.uuid4().hex[:6]))))
    return creds


def reissue(stack, tmp_path, creds, *args, **kw):
    p = prov(stack, "reissue", creds["device_id"], *args, **kw)
    new = None
    if p.returncode == 0:
        assert p.stdout.count("\n") == 1, p.stdout
        new = with_path(stack, tmp_path, json.loads(p.stdout))
    return p, new


def update(stack, creds, *args):
    # one accepted request per second and device (replay rule)
    time.sleep(1.05)
    return stack.client(creds["path"], *args).stdout.strip()


def device_row(stack, dev):
    return stack.psql("SELECT d.kid, d.status, d.last_ts, n.label FROM devices d "
                      "JOIN names n USING (device_id) WHERE device_id = '%s'" % dev)[0]


def audit(stack, dev):
    return stack.psql("SELECT command, operator, kid, coalesce(previous_kid, '-'), zone, "
                      "coalesce(fqdn, '-'), coalesce(previous_fqdn, '-'), devices_new, "
                      "devices_unchanged, devices_changed, input_name, input_sha256, "
                      "input_bytes, lines, output_format FROM provision_batches "
                      "WHERE device_id = '%s' ORDER BY batch_id" % dev)


def test_rotation_gateway_needs_the_new_key_loaded(rstack, tmp_path):
    a = issue(rstack, tmp_path)
    b = issue(rstack, tmp_path)
    assert update(rstack, a, "--ipv4", "192.0.2.1") == "good 192.0.2.1"

    # a new key, not yet loaded by the running gateway
    time.sleep(1.1)  # a later 'created' second than k1: k2 is the newest
    p = subprocess.run([PROV, "keygen", "--kid", "k2", "--key-dir", rstack.key_dir],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    p, a2 = reissue(rstack, tmp_path, a)
    assert p.returncode == 0, p.stderr
    assert "no --kid given: using the newest key id 'k2'" in p.stderr
    assert a2["kid"] == "k2/2" and a2["secret"] != a["secret"]
    assert device_row(rstack, a["device_id"])[0] == "k2"

    # the gateway refuses both secrets: the old one no longer matches the
    # registered key id, the new key id is unknown to it until a restart
    assert update(rstack, a2, "--ipv4", "192.0.2.2") == "badauth"
    assert update(rstack, a, "--ipv4", "192.0.2.3") == "badauth"
    assert update(rstack, b, "--ipv4", "192.0.2.4") == "good 192.0.2.4"

    # after a restart the gateway holds both keys: devices of either key id
    # verify, and the reissued device only with its new secret
    restart_gateway(rstack)
    assert update(rstack, a2, "--ipv4", "192.0.2.5") == "good 192.0.2.5"
    assert update(rstack, b, "--ipv4", "192.0.2.6") == "good 192.0.2.6"
    assert update(rstack, a, "--ipv4", "192.0.2.7") == "badauth"


def test_reissue_with_new_name_moves_secret_and_dns(rstack, tmp_path):
    c = issue(rstack, tmp_path, kid="k1")
    dev, old_fqdn = c["device_id"], c["fqdn"]
    assert update(rstack, c, "--ipv4", "192.0.2.20", "--ipv6", "2001:db8::20") == \
        "good 192.0.2.20 2001:db8::20"
    assert rstack.wait_dns(old_fqdn, "A", ["192.0.2.20"]) == ["192.0.2.20"]
    assert rstack.wait_dns(old_fqdn, "AAAA", ["2001:db8::20"]) == ["2001:db8::20"]
    assert rstack.outbox_empty()
    kid0, status0, last_ts0, label0 = device_row(rstack, dev)

    p, n = reissue(rstack, tmp_path, c, "--kid", "k2", "--new-name")
    assert p.returncode == 0, p.stderr
    # exactly what 'issue' prints, with the new key id and name
    assert list(json.loads(p.stdout).keys()) == JSON_KEYS
    assert (n["device_id"], n["kid"], n["serial"], n["model"]) == (dev, "k2/2", c["serial"],
                                                                   c["model"])
    assert n["generation"] == 2 and n["password"].startswith("k2/2.")
    assert n["secret"] not in n["password"]
    new_label = n["fqdn"][:-len(ZONE) - 1]
    assert n["fqdn"].endswith("." + ZONE) and n["fqdn"] != old_fqdn
    assert re.fullmatch(r"d[a-z2-7]{13}", new_label)
    shown = subprocess.run([PROV, "show", "--mac", dev, "--db", rstack.conninfo, "--key-dir",
                            rstack.key_dir], capture_output=True, text=True)
    assert json.loads(shown.stdout)["secret"] == n["secret"]
    assert "moved from key id 'k1' (generation 1) to 'k2' (generation 2)" in p.stderr
    assert "name %s replaced by %s (2 DNS records moved)" % (old_fqdn, n["fqdn"]) in p.stderr
    assert n["secret"] not in p.stderr and c["secret"] not in p.stdout + p.stderr

    # the device keeps status and replay counter; only kid and name change
    assert device_row(rstack, dev) == ["k2", status0, last_ts0, new_label]
    # the old name leaves DNS, the new one carries the current addresses
    # (published through the outbox, before any update with the new secret)
    assert rstack.wait_dns(old_fqdn, "A", []) == []
    assert rstack.wait_dns(old_fqdn, "AAAA", []) == []
    assert rstack.wait_dns(n["fqdn"], "A", ["192.0.2.20"]) == ["192.0.2.20"]
    assert rstack.wait_dns(n["fqdn"], "AAAA", ["2001:db8::20"]) == ["2001:db8::20"]
    assert rstack.outbox_empty()
    hist = rstack.psql("SELECT fqdn, rrtype, coalesce(host(old_address), '-'), "
                       "coalesce(host(new_address), '-') FROM history WHERE device_id = '%s' "
                       "ORDER BY id DESC LIMIT 4" % dev)
    assert sorted(hist) == sorted([[old_fqdn, "A", "192.0.2.20", "-"],
                                   [old_fqdn, "AAAA", "2001:db8::20", "-"],
                                   [n["fqdn"], "A", "-", "192.0.2.20"],
                                   [n["fqdn"], "AAAA", "-", "2001:db8::20"]])

    # the old secret is refused, the new one accepted
    assert update(rstack, c, "--ipv4", "192.0.2.21") == "badauth"
    assert update(rstack, n, "--ipv4", "192.0.2.22") == "good 192.0.2.22"
    assert rstack.wait_dns(n["fqdn"], "A", ["192.0.2.22"]) == ["192.0.2.22"]
    assert rstack.dig(old_fqdn, "A") == []

    # the audit rows: issue, then reissue, with the input a single device is
    sha = hashlib.sha256((dev + "\n").encode()).hexdigest()
    rows = audit(rstack, dev)
    assert rows == [
        ["issue", "refurb desk", "k1", "-", ZONE, old_fqdn, "-", "1", "0", "0",
         "--mac " + dev, sha, "13", "1", "jsonl"],
        ["reissue", "refurb desk", "k2", "k1", ZONE, n["fqdn"], old_fqdn, "0", "0", "1",
         "--mac " + dev, sha, "13", "1", "jsonl"],
    ]

    # the same again without a new name: a new generation under the same
    # key id, so the secret changes again; the name and DNS stay
    p2, n2 = reissue(rstack, tmp_path, n, "--kid", "k2")
    assert p2.returncode == 0, p2.stderr
    assert (n2["kid"], n2["fqdn"]) == ("k2/3", n["fqdn"]) and n2["secret"] != n["secret"]
    assert "keeps key id 'k2', generation 2 to 3" in p2.stderr
    assert device_row(rstack, dev)[0::3] == ["k2", new_label]
    assert rstack.psql("SELECT count(*) FROM dns_outbox") == [["0"]]
    assert audit(rstack, dev)[-1][:10] == ["reissue", "refurb desk", "k2", "k2", ZONE,
                                           n["fqdn"], "-", "0", "0", "1"]
    assert update(rstack, n, "--ipv4", "192.0.2.23") == "badauth"
    # and back to the old key id, name kept: no earlier secret comes back
    p3, back = reissue(rstack, tmp_path, n2, "--kid", "k1")
    assert p3.returncode == 0, p3.stderr
    assert back["kid"] == "k1/4" and back["fqdn"] == n["fqdn"]
    assert back["secret"] not in (c["secret"], n["secret"], n2["secret"])
    for old in (c, n, n2):
        assert update(rstack, old, "--ipv4", "192.0.2.23") == "badauth"
    assert update(rstack, back, "--ipv4", "192.0.2.24") == "good 192.0.2.24"


def test_reissue_with_a_chosen_name(rstack, tmp_path):
    d = issue(rstack, tmp_path, kid="k1")
    other = issue(rstack, tmp_path, kid="k1")
    label = "shop-" + uuid.uuid4().hex[:8]
    # a name of another device is refused and nothing changes
    taken = other["fqdn"][:-len(ZONE) - 1]
    p, _ = reissue(rstack, tmp_path, d, "--kid", "k2", "--name", taken)
    assert p.returncode == 1 and p.stdout == ""
    assert "belongs to device %s" % other["device_id"] in p.stderr
    assert device_row(rstack, d["device_id"])[0] == "k1"
    assert update(rstack, d, "--ipv4", "192.0.2.30") == "good 192.0.2.30"

    p, n = reissue(rstack, tmp_path, d, "--kid", "k2", "--name", label.upper())
    assert p.returncode == 0, p.stderr
    assert n["fqdn"] == "%s.%s" % (label, ZONE)
    assert rstack.wait_dns(n["fqdn"], "A", ["192.0.2.30"]) == ["192.0.2.30"]
    assert rstack.wait_dns(d["fqdn"], "A", []) == []
    # the name it already has: the name stays, the secret still changes
    p, n2 = reissue(rstack, tmp_path, n, "--kid", "k2", "--name", label)
    assert p.returncode == 0 and "replaced by" not in p.stderr
    assert n2["fqdn"] == n["fqdn"] and n2["kid"] == "k2/3"
    p, _ = reissue(rstack, tmp_path, n, "--new-name", "--name", label)
    assert p.returncode == 2 and "exclude each other" in p.stderr


def test_reissue_of_a_revoked_device_keeps_it_revoked(rstack, tmp_path):
    e = issue(rstack, tmp_path, kid="k1")
    dev = e["device_id"]
    assert update(rstack, e, "--ipv4", "192.0.2.40") == "good 192.0.2.40"
    assert rstack.wait_dns(e["fqdn"], "A", ["192.0.2.40"]) == ["192.0.2.40"]
    p = subprocess.run([PROV, "revoke", "--mac", dev, "--db", rstack.conninfo, "--operator", "rs"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert rstack.wait_dns(e["fqdn"], "A", []) == []

    p, n = reissue(rstack, tmp_path, e, "--kid", "k2", "--new-name")
    assert p.returncode == 0, p.stderr
    assert "stays revoked" in p.stderr and "(0 DNS records moved)" in p.stderr
    assert n["kid"] == "k2/2" and n["fqdn"] != e["fqdn"]
    assert device_row(rstack, dev)[:2] == ["k2", "revoked"]
    assert rstack.outbox_empty()
    assert rstack.dig(n["fqdn"], "A") == []
    assert update(rstack, n, "--ipv4", "192.0.2.41") == "disabled"
    assert update(rstack, e, "--ipv4", "192.0.2.42") == "badauth"

    p = subprocess.run([PROV, "restore", "--mac", dev, "--db", rstack.conninfo, "--operator", "rs"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert update(rstack, n, "--ipv4", "192.0.2.43") == "good 192.0.2.43"
    assert rstack.wait_dns(n["fqdn"], "A", ["192.0.2.43"]) == ["192.0.2.43"]
    assert rstack.dig(e["fqdn"], "A") == []


def test_reissue_refusals(rstack, tmp_path):
    f = issue(rstack, tmp_path, kid="k1")
    dev = f["device_id"]
    n_audit = len(audit(rstack, dev))

    p, _ = reissue(rstack, tmp_path, f, "--kid", "nope")
    assert p.returncode == 2 and "no key with id 'nope'" in p.stderr
    # a retired key id: its key file is no longer loaded by the gateway
    assert subprocess.run([PROV, "keygen", "--kid", "k9", "--key-dir", rstack.key_dir],
                          capture_output=True).returncode == 0
    r = subprocess.run([PROV, "keys", "retire", "k9", "--key-dir", rstack.key_dir, "--db",
                        rstack.conninfo], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    p, _ = reissue(rstack, tmp_path, f, "--kid", "k9")
    assert p.returncode == 2 and "key id 'k9' is retired" in p.stderr
    p, _ = reissue(rstack, tmp_path, f, "--kid", "Bad_Id")
    assert p.returncode == 2 and "--kid 'Bad_Id'" in p.stderr
    assert device_row(rstack, dev)[0] == "k1"
    assert len(audit(rstack, dev)) == n_audit, "a refused reissue leaves no audit row"

    p = prov(rstack, "reissue", "--mac", "0a:ff:ff:ff:ff:fe", "--kid", "k2")
    assert p.returncode == 1 and "device 0afffffffffe is not registered" in p.stderr
    assert p.stdout == ""
    p = prov(rstack, "reissue", "01:00:5e:00:00:01", "--kid", "k2")
    assert p.returncode == 2 and "multicast" in p.stderr
    p = prov(rstack, "reissue", dev, "--kid", "k2", operator=None)
    assert p.returncode == 2 and "--operator (or DDNS_OPERATOR) is required" in p.stderr
    assert device_row(rstack, dev)[0] == "k1"
    p = prov(rstack, "reissue", dev, "--kid", "k2", operator=None,
             env={"DDNS_OPERATOR": "from env"})
    assert p.returncode == 0, p.stderr
    assert audit(rstack, dev)[-1][:3] == ["reissue", "from env", "k2"]

    h = subprocess.run([PROV, "reissue", "--help"], capture_output=True, text=True)
    assert h.returncode == 0 and h.stdout.startswith("Usage: ddns-provision reissue")
    assert "Exit status" in h.stdout
    top = subprocess.run([PROV, "--help"], capture_output=True, text=True)
    assert "reissue" in top.stdout


def test_issue_records_an_audit_row(rstack, tmp_path):
    mac = new_mac()
    dev = mac.replace(":", "")
    p = prov(rstack, "issue", "--mac", mac, "--zone", ZONE, "--kid", "k1", operator="desk 2")
    assert p.returncode == 0, p.stderr
    creds = json.loads(p.stdout)
    rows = audit(rstack, dev)
    assert [r[:10] for r in rows] == [["issue", "desk 2", "k1", "-", ZONE, creds["fqdn"], "-",
                                       "1", "0", "0"]]
    bid = rstack.psql("SELECT batch_id FROM provision_batches WHERE device_id = '%s'" % dev)
    assert rstack.psql("SELECT batch_id FROM devices WHERE device_id = '%s'" % dev) == bid
    assert "audit row %s" % bid[0][0] in p.stderr
    # the same again hands out the same credentials: recorded as unchanged
    p2 = prov(rstack, "issue", "--mac", mac, "--zone", ZONE, "--kid", "k1", operator=None,
              env={"DDNS_OPERATOR": "desk 3"})
    assert p2.returncode == 0 and p2.stdout == p.stdout
    assert audit(rstack, dev)[-1][:10] == ["issue", "desk 3", "k1", "-", ZONE, creds["fqdn"],
                                           "-", "0", "1", "0"]
    # no operator, no issue
    p3 = prov(rstack, "issue", "--mac", new_mac(), "--zone", ZONE, operator=None)
    assert p3.returncode == 2 and "--operator (or DDNS_OPERATOR) is required" in p3.stderr
    # a conflict writes nothing, not even an audit row
    p4 = prov(rstack, "issue", "--mac", mac, "--zone", ZONE, "--kid", "k2")
    assert p4.returncode == 1 and "under key id 'k1', not 'k2'" in p4.stderr
    assert len(audit(rstack, dev)) == 2


def test_audit_table_constraints(rstack):
    """Migration 0004: only known commands, and exactly the single-device
    commands name a device."""
    cols = ("operator, kid, zone, input_name, input_sha256, input_bytes, lines, devices_new, "
            "devices_unchanged, lines_rejected, output_format, tool_version")
    vals = "'t', 'k1', 'z', 'x', '%s', 0, 0, 0, 0, 0, 'none', 'v'" % ("0" * 64)

    def insert(command, device_id):
        return subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", rstack.conninfo, "-c",
             "BEGIN; INSERT INTO provision_batches (command, device_id, %s) VALUES "
             "('%s', %s, %s); ROLLBACK" % (cols, command, device_id, vals)],
            capture_output=True, text=True)

    assert insert("batch", "NULL").returncode == 0
    assert insert("reissue", "'0a0000000001'").returncode == 0
    for command, device_id in (("frob", "NULL"), ("batch", "'0a0000000001'"),
                               ("issue", "NULL"), ("reissue", "'0A0000000001'")):
        p = insert(command, device_id)
        assert p.returncode != 0 and "violates check constraint" in p.stderr, (command, p)
