"""The air-gapped path: 'derive' writes the flashing output and a public file
from a CSV and a key file with no database at all; 'register' loads the
public file (no key, no secret) into the real PostgreSQL later, with the
checks and audit of 'batch'; the derived secrets then verify at the real
gateway."""
import csv
import hashlib
import json
import os
import random
import subprocess
import uuid

import ddnsstack

PROV = os.path.join(ddnsstack.BIN, "ddns-provision")
ZONE = ddnsstack.ZONE


def run(*args, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("DDNS_", "PG"))}
    e.update(env or {})
    return subprocess.run([PROV] + list(args), capture_output=True, text=True, timeout=60, env=e)


def macs(n):
    return ["0a:" + ":".join("%02x" % random.getrandbits(8) for _ in range(5)) for _ in range(n)]


def test_derive_offline_then_register(stack, tmp_path):
    t = uuid.uuid4().hex[:8]
    ms = macs(3)
    src = tmp_path / "in.csv"
    src.write_text("mac,serial,model,name\n%s,SN-%s-1,IPC-G5,\n%s,SN-%s-2,IPC-G5,gate-%s\n"
                   "%s,SN-%s-3,IPC-G5,\n" % (ms[0], t, ms[1], t, t, ms[2], t))
    out, public = tmp_path / "flash.jsonl", tmp_path / "public.csv"
    # no database: a connection attempt would fail (nothing listens on port 1)
    p = run("derive", "--csv", str(src), "--zone", ZONE, "--key-dir", stack.key_dir,
            "--out", str(out), "--public", str(public),
            env={"PGHOST": "127.0.0.1", "PGPORT": "1"})
    assert p.returncode == 0, p.stderr
    assert "3 devices derived" in p.stderr
    creds = [json.loads(line) for line in out.read_text().splitlines()]
    ids = [m.replace(":", "") for m in ms]
    assert [c["device_id"] for c in creds] == ids
    assert creds[1]["fqdn"] == "gate-%s.%s" % (t, ZONE)
    assert stack.psql("SELECT count(*) FROM devices WHERE device_id IN (%s)"
                      % ",".join("'%s'" % i for i in ids)) == [["0"]]

    # the public file: no secret, everything register needs
    text = public.read_text()
    rows = list(csv.DictReader(text.splitlines()))
    assert list(rows[0].keys()) == ["mac", "serial", "model", "name", "kid", "zone",
                                    "generation"]
    assert [r["mac"] for r in rows] == ids
    assert [r["name"] + "." + r["zone"] for r in rows] == [c["fqdn"] for c in creds]
    assert {(r["kid"], r["generation"]) for r in rows} == {("k1", "1")}
    assert {c["kid"] for c in creds} == {"k1/1"}
    for c in creds:
        assert c["secret"] not in text and c["password"] not in text
    assert oct(os.stat(public).st_mode & 0o777) == "0o600"

    # register on the connected side, without any key directory
    p = run("register", "--public", str(public), "--operator", "gate-2", "--db", stack.provision_conninfo)
    assert p.returncode == 0, p.stderr
    assert "3 devices registered" in p.stderr
    got = stack.psql("SELECT d.device_id, d.kid, d.serial, n.label FROM devices d JOIN names n "
                     "USING (device_id) WHERE d.device_id IN (%s) ORDER BY d.device_id"
                     % ",".join("'%s'" % i for i in ids))
    assert sorted(got) == sorted([r["mac"], "k1", r["serial"], r["name"]] for r in rows)
    sha = hashlib.sha256(public.read_bytes()).hexdigest()
    assert stack.psql("SELECT command, operator, kid, devices_new, output_format FROM "
                      "provision_batches WHERE input_sha256 = '%s'" % sha) == \
        [["register", "gate-2", "k1", "3", "none"]]

    # the secrets flashed offline verify at the gateway
    path = stack.write_credentials(creds[2], str(tmp_path / "dev.json"))
    p = stack.client(path, "--ipv4", "192.0.2.160")
    assert (p.returncode, p.stdout.strip()) == (0, "good 192.0.2.160"), p.stderr
    assert stack.wait_dns(creds[2]["fqdn"], "A", ["192.0.2.160"]) == ["192.0.2.160"]

    # registering again changes nothing
    p = run("register", "--public", str(public), "--operator", "gate-2", "--db", stack.provision_conninfo)
    assert p.returncode == 0, p.stderr
    assert "nothing changed: all 3 devices are already registered exactly so" in p.stderr


def test_register_refuses_conflicts_and_bad_files(stack, tmp_path):
    t = uuid.uuid4().hex[:8]
    ms = macs(2)
    src = tmp_path / "in.csv"
    src.write_text("mac,serial,model\n%s,SN-%s-1,M\n%s,SN-%s-2,M\n" % (ms[0], t, ms[1], t))
    public = tmp_path / "public.csv"
    p = run("derive", "--csv", str(src), "--zone", ZONE, "--key-dir", stack.key_dir,
            "--out", str(tmp_path / "f.jsonl"), "--public", str(public))
    assert p.returncode == 0, p.stderr
    rows = public.read_text().splitlines()
    # the name of line 3 is taken by another device meanwhile: a flashed name
    # is never drawn again, so register refuses
    label = rows[2].split(",")[3]
    other = macs(1)[0]
    b = tmp_path / "b.csv"
    b.write_text("mac,serial,model,name\n%s,SN-%s-X,M,%s\n" % (other, t, label))
    p = run("batch", "--csv", str(b), "--zone", ZONE, "--operator", "x", "--key-dir",
            stack.key_dir, "--db", stack.provision_conninfo, "--out", str(tmp_path / "b.jsonl"))
    assert p.returncode == 0, p.stderr
    p = run("register", "--public", str(public), "--operator", "o", "--db", stack.provision_conninfo)
    assert p.returncode == 1
    assert "%s:3: name '%s': %s.%s belongs to device %s" % (public, label, label, ZONE,
                                                           other.replace(":", "")) in p.stderr
    assert stack.psql("SELECT count(*) FROM devices WHERE device_id = '%s'"
                      % ms[0].replace(":", "")) == [["0"]]

    # mixed key ids or zones, a missing name, a secret-less header mistake
    bad = tmp_path / "bad.csv"
    bad.write_text("mac,serial,model,name,kid,zone\n"
                   "%s,SN-%s-a,M,n1-%s,k1,%s\n"
                   "%s,SN-%s-b,M,n2-%s,k2,%s\n"
                   "%s,SN-%s-c,M,n3-%s,k1,other.example\n"
                   "%s,SN-%s-d,M,,k1,%s\n" % (ms[0], t, t, ZONE, ms[1], t, t, ZONE,
                                              other, t, t, macs(1)[0], t, ZONE))
    p = run("register", "--public", str(bad), "--operator", "o", "--db", stack.provision_conninfo)
    assert p.returncode == 1
    assert "bad.csv:3: kid 'k2': line 2 has 'k1'; one file holds one key id" in p.stderr
    assert "bad.csv:4: zone 'other.example': line 2 has '%s'" % ZONE in p.stderr
    assert "bad.csv:5: name: empty" in p.stderr
    p = run("register", "--public", str(src), "--operator", "o", "--db", stack.provision_conninfo)
    assert p.returncode == 1 and "the required column 'name' is missing" in p.stderr
    # and 'batch' does not take a public file's columns
    p = run("batch", "--csv", str(public), "--zone", ZONE, "--operator", "o", "--key-dir",
            stack.key_dir, "--db", stack.provision_conninfo, "--check")
    assert p.returncode == 1 and "unknown column 'kid'" in p.stderr


def test_derive_and_register_options(stack, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("mac,serial,model\n%s,SN-%s,M\n" % (macs(1)[0], uuid.uuid4().hex[:8]))
    p = run("derive", "--csv", str(src), "--zone", ZONE, "--key-dir", stack.key_dir)
    assert p.returncode == 2 and "--public FILE is required" in p.stderr
    p = run("derive", "--csv", str(src), "--zone", ZONE, "--key-dir", stack.key_dir,
            "--public", str(tmp_path / "p.csv"), "--db", stack.provision_conninfo)
    assert p.returncode == 2 and "--db is not an option of 'derive'" in p.stderr
    p = run("register", "--public", str(src), "--operator", "o", "--key-dir", stack.key_dir)
    assert p.returncode == 2 and "--key-dir is not an option of 'register'" in p.stderr
    for cmd in ("derive", "register"):
        p = run(cmd, "--help")
        assert p.returncode == 0 and p.stdout.startswith("Usage: ddns-provision " + cmd)
        assert "Exit status" in p.stdout
    assert not os.path.exists(tmp_path / "p.csv")
