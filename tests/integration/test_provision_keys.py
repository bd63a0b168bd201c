"""Master keys with ddns-provision: keys list (never the key), rotation (new
batches use the newest key id, old ids keep verifying), retiring a key id
(says how many devices use it, refused while active devices do unless
forced; after a gateway restart its devices get badauth), unretiring, and
key files readable by others refused.

These tests restart the gateway with changed key directories, so they run
on a stack of their own rather than the session's."""
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


@pytest.fixture(scope="module")
def kstack():
    with ddnsstack.started("ddns-keys-", "keys stack") as s:
        yield s


def restart_gateway(stack):
    assert stack.stop_process("gateway") == 0
    stack.start_gateway()


def prov(*args):
    return subprocess.run([PROV] + list(args), capture_output=True, text=True, timeout=60)


def issue_batch(stack, tmp_path, n, *extra):
    macs = ["0a:%02x:%02x:%02x:%02x:%02x" % tuple(random.getrandbits(8) for _ in range(5))
            for _ in range(n)]
    t = uuid.uuid4().hex[:8]
    src = tmp_path / ("in-%s.csv" % t)
    src.write_text("mac,serial,model\n" + "".join("%s,SN-%s-%d,IPC-G5\n" % (m, t, i)
                                                  for i, m in enumerate(macs)))
    out = tmp_path / ("out-%s.jsonl" % t)
    p = prov("batch", "--csv", str(src), "--zone", ZONE, "--operator", "keys-test",
             "--key-dir", stack.key_dir, "--db", stack.provision_conninfo, "--out", str(out), *extra)
    assert p.returncode == 0, p.stderr
    creds = [json.loads(line) for line in out.read_text().splitlines()]
    for c in creds:
        c["path"] = stack.write_credentials(
            {k: c[k] for k in ("device_id", "kid", "secret")},
            str(tmp_path / ("%s.json" % c["device_id"])))
    return creds


def update(stack, cred, addr):
    # one accepted request per second per device (replay rule)
    time.sleep(1.05)
    p = stack.client(cred["path"], "--ipv4", addr)
    return p.stdout.strip()


def keys_list(stack, *extra):
    p = prov("keys", "list", "--key-dir", stack.key_dir, *extra)
    assert p.returncode == 0, p.stderr
    rows = {}
    for line in p.stdout.splitlines()[1:]:
        f = line.split()
        if len(f) >= 7 and not line.startswith(" "):
            rows[f[0]] = {"created": f[1], "fp": f[2], "state": f[3], "devices": f[4],
                          "active": f[5]}
    return p.stdout, rows


def key_hex(path):
    with open(path) as f:
        return re.search(r"^key = ([0-9a-f]{64})$", f.read(), re.M).group(1)


def test_rotation_retire_and_unretire(kstack, tmp_path):
    k1_file = os.path.join(kstack.key_dir, "k1.key")
    old = issue_batch(kstack, tmp_path, 2)
    assert {c["kid"] for c in old} == {"k1/1"}
    assert update(kstack, old[0], "192.0.2.201") == "good 192.0.2.201"

    # rotation: a new key; after a restart the gateway knows both
    time.sleep(1.1)  # a later 'created' second than k1
    p = prov("keygen", "--kid", "k2", "--key-dir", kstack.key_dir)
    assert p.returncode == 0, p.stderr
    fingerprint = re.search(r"fingerprint ([0-9a-f]{16})", p.stdout).group(1)
    restart_gateway(kstack)
    new = issue_batch(kstack, tmp_path, 1)
    assert new[0]["kid"] == "k2/1", "new batches use the newest key id"
    assert kstack.psql("SELECT kid FROM devices WHERE device_id = '%s'" % new[0]["device_id"]) \
        == [["k2"]]
    assert kstack.psql("SELECT kid FROM provision_batches ORDER BY batch_id DESC LIMIT 1") \
        == [["k2"]]
    assert update(kstack, new[0], "192.0.2.202") == "good 192.0.2.202"
    assert update(kstack, old[0], "192.0.2.203") == "good 192.0.2.203", \
        "the old key id keeps verifying until it is retired"
    # a valid secret of a key id the device is not registered under is refused
    p = prov("show", "--mac", old[0]["device_id"], "--kid", "k2", "--key-dir", kstack.key_dir)
    assert p.returncode == 0, p.stderr
    other = json.loads(p.stdout)
    assert other["kid"] == "k2/1" and other["secret"] != old[0]["secret"]
    other["path"] = kstack.write_credentials(
        {k: other[k] for k in ("device_id", "kid", "secret")}, str(tmp_path / "other-kid.json"))
    assert update(kstack, other, "192.0.2.207") == "badauth"
    assert update(kstack, old[0], "192.0.2.208") == "good 192.0.2.208"

    # keys list: ids, fingerprints, states and device counts; never a key
    text, rows = keys_list(kstack, "--db", kstack.provision_conninfo)
    assert rows["k2"]["state"] == "newest" and rows["k2"]["fp"] == fingerprint
    assert rows["k1"]["state"] == "active"
    assert (rows["k1"]["devices"], rows["k1"]["active"]) == ("2", "2")
    assert rows["k2"]["devices"] == "1"
    for f in ("k1.key", "k2.key"):
        assert key_hex(os.path.join(kstack.key_dir, f)) not in text
    text, rows = keys_list(kstack)
    assert rows["k1"]["devices"] == "-", "no counts without a database"

    # retiring says how many devices still use the key, and refuses while
    # active ones do
    p = prov("keys", "retire", "k1", "--key-dir", kstack.key_dir, "--db", kstack.provision_conninfo)
    assert p.returncode == 1
    assert "2 devices registered under it, 2 of them active" in p.stdout
    assert "2 active devices still use key id 'k1'" in p.stderr
    assert os.path.exists(k1_file)

    p = prov("keys", "retire", "k1", "--force", "--key-dir", kstack.key_dir,
             "--db", kstack.provision_conninfo)
    assert p.returncode == 0, p.stderr
    assert "2 devices registered under it" in p.stdout
    assert not os.path.exists(k1_file)
    retired = os.path.join(kstack.key_dir, "retired", "k1.key")
    assert os.path.exists(retired)
    assert oct(os.stat(os.path.dirname(retired)).st_mode & 0o777) == "0o700"
    text, rows = keys_list(kstack, "--db", kstack.provision_conninfo)
    assert rows["k1"]["state"] == "retired"

    # once the gateway no longer loads it, the old secrets are refused
    restart_gateway(kstack)
    assert update(kstack, old[1], "192.0.2.204") == "badauth"
    assert update(kstack, new[0], "192.0.2.205") == "good 192.0.2.205"
    # and new batches cannot use it
    p = prov("show", "--mac", old[0]["device_id"], "--kid", "k1", "--key-dir", kstack.key_dir)
    assert p.returncode == 2 and "no key with id 'k1'" in p.stderr

    # the last key is never retired: the gateway does not start without one
    p = prov("keys", "retire", "k2", "--force", "--key-dir", kstack.key_dir,
             "--db", kstack.provision_conninfo)
    assert p.returncode == 1 and "is the last key" in p.stderr
    assert os.path.exists(os.path.join(kstack.key_dir, "k2.key"))

    # unretiring brings the devices back after a restart
    p = prov("keys", "unretire", "k1", "--key-dir", kstack.key_dir)
    assert p.returncode == 0, p.stderr
    assert os.path.exists(k1_file)
    restart_gateway(kstack)
    assert update(kstack, old[1], "192.0.2.206") == "good 192.0.2.206"


def test_unsafe_key_file_refused(kstack, tmp_path):
    kdir = tmp_path / "keys"
    assert prov("keygen", "--kid", "kx", "--key-dir", str(kdir)).returncode == 0
    path = kdir / "kx.key"
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    os.chmod(path, 0o640)
    src = tmp_path / "in.csv"
    src.write_text("mac,serial,model\n0a:00:00:00:99:01,SN-X,M\n")
    p = prov("batch", "--csv", str(src), "--zone", ZONE, "--operator", "t", "--key-dir", str(kdir),
             "--db", kstack.provision_conninfo, "--check")
    assert p.returncode == 2
    assert "accessible by group or others" in p.stderr
    text, rows = keys_list(kstack)  # the stack's own keys are unaffected
    p = prov("keys", "list", "--key-dir", str(kdir))
    assert p.returncode == 0
    assert "unusable" in p.stdout and "chmod 600" in p.stdout
    assert key_hex(path) not in p.stdout + p.stderr
    # keygen never replaces a key file
    p = prov("keygen", "--kid", "kx", "--key-dir", str(kdir))
    assert p.returncode == 2 and "choose another --kid" in p.stderr


def test_keys_usage_errors(kstack):
    assert prov("keys").returncode == 2
    assert prov("keys", "frobnicate").returncode == 2
    p = prov("keys", "retire", "Bad_Id", "--key-dir", kstack.key_dir)
    assert p.returncode == 2 and "not a key id" in p.stderr
    p = prov("keys", "retire", "nope", "--key-dir", kstack.key_dir, "--db", kstack.provision_conninfo)
    assert p.returncode == 1 and "no key with id 'nope'" in p.stderr
