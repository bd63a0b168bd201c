"""ddns-provision batch against the real PostgreSQL, gateway and Knot DNS:
validation of every line before anything is written, all-or-nothing and
reject-file modes, idempotent re-runs, conflicts with what is registered,
the audit row, the three output formats (the binary record decoded here with
the layout of docs/PROVISIONING.md) and devices from a batch updating through
the gateway. Secrets must appear in the flashing output only."""
import base64
import csv
import hashlib
import hmac
import io
import json
import os
import random
import re
import struct
import subprocess
import uuid
import zlib

import ddnsstack

PROV = os.path.join(ddnsstack.BIN, "ddns-provision")
ZONE = ddnsstack.ZONE
_rng = random.Random()


def new_macs(n):
    """n distinct random unicast MACs (first octet 0x0a: locally administered)."""
    seen = set()
    while len(seen) < n:
        seen.add("0a:" + ":".join("%02x" % _rng.getrandbits(8) for _ in range(5)))
    return sorted(seen)


def tag():
    return uuid.uuid4().hex[:8].upper()


def batch(stack, *args, stdin=None, operator="line-7", env=None):
    cmd = [PROV, "batch", "--zone", ZONE, "--key-dir", stack.key_dir, "--db", stack.provision_conninfo]
    if operator is not None:
        cmd += ["--operator", operator]
    full_env = dict(os.environ)
    full_env.pop("DDNS_OPERATOR", None)
    full_env.update(env or {})
    return subprocess.run(cmd + list(args), input=stdin, capture_output=True,
                          text=stdin is None or isinstance(stdin, str), timeout=120, env=full_env)


def write_csv(path, rows, header="mac,serial,model,name"):
    with open(path, "w") as f:
        f.write(header + "\n")
        for r in rows:
            f.write(",".join(r) + "\n")
    return str(path)


def device_rows(stack, macs):
    ids = ",".join("'%s'" % m.replace(":", "") for m in macs)
    return stack.psql("SELECT d.device_id, d.kid, d.serial, d.model, n.label FROM devices d "
                      "JOIN names n USING (device_id) WHERE d.device_id IN (%s) "
                      "ORDER BY d.device_id" % ids)


def count_devices(stack, macs):
    ids = ",".join("'%s'" % m.replace(":", "") for m in macs)
    return int(stack.psql("SELECT count(*) FROM devices WHERE device_id IN (%s)" % ids)[0][0])


def audit_rows(stack, sha):
    return stack.psql("SELECT batch_id, operator, kid, zone, input_name, lines, devices_new, "
                      "devices_unchanged, lines_rejected, output_format FROM provision_batches "
                      "WHERE input_sha256 = '%s' ORDER BY batch_id" % sha)


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def assert_no_temp_files(directory):
    left = [n for n in os.listdir(directory) if ".tmp-" in n]
    assert left == [], "temporary output left behind: %s" % left


def update_through_gateway(stack, creds, tmp_path, addr):
    path = stack.write_credentials(creds, str(tmp_path / ("%s.json" % creds["device_id"])))
    p = stack.client(path, "--ipv4", addr)
    return p


# -- the normal path --------------------------------------------------------

def test_batch_registers_records_audit_and_devices_update(stack, tmp_path):
    t = tag()
    macs = new_macs(3)
    label = "cam-" + t.lower()
    src = write_csv(tmp_path / "in.csv", [
        (macs[0].upper(), "SN-%s-1" % t, "IPC-G5", ""),
        (macs[1].replace(":", "-"), "SN-%s-2" % t, "IPC-G5", label),
        (macs[2].replace(":", ""), "SN-%s-3" % t, "DVR 16ch", ""),
    ])
    out = tmp_path / "out.jsonl"
    p = batch(stack, "--csv", src, "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert p.stdout == ""
    assert re.search(r"batch \d+: 3 devices registered, 0 already registered", p.stderr), p.stderr
    assert oct(os.stat(out).st_mode & 0o777) == "0o600"
    assert_no_temp_files(tmp_path)

    creds = read_jsonl(out)
    assert [c["device_id"] for c in creds] == [m.replace(":", "") for m in macs]
    assert creds[1]["fqdn"] == "%s.%s" % (label, ZONE)
    for c in (creds[0], creds[2]):
        # random, unguessable: not derived from the MAC or the serial
        lab = c["fqdn"].split(".")[0]
        assert re.fullmatch(r"d[a-z2-7]{13}", lab), lab
        assert c["device_id"][-6:] not in lab
    assert creds[2]["model"] == "DVR 16ch" and creds[0]["serial"] == "SN-%s-1" % t
    # the same secret as 'show' derives from the MAC and key
    shown = json.loads(ddnsstack.run([PROV, "show", "--mac", macs[0], "--key-dir",
                                      stack.key_dir]).stdout)
    assert shown["secret"] == creds[0]["secret"] and shown["password"] == creds[0]["password"]

    rows = device_rows(stack, macs)
    assert [r[:4] for r in rows] == [
        [macs[0].replace(":", ""), "k1", "SN-%s-1" % t, "IPC-G5"],
        [macs[1].replace(":", ""), "k1", "SN-%s-2" % t, "IPC-G5"],
        [macs[2].replace(":", ""), "k1", "SN-%s-3" % t, "DVR 16ch"]]
    assert [r[4] for r in rows] == [c["fqdn"].split(".")[0] for c in creds]

    audit = audit_rows(stack, sha256_file(src))
    assert len(audit) == 1
    batch_id = audit[0][0]
    assert audit[0][1:] == ["line-7", "k1", ZONE, src, "3", "3", "0", "0", "jsonl"]
    assert stack.psql("SELECT count(*) FROM devices WHERE batch_id = %s" % batch_id) == [["3"]]

    # a device from the batch updates through the real gateway and resolves
    p = update_through_gateway(stack, creds[1], tmp_path, "192.0.2.141")
    assert (p.returncode, p.stdout.strip()) == (0, "good 192.0.2.141"), p.stderr
    assert stack.wait_dns(creds[1]["fqdn"], "A", ["192.0.2.141"]) == ["192.0.2.141"]


def test_operator_from_environment_and_required(stack, tmp_path):
    src = write_csv(tmp_path / "in.csv", [(new_macs(1)[0], "SN-%s" % tag(), "M", "")])
    p = batch(stack, "--csv", src, "--check", operator=None)
    assert p.returncode == 2
    assert "--operator (or DDNS_OPERATOR) is required" in p.stderr
    p = batch(stack, "--csv", src, "--out", str(tmp_path / "o.jsonl"), operator=None,
              env={"DDNS_OPERATOR": "night shift"})
    assert p.returncode == 0, p.stderr
    assert audit_rows(stack, sha256_file(src))[0][1] == "night shift"


# -- every bad line reported, nothing written --------------------------------

def test_every_bad_line_reported_and_nothing_written(stack, tmp_path):
    t = tag()
    good = new_macs(4)
    taken = new_macs(1)[0]
    assert batch(stack, "--csv", write_csv(tmp_path / "pre.csv",
                                           [(taken, "SN-%s-T" % t, "IPC-G5", "taken-" + t.lower())]),
                 "--out", str(tmp_path / "pre.jsonl")).returncode == 0
    rows = [
        (good[0], "SN-%s-01" % t, "IPC-G5", ""),                  # 2 good
        ("01:00:5e:00:00:01", "SN-%s-02" % t, "IPC-G5", ""),      # 3 multicast
        ("ff:ff:ff:ff:ff:ff", "SN-%s-03" % t, "IPC-G5", ""),      # 4 broadcast
        ("00-00-00-00-00-00", "SN-%s-04" % t, "IPC-G5", ""),      # 5 zero
        ("0a:00:00:00:00", "SN-%s-05" % t, "IPC-G5", ""),         # 6 syntax
        (good[1], "SN %s 06" % t, "IPC-G5", ""),                  # 7 serial syntax
        (good[2], "SN-%s-07" % t, "IPC-G5", "under_score"),       # 8 name syntax
        (good[3].replace(":", ""), "SN-%s-08" % t, "IPC-G5", ""),  # 9 duplicate MAC of 11
        (new_macs(1)[0], "SN-%s-09" % t, "", ""),                 # 10 no model
        (good[3].upper(), "SN-%s-10" % t, "IPC-G5", ""),          # 11 duplicate MAC of 9
        (taken, "SN-%s-OTHER" % t, "IPC-G5", ""),                 # 12 MAC under another serial
        (new_macs(1)[0], "SN-%s-T" % t, "IPC-G5", ""),            # 13 serial of another device
        (new_macs(1)[0], "SN-%s-13" % t, "IPC-G5", "taken-" + t.lower()),  # 14 name taken
    ]
    src = write_csv(tmp_path / "bad.csv", rows)
    with open(src, "a") as f:
        f.write("%s,SN-%s-14,IPC-G5\n" % (new_macs(1)[0], t))   # 15 too few fields
    out = tmp_path / "out.jsonl"
    p = batch(stack, "--csv", src, "--out", str(out))
    assert p.returncode == 1, p.stderr
    assert p.stdout == ""
    expect = {
        3: "multicast", 4: "broadcast", 5: "all-zero", 6: "not a MAC address",
        7: "character 3 is a blank", 8: "hostname label 'under_score'",
        9: "also on line 11", 10: "model: empty", 11: "also on line 9",
        12: "already registered under serial 'SN-%s-T', not 'SN-%s-OTHER'" % (t, t),
        13: "serial 'SN-%s-T': already registered to device %s" % (t, taken.replace(":", "")),
        14: "belongs to device %s" % taken.replace(":", ""),
        15: "3 fields, but the header names 4 columns",
    }
    for line, why in expect.items():
        found = [l for l in p.stderr.splitlines() if l.startswith("%s:%d: " % (src, line))]
        assert found and any(why in l for l in found), (line, why, p.stderr)
    assert not re.search(r"^%s:2: " % re.escape(src), p.stderr, re.M)
    assert "14 of 14 lines" not in p.stderr and "13 of 14 lines have errors; nothing written" in p.stderr
    # nothing at all: no output, no device, no audit row, no temporary file
    assert not out.exists()
    assert_no_temp_files(tmp_path)
    assert count_devices(stack, good) == 0
    assert audit_rows(stack, sha256_file(src)) == []


def test_whole_input_problems_are_refused(stack, tmp_path):
    for text, why in (("", "the input is empty"),
                      ("mac,serial,model\n", "no device lines"),
                      ("mac,serial,modle\n0a:00:00:00:00:01,S,M\n", "unknown column 'modle'"),
                      ("mac,serial\n0a:00:00:00:00:01,S\n", "'model' is missing")):
        p = batch(stack, "--csv", "-", "--out", str(tmp_path / "o.jsonl"), stdin=text)
        assert p.returncode == 1, (text, p.stderr)
        assert why in p.stderr
        assert "nothing written" in p.stderr
        assert not (tmp_path / "o.jsonl").exists()


def test_reject_file_writes_good_lines_and_rejects(stack, tmp_path):
    t = tag()
    macs = new_macs(3)
    src = write_csv(tmp_path / "in.csv", [
        (macs[0], "SN-%s-1" % t, "IPC-G5"),
        ("01:02:03:04:05:06", "SN-%s-2" % t, "IPC-G5"),
        (macs[1], "SN %s,3" % t, "IPC-G5"),
        (macs[2], "SN-%s-4" % t, "IPC-G5"),
    ], header="mac,serial,model")
    # the third line holds a quoted comma: rewrite it as valid CSV
    text = open(src).read().replace("SN %s,3" % t, "\"SN %s,3\"" % t)
    open(src, "w").write(text)
    out, rej = tmp_path / "out.jsonl", tmp_path / "rejects.csv"
    p = batch(stack, "--csv", src, "--out", str(out), "--reject-file", str(rej))
    assert p.returncode == 3, p.stderr
    assert "2 devices registered, 0 already registered (unchanged), 2 lines rejected" in p.stderr
    assert [c["device_id"] for c in read_jsonl(out)] == [macs[0].replace(":", ""),
                                                        macs[2].replace(":", "")]
    assert count_devices(stack, macs) == 2
    with open(rej) as f:
        got = list(csv.reader(f))
    assert got[0] == ["line", "reason", "input"]
    assert [r[0] for r in got[1:]] == ["3", "4"]
    assert "multicast" in got[1][1]
    assert got[1][2] == "01:02:03:04:05:06,SN-%s-2,IPC-G5" % t
    assert "is a blank" in got[2][1]
    assert got[2][2] == "%s,\"SN %s,3\",IPC-G5" % (macs[1], t)
    assert oct(os.stat(rej).st_mode & 0o777) == "0o600"
    audit = audit_rows(stack, sha256_file(src))
    assert audit[0][5:9] == ["4", "2", "0", "2"]


# -- re-runs and conflicts ---------------------------------------------------

def test_rerun_changes_nothing_and_says_so(stack, tmp_path):
    t = tag()
    macs = new_macs(5)
    src = write_csv(tmp_path / "in.csv",
                    [(m, "SN-%s-%d" % (t, i), "IPC-G5", "") for i, m in enumerate(macs)])
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    assert batch(stack, "--csv", src, "--out", str(first)).returncode == 0
    before = device_rows(stack, macs)
    names_before = stack.psql("SELECT count(*) FROM names")
    p = batch(stack, "--csv", src, "--out", str(second))
    assert p.returncode == 0, p.stderr
    assert "nothing changed: all 5 devices are already registered exactly so" in p.stderr
    # the same secrets and the registered (random) names come out again
    assert open(first).read() == open(second).read()
    assert device_rows(stack, macs) == before
    assert stack.psql("SELECT count(*) FROM names") == names_before
    audit = audit_rows(stack, sha256_file(src))
    assert [a[6:8] for a in audit] == [["5", "0"], ["0", "5"]]

    # a partly registered batch registers only the new lines
    more = new_macs(2)
    src2 = write_csv(tmp_path / "in2.csv",
                     [(m, "SN-%s-%d" % (t, i), "IPC-G5", "") for i, m in enumerate(macs)] +
                     [(m, "SN-%s-N%d" % (t, i), "IPC-G5", "") for i, m in enumerate(more)])
    p = batch(stack, "--csv", src2, "--out", str(tmp_path / "third.jsonl"))
    assert p.returncode == 0, p.stderr
    assert "2 devices registered, 5 already registered (unchanged)" in p.stderr
    assert device_rows(stack, macs) == before


def test_conflicts_with_registered_devices(stack, tmp_path):
    t = tag()
    macs = new_macs(2)
    src = write_csv(tmp_path / "in.csv", [(macs[0], "SN-%s-A" % t, "IPC-G5", ""),
                                          (macs[1], "SN-%s-B" % t, "IPC-G5", "n-" + t.lower())])
    assert batch(stack, "--csv", src, "--out", str(tmp_path / "a.jsonl")).returncode == 0
    before = device_rows(stack, macs)
    cases = [
        ((macs[0], "SN-%s-X" % t, "IPC-G5", ""), "already registered under serial 'SN-%s-A'" % t),
        ((macs[0], "SN-%s-A" % t, "IPC-G6", ""), "already registered as model 'IPC-G5'"),
        ((macs[1], "SN-%s-B" % t, "IPC-G5", "other"), "already has the name n-%s." % t.lower()),
    ]
    for i, (row, why) in enumerate(cases):
        p = batch(stack, "--csv", write_csv(tmp_path / ("c%d.csv" % i), [row]),
                  "--out", str(tmp_path / ("c%d.jsonl" % i)))
        assert p.returncode == 1, p.stderr
        assert ":2: " in p.stderr and why in p.stderr, p.stderr
        assert not (tmp_path / ("c%d.jsonl" % i)).exists()
    # registered under another key id: refused, with the way out named
    p = subprocess.run([PROV, "keygen", "--kid", "kother", "--key-dir", str(tmp_path / "keys")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    p = subprocess.run([PROV, "batch", "--csv", src, "--zone", ZONE, "--operator", "x",
                        "--key-dir", str(tmp_path / "keys"), "--db", stack.provision_conninfo,
                        "--out", str(tmp_path / "k.jsonl")], capture_output=True, text=True)
    assert p.returncode == 1
    assert "already registered under key id 'k1', not 'kother' (run the batch with --kid k1" \
        in p.stderr
    # a revoked device is not silently re-activated
    stack.psql("UPDATE devices SET status = 'revoked' WHERE device_id = '%s'"
               % macs[0].replace(":", ""))
    p = batch(stack, "--csv", src, "--out", str(tmp_path / "r.jsonl"))
    assert p.returncode == 1 and "registered but revoked" in p.stderr
    stack.psql("UPDATE devices SET status = 'active' WHERE device_id = '%s'"
               % macs[0].replace(":", ""))
    assert device_rows(stack, macs) == before


def test_check_mode_and_existing_output_write_nothing(stack, tmp_path):
    macs = new_macs(2)
    src = write_csv(tmp_path / "in.csv", [(m, "SN-%s" % tag(), "M", "") for m in macs])
    p = batch(stack, "--csv", src, "--check")
    assert p.returncode == 0, p.stderr
    assert "all 2 lines are good: 2 new, 0 already registered; nothing written" in p.stderr
    assert p.stdout == ""
    assert count_devices(stack, macs) == 0
    existing = tmp_path / "exists.jsonl"
    existing.write_text("keep me\n")
    p = batch(stack, "--csv", src, "--out", str(existing))
    assert p.returncode == 2
    assert "already exists" in p.stderr
    assert existing.read_text() == "keep me\n"
    assert count_devices(stack, macs) == 0
    assert_no_temp_files(tmp_path)


# -- output formats -----------------------------------------------------------

def test_stdin_input_and_csv_output(stack, tmp_path):
    t = tag()
    macs = new_macs(2)
    text = "serial,MAC,model\nSN-%s-1,%s,\"IPC G5, Pro\"\nSN-%s-2,%s,IPC-G5\n" % (
        t, macs[0], t, macs[1])
    p = batch(stack, "--csv", "-", "--format", "csv", stdin=text)
    assert p.returncode == 0, p.stderr
    rows = list(csv.reader(io.StringIO(p.stdout)))
    assert rows[0] == ["device_id", "kid", "secret", "password", "fqdn", "serial", "model"]
    assert [r[0] for r in rows[1:]] == [m.replace(":", "") for m in macs]
    assert rows[1][6] == "IPC G5, Pro"
    # the key reference, the secret and the dyndns2 password derived from it
    assert rows[1][1] == "k1/1"
    secret = base64.urlsafe_b64decode(rows[1][2] + "=")
    assert rows[1][3] == "k1/1." + base64.urlsafe_b64encode(hmac.new(
        secret, b"ddns-dyndns2-password-v1", hashlib.sha256).digest()).decode().rstrip("=")
    sha = hashlib.sha256(text.encode()).hexdigest()
    assert audit_rows(stack, sha)[0][4] == "-"


def decode_record(data):
    """The flash record as docs/PROVISIONING.md lays it out (version 2)."""
    assert len(data) == 512
    magic, version, flags, size = struct.unpack(">4sBBH", data[0:8])
    assert (magic, version, flags, size) == (b"DDNS", 2, 0, 512)
    assert struct.unpack(">I", data[508:512])[0] == zlib.crc32(data[:508])
    assert data[14:16] == b"\0\0" and data[484:508] == bytes(24)

    def text(a, b):
        raw = data[a:b]
        s = raw.split(b"\0", 1)[0]
        assert raw[len(s):] == bytes(len(raw) - len(s)), "NUL padding"
        return s.decode("ascii")

    generation = struct.unpack(">I", data[448:452])[0]
    kid = text(16, 32)
    return {"device_id": data[8:14].hex(),
            "kid": kid if generation == 0 else "%s/%d" % (kid, generation),
            "secret": base64.urlsafe_b64encode(data[32:64]).decode().rstrip("="),
            "password": "%s/%d.%s" % (kid, generation,
                                      base64.urlsafe_b64encode(data[452:484]).decode().rstrip("=")),
            "fqdn": text(64, 320), "serial": text(320, 384), "model": text(384, 448)}


def test_record_output_decodes_and_verifies_at_the_gateway(stack, tmp_path):
    t = tag()
    macs = new_macs(3)
    src = write_csv(tmp_path / "in.csv",
                    [(m, "SN-%s-%d" % (t, i), "IPC-G5", "") for i, m in enumerate(macs)])
    jsonl = tmp_path / "all.jsonl"
    assert batch(stack, "--csv", src, "--out", str(jsonl)).returncode == 0
    by_id = {c["device_id"]: c for c in read_jsonl(jsonl)}

    # one file of records (a re-run, so the same credentials) ...
    recfile = tmp_path / "all.bin"
    p = batch(stack, "--csv", src, "--format", "record", "--out", str(recfile))
    assert p.returncode == 0, p.stderr
    data = recfile.read_bytes()
    assert len(data) == 3 * 512
    recs = [decode_record(data[i:i + 512]) for i in range(0, len(data), 512)]
    # ... and a directory of per-device files
    outdir = tmp_path / "flash"
    p = batch(stack, "--csv", src, "--format", "record", "--out-dir", str(outdir))
    assert p.returncode == 0, p.stderr
    assert sorted(os.listdir(outdir)) == sorted(m.replace(":", "") + ".bin" for m in macs)
    assert oct(os.stat(outdir).st_mode & 0o777) == "0o700"
    for r in recs:
        c = by_id[r["device_id"]]
        assert (r["kid"], r["secret"], r["fqdn"], r["model"]) == (c["kid"], c["secret"], c["fqdn"],
                                                                  "IPC-G5")
        assert r["password"] == c["password"]
        assert r["serial"] == c["serial"]
        assert decode_record((outdir / (r["device_id"] + ".bin")).read_bytes()) == r
    # the secret from the record verifies at the gateway
    r = recs[0]
    creds = {"device_id": r["device_id"], "kid": r["kid"], "secret": r["secret"]}
    p = update_through_gateway(stack, creds, tmp_path, "192.0.2.142")
    assert (p.returncode, p.stdout.strip()) == (0, "good 192.0.2.142"), p.stderr
    assert stack.wait_dns(r["fqdn"], "A", ["192.0.2.142"]) == ["192.0.2.142"]

    # a per-device JSON file is a ddns-client credentials file as it stands
    jdir = tmp_path / "json"
    assert batch(stack, "--csv", src, "--out-dir", str(jdir)).returncode == 0
    p = stack.client(str(jdir / (recs[1]["device_id"] + ".json")), "--ipv4", "192.0.2.143")
    assert (p.returncode, p.stdout.strip()) == (0, "good 192.0.2.143"), p.stderr


def test_help_texts():
    for cmd in (["batch", "--help"], ["keys", "--help"], ["--help"]):
        p = subprocess.run([PROV] + cmd, capture_output=True, text=True)
        assert p.returncode == 0
        assert p.stdout.startswith("Usage: ddns-provision")
        assert "Exit status" in p.stdout


# -- secrets stay in the flashing output ------------------------------------

def test_secrets_only_in_the_flashing_output(stack, tmp_path):
    t = tag()
    macs = new_macs(4)
    src = write_csv(tmp_path / "in.csv",
                    [(m, "SN-%s-%d" % (t, i), "IPC-G5", "") for i, m in enumerate(macs)] +
                    [("01:00:00:00:00:01", "SN-%s-bad" % t, "IPC-G5", "")])
    outs = []
    stderr = ""
    for fmt in ("jsonl", "csv", "record"):
        out = tmp_path / ("out." + fmt)
        p = batch(stack, "--csv", src, "--format", fmt, "--out", str(out),
                  "--reject-file", str(tmp_path / ("rej-%s.csv" % fmt)))
        assert p.returncode == 3, p.stderr
        stderr += p.stderr + p.stdout
        outs.append(out)
    p = batch(stack, "--csv", src, "--check")
    stderr += p.stderr + p.stdout
    creds = read_jsonl(outs[0])
    assert len(creds) == 4
    dump = ddnsstack.run(["pg_dump", "--data-only", stack.conninfo]).stdout
    rejects = "".join(open(tmp_path / ("rej-%s.csv" % f)).read() for f in ("jsonl", "csv", "record"))
    for c in creds:
        raw = base64.urlsafe_b64decode(c["secret"] + "=")
        for needle in (c["secret"], c["password"], raw.hex()):
            assert needle not in dump
            assert needle not in stderr
            assert needle not in rejects
        assert c["secret"] in open(outs[1]).read()
        assert raw in outs[2].read_bytes()
    assert c["device_id"] in dump


# -- migration 0002 ------------------------------------------------------------

def test_migration_0002_name_rules_equal_those_of_0001(stack):
    """0002 rewrites the CHECKs on names.label and names.zone for speed; they
    must accept and refuse exactly what the 0001 forms did."""
    old_label = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
    old_zone = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
    checks = stack.psql("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                        "WHERE conrelid = 'names'::regclass AND conname IN "
                        "('names_label_check', 'names_zone_check') ORDER BY conname")
    assert len(checks) == 2
    samples = ["a", "0", "a-b", "-a", "a-", "a--b", "A", "a_b", "", "a.b", "a" * 63, "a" * 64,
               "a" * 62 + "-", "x" + "-" * 61 + "y", "ab.cd", "ab..cd", ".ab", "ab.", "a.b.c",
               "a" * 63 + ".b", "a" * 64 + ".b", "b." + "a" * 64, "-a.b", "a.-b", "a.b-",
               "ddns.example.test", "xn--bcher-kva.example", "a b", "a.b.c." + "z" * 63]
    values = ",".join("('%s')" % s for s in samples)
    rows = stack.psql(
        "SELECT v, v ~ '%s', (v ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?$' AND length(v) <= 63), "
        "v ~ '%s', (v ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$' "
        "AND v !~ '[^.]{64}') FROM (VALUES %s) t(v)" % (old_label, old_zone, values))
    assert len(rows) == len(samples)
    for v, ol, nl, oz, nz in rows:
        assert ol == nl, ("label", v)
        assert oz == nz, ("zone", v)
    for _, definition in checks:
        assert "{0,61}" not in definition
