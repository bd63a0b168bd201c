"""Secret generations and the dyndns2 password (docs/PROTOCOL.md sections 3,
4.4 and 10) end to end, against the real gateway, PostgreSQL and Knot DNS:

- every reissue (ddns-provision, with or without another key id, and the
  admin API) gives the device a new generation: every earlier secret and
  dyndns2 password is badauth from the commit on, and none comes back;
- a device of generation 0 (registered before generations) keeps working
  with its secret and its kid.secret password until it is reissued;
- from generation 1 on the Basic password is derived from the secret: the
  secret itself is refused as the password, and the password does not sign;
- a signed-only model gets badagent on /nic/update (configuration and the
  admin API's policy) and a device kept off dyndns2 gets badauth there
  (admin API and ddnsctl), while their signed updates go through;
- ddns-client signs with a k1/2 credential; batch, derive and register
  carry the key reference, the secret and the password in every format.

The module runs a stack of its own with the master keys k1 and k2, since it
changes the firmware policy every gateway of its database follows."""
import base64
import csv
import hashlib
import hmac
import json
import os
import struct
import subprocess
import time
import zlib

import pytest

import attack
import ddnsstack
from test_admin_api import api, ctl, make_token, wait_for
from test_dyndns2 import nic_update

PROV = os.path.join(ddnsstack.BIN, "ddns-provision")
ZONE = ddnsstack.ZONE
UA = "AcmeCam-X9/1.0.0"
SIGNED_ONLY = "AcmeCam-S1"          # [firmware] signed_only_models of the stack


@pytest.fixture(scope="module")
def gstack():
    with ddnsstack.started("ddns-gen-", "generations",
                           configure=lambda s: (s.make_keys("k1"), s.make_keys("k2"))) as s:
        yield s


@pytest.fixture(scope="module")
def wtok(gstack):
    return make_token(gstack, "write", "generations")


def prov(stack, *args, db=True):
    cmd = [PROV] + list(args)
    if args[0] != "register":       # the one command without a key
        cmd += ["--key-dir", stack.key_dir]
    if db:
        cmd += ["--db", stack.provision_conninfo]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DDNS_")}
    env["DDNS_OPERATOR"] = "generations test"
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)


_macs = iter(range(1, 100000))


def new_mac():
    n = next(_macs)
    return "0a:9e:%02x:%02x:%02x:%02x" % (os.getpid() & 0xff, (os.getpid() >> 8) & 0xff,
                                          n >> 8, n & 0xff)


def issue(stack, tmp_path, kid="k1", model=None):
    args = ["issue", "--mac", new_mac(), "--zone", ZONE, "--kid", kid]
    if model:
        args += ["--model", model]
    p = prov(stack, *args)
    assert p.returncode == 0, p.stderr
    return creds_file(stack, tmp_path, json.loads(p.stdout))


def creds_file(stack, tmp_path, creds):
    """creds with 'path': a ddns-client credentials file of them (as printed)."""
    creds["path"] = stack.write_credentials(
        creds, str(tmp_path / ("%s-%s.json" % (creds["device_id"], creds["kid"].replace("/", "-")))))
    return creds


def reissue(stack, tmp_path, creds, *args):
    p = prov(stack, "reissue", creds["device_id"], *args)
    assert p.returncode == 0, p.stderr
    return creds_file(stack, tmp_path, json.loads(p.stdout)), p.stderr


def signed(stack, creds, ipv4, ua=None):
    """One signed update with ddns-client (or, with ua, an independent signer
    sending that User-Agent); returns the answer line."""
    if ua is not None:
        raw = attack.signed_update(creds, body=("ipv4=" + ipv4).encode(), ua=ua)
        return stack.https_request(raw)[1].decode().strip()
    p = stack.client(creds["path"], "--ipv4", ipv4, "--timestamp", str(attack.next_ts()))
    return p.stdout.strip() or "error: " + p.stderr.strip()[-300:]


def dyn(stack, creds, ipv4, password=None, ua=UA):
    """One /nic/update of the device's name; returns the answer line. After
    a change it waits until a signed request may follow: a dyndns2 change
    raises the signed replay marker to its second + 1 (docs/PROTOCOL.md
    section 5.1)."""
    status, body, _ = nic_update(stack, "hostname=%s&myip=%s" % (creds["fqdn"], ipv4),
                                 creds["device_id"], password or creds["password"], ua=ua)
    assert status == 200
    if body.startswith("good"):
        done = int(time.time())
        while int(time.time()) <= done + 1:
            time.sleep(0.1)
    return body.strip()


def b64u(raw):
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def secret_of(creds):
    return attack.secret_bytes(creds)


def dyndns2_password(keyref, secret):
    """docs/PROTOCOL.md section 3, independently of the C code."""
    if "/" not in keyref:
        return "%s.%s" % (keyref, b64u(secret))
    return "%s.%s" % (keyref, b64u(hmac.new(secret, b"ddns-dyndns2-password-v1",
                                            hashlib.sha256).digest()))


def registered(stack, device_id):
    return stack.psql("SELECT kid, generation, dyndns2 FROM devices WHERE device_id = '%s'"
                      % device_id)[0]


def test_reissue_with_the_same_key_id_rotates_the_secret(gstack, tmp_path):
    a = issue(gstack, tmp_path)
    assert (a["kid"], a["generation"]) == ("k1/1", 1)
    assert a["password"] == dyndns2_password("k1/1", secret_of(a))
    assert signed(gstack, a, "192.0.2.1") == "good 192.0.2.1"
    assert dyn(gstack, a, "192.0.2.1") == "nochg 192.0.2.1"

    n, err = reissue(gstack, tmp_path, a, "--kid", "k1")
    assert (n["kid"], n["generation"]) == ("k1/2", 2)
    assert "keeps key id 'k1', generation 1 to 2" in err
    assert n["secret"] != a["secret"] and n["password"] != a["password"]
    assert registered(gstack, a["device_id"]) == ["k1", "2", "t"]
    assert gstack.psql("SELECT kid, previous_kid, generation, previous_generation, "
                       "devices_changed FROM provision_batches WHERE device_id = '%s' "
                       "ORDER BY batch_id" % a["device_id"]) == \
        [["k1", "", "1", "", "0"], ["k1", "k1", "2", "1", "1"]]

    # from the commit on: the old secret and the old password are refused
    assert signed(gstack, a, "192.0.2.2") == "badauth"
    assert dyn(gstack, a, "192.0.2.2") == "badauth"
    assert signed(gstack, n, "192.0.2.3") == "good 192.0.2.3"
    assert dyn(gstack, n, "192.0.2.3") == "nochg 192.0.2.3"
    assert gstack.wait_dns(n["fqdn"], "A", ["192.0.2.3"]) == ["192.0.2.3"]
    # a reissue without anything else still changes the secret every time
    n3, _ = reissue(gstack, tmp_path, n)
    assert n3["kid"] == "k2/3"      # the newest key id
    assert signed(gstack, n, "192.0.2.4") == "badauth"
    assert signed(gstack, n3, "192.0.2.4") == "good 192.0.2.4"


def test_no_earlier_secret_comes_back(gstack, tmp_path):
    c1 = issue(gstack, tmp_path, kid="k1")
    c2, err = reissue(gstack, tmp_path, c1, "--kid", "k2")
    assert "moved from key id 'k1' (generation 1) to 'k2' (generation 2)" in err
    c3, _ = reissue(gstack, tmp_path, c2, "--kid", "k1")
    assert [c["kid"] for c in (c1, c2, c3)] == ["k1/1", "k2/2", "k1/3"]
    assert len({c["secret"] for c in (c1, c2, c3)}) == 3
    assert len({c["password"][-43:] for c in (c1, c2, c3)}) == 3
    for old in (c1, c2):
        assert signed(gstack, old, "192.0.2.10") == "badauth"
        assert dyn(gstack, old, "192.0.2.10") == "badauth"
        # also an old secret sent with the current key reference
        forged = dict(old, kid=c3["kid"])
        assert gstack.https_request(attack.signed_update(forged, body=b"ipv4=192.0.2.10"))[1] \
            == b"badauth\n"
    assert signed(gstack, c3, "192.0.2.11") == "good 192.0.2.11"
    assert dyn(gstack, c3, "192.0.2.11") == "nochg 192.0.2.11"

    # show: the registered key id and generation from the database, or the
    # ones given without it (the old secret can be derived, but is refused)
    p = prov(gstack, "show", "--mac", c1["device_id"])
    assert p.returncode == 0, p.stderr
    shown = json.loads(p.stdout)
    assert (shown["kid"], shown["generation"], shown["secret"], shown["password"]) == \
        (c3["kid"], 3, c3["secret"], c3["password"])
    p = prov(gstack, "show", "--mac", c1["device_id"], "--kid", "k1", "--generation", "1",
             db=False)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["secret"] == c1["secret"]
    p = prov(gstack, "show", "--mac", c1["device_id"], "--kid", "k2")
    assert p.returncode == 1 and "registered under key id 'k1', not 'k2'" in p.stderr
    for bad in ("-1", "10000000", "x"):
        p = prov(gstack, "show", "--mac", c1["device_id"], "--generation", bad, db=False)
        assert p.returncode == 2 and "--generation" in p.stderr


def test_admin_api_reissue_raises_the_generation(gstack, wtok, tmp_path):
    a = issue(gstack, tmp_path)
    mac = a["device_id"]
    assert signed(gstack, a, "192.0.2.20") == "good 192.0.2.20"
    st, j = api(gstack, "POST", "/api/v1/devices/%s/reissue" % mac, {"kid": "k1"}, token=wtok)
    assert st == 200, j
    assert (j["kid"], j["previous_kid"], j["generation"], j["previous_generation"],
            j["key_ref"], j["changed"]) == ("k1", "k1", 2, 1, "k1/2", True)
    assert "secret" not in json.dumps(j) and "password" not in json.dumps(j)
    assert signed(gstack, a, "192.0.2.21") == "badauth"
    assert dyn(gstack, a, "192.0.2.21") == "badauth"
    p = prov(gstack, "show", "--mac", mac)
    assert p.returncode == 0, p.stderr
    n = creds_file(gstack, tmp_path, json.loads(p.stdout))
    assert n["kid"] == "k1/2"
    assert signed(gstack, n, "192.0.2.22") == "good 192.0.2.22"
    st, d = api(gstack, "GET", "/api/v1/devices/" + mac, token=wtok)
    assert (d["kid"], d["generation"], d["dyndns2"]) == ("k1", 2, True)
    assert d["actions"][0]["detail"] == {"kid": "k1", "previous_kid": "k1", "generation": 2,
                                         "previous_generation": 1}
    # ddnsctl does the same
    p = ctl(gstack, "reissue", mac, "--kid", "k2", token=wtok, check=0)
    assert "generation: 3" in p.stdout
    assert registered(gstack, mac) == ["k2", "3", "t"]
    assert signed(gstack, n, "192.0.2.23") == "badauth"
    p = ctl(gstack, "show", mac, token=wtok, check=0)
    assert "generation" in p.stdout and "3" in p.stdout


def test_a_generation_0_device_keeps_its_secret_and_password(gstack, tmp_path):
    """A device registered before generations (as migration 0010 leaves
    them): its v1 secret signs, its kid.secret password works, until it is
    reissued."""
    mac = new_mac()
    dev = mac.replace(":", "")
    label = "legacy-" + dev[-6:]
    gstack.psql("INSERT INTO devices (device_id, kid) VALUES ('%s', 'k1'); INSERT INTO names "
                "(device_id, label, zone) VALUES ('%s', '%s', '%s')" % (dev, dev, label, ZONE))
    assert registered(gstack, dev) == ["k1", "0", "t"]
    p = prov(gstack, "show", "--mac", mac)      # the database says generation 0
    assert p.returncode == 0, p.stderr
    old = json.loads(p.stdout)
    old["fqdn"] = "%s.%s" % (label, ZONE)
    # the secret of the label ddns-device-secret-v1, the legacy password
    master = open(os.path.join(gstack.key_dir, "k1.key")).read().split("key = ")[1].strip()
    v1 = hmac.new(bytes.fromhex(master), b"ddns-device-secret-v1\x00k1\x00" + dev.encode(),
                  hashlib.sha256).digest()
    assert (old["kid"], old["generation"], old["secret"]) == ("k1", 0, b64u(v1))
    assert old["password"] == "k1." + old["secret"]
    creds_file(gstack, tmp_path, old)
    assert signed(gstack, old, "192.0.2.30") == "good 192.0.2.30"
    assert dyn(gstack, old, "192.0.2.31") == "good 192.0.2.31"
    # ddns-client takes the legacy password alone too
    only_pw = {"path": gstack.write_credentials({"device_id": dev, "password": old["password"]},
                                                str(tmp_path / "legacy-password.json"))}
    assert signed(gstack, only_pw, "192.0.2.32") == "good 192.0.2.32"
    # a generation-1 secret of the device is not its secret
    p = prov(gstack, "show", "--mac", mac, "--kid", "k1", "--generation", "1", db=False)
    g1 = creds_file(gstack, tmp_path, dict(json.loads(p.stdout), fqdn=old["fqdn"]))
    assert signed(gstack, g1, "192.0.2.33") == "badauth"
    assert dyn(gstack, g1, "192.0.2.33") == "badauth"

    # reissued: generation 1, the legacy forms stop
    n, _ = reissue(gstack, tmp_path, old, "--kid", "k1")
    assert (n["kid"], n["generation"]) == ("k1/1", 1)
    assert n["secret"] == g1["secret"]
    assert signed(gstack, old, "192.0.2.34") == "badauth"
    assert dyn(gstack, old, "192.0.2.34") == "badauth"
    assert signed(gstack, n, "192.0.2.35") == "good 192.0.2.35"
    assert dyn(gstack, n, "192.0.2.36") == "good 192.0.2.36"


def test_the_dyndns2_password_is_not_the_signing_secret(gstack, tmp_path):
    a = issue(gstack, tmp_path)
    assert dyn(gstack, a, "192.0.2.40") == "good 192.0.2.40"
    # the signing secret given as the Basic password
    assert dyn(gstack, a, "192.0.2.41", password=a["kid"] + "." + a["secret"]) == "badauth"
    # the password's bytes do not sign: a leaked Basic header is no secret
    pw_bytes = base64.urlsafe_b64decode(a["password"].split(".", 1)[1] + "=")
    raw = attack.signed_update(a, body=b"ipv4=192.0.2.42", secret=pw_bytes)
    assert gstack.https_request(raw)[1] == b"badauth\n"
    # the password with the key id alone, or another generation
    for ref in ("k1", "k1/2", "k1/0", "k1/01"):
        assert dyn(gstack, a, "192.0.2.43", password=ref + "." + a["password"][-43:]) == "badauth"
    assert dyn(gstack, a, "192.0.2.44") == "good 192.0.2.44"
    assert signed(gstack, a, "192.0.2.45") == "good 192.0.2.45"


def test_signed_only_models_get_badagent_on_nic_update(gstack, wtok, tmp_path):
    a = issue(gstack, tmp_path, model=SIGNED_ONLY)
    # [firmware] signed_only_models: refused before the credentials
    assert dyn(gstack, a, "192.0.2.50", ua=SIGNED_ONLY + "/2.0") == "badagent"
    assert dyn(gstack, a, "192.0.2.50", password="k1/1." + "A" * 43,
               ua=SIGNED_ONLY + "/2.0") == "badagent"
    assert signed(gstack, a, "192.0.2.51", ua=SIGNED_ONLY + "/2.0") == "good 192.0.2.51"
    assert dyn(gstack, a, "192.0.2.52") == "good 192.0.2.52"   # another model: allowed

    # the operators' policy in the database
    st, j = api(gstack, "PUT", "/api/v1/policy", {"signed_only_models": ["AcmeCam-S2"]},
                token=wtok)
    assert st == 200 and j["signed_only_models"] == ["acmecam-s2"], j
    st, j = api(gstack, "GET", "/api/v1/policy", token=wtok)
    assert j["signed_only_models"] == ["acmecam-s2"]
    assert j["config"]["signed_only_models"] == SIGNED_ONLY
    # the answering gateway's workers switch to it on their own loops
    assert wait_for(lambda: dyn(gstack, a, "192.0.2.53", ua="AcmeCam-S2/1.0") == "badagent")
    assert signed(gstack, a, "192.0.2.54", ua="AcmeCam-S2/1.0") == "good 192.0.2.54"
    st, j = api(gstack, "PUT", "/api/v1/policy", {"signed_only_models": ["a/b"]}, token=wtok)
    assert st == 400 and j["field"] == "signed_only_models"
    # with ddnsctl; the six-argument form of the previous release keeps them
    p = ctl(gstack, "policy", "set", "--signed-only", "AcmeCam-S3", "--block", "AcmeCam-B1",
            token=wtok, check=0)
    assert "signed-only models, refused on /nic/update (database): acmecam-s3" in p.stdout
    assert gstack.psql("SELECT (admin_policy_set(NULL, 't', 'database', '{acmecam-b2}', '{}', "
                       "'{}')).body->'signed_only_models'") == [['["acmecam-s3"]']]
    # every worker follows the database policy within 5 s
    assert wait_for(lambda: dyn(gstack, a, "192.0.2.55", ua="AcmeCam-S3/1.0") == "badagent")
    p = ctl(gstack, "policy", "set", "--clear", token=wtok, check=0)
    assert wait_for(lambda: dyn(gstack, a, "192.0.2.56", ua="AcmeCam-S3/1.0") ==
                    "good 192.0.2.56")


def test_a_device_kept_off_dyndns2_gets_badauth(gstack, wtok, tmp_path):
    a = issue(gstack, tmp_path)
    mac = a["device_id"]
    assert dyn(gstack, a, "192.0.2.60") == "good 192.0.2.60"
    p = ctl(gstack, "dyndns2", mac, "deny", token=wtok, check=0)
    assert "dyndns2: no" in p.stdout and "changed: yes" in p.stdout
    assert registered(gstack, mac)[2] == "f"
    # indistinguishable from a wrong password; the signed protocol is not affected
    assert dyn(gstack, a, "192.0.2.61") == "badauth"
    assert dyn(gstack, a, "192.0.2.61", password=a["kid"] + "." + "A" * 43) == "badauth"
    assert signed(gstack, a, "192.0.2.62") == "good 192.0.2.62"
    st, d = api(gstack, "GET", "/api/v1/devices/" + mac, token=wtok)
    assert d["dyndns2"] is False and d["last_result"] == "good"
    assert d["actions"][0]["action"] == "dyndns2"
    assert d["actions"][0]["detail"] == {"allowed": False, "previous": True}
    st, j = api(gstack, "POST", "/api/v1/devices/%s/dyndns2" % mac, {"allowed": "no"},
                token=wtok)
    assert st == 400 and j["field"] == "allowed"
    st, j = api(gstack, "POST", "/api/v1/devices/%s/dyndns2" % mac, {"allowed": False},
                token=wtok)
    assert st == 200 and j["changed"] is False
    assert ctl(gstack, "dyndns2", mac, "maybe", token=wtok).returncode == 2
    ctl(gstack, "dyndns2", mac, "allow", token=wtok, check=0)
    assert dyn(gstack, a, "192.0.2.63") == "good 192.0.2.63"


def test_ddns_client_with_a_k1_2_credential(gstack, tmp_path):
    a = issue(gstack, tmp_path)
    n, _ = reissue(gstack, tmp_path, a, "--kid", "k1")
    assert n["kid"] == "k1/2"
    # the file exactly as reissue printed it (kid, generation, secret, password, ...)
    p = gstack.client(n["path"], "--ipv4", "192.0.2.70", "-v", "--timestamp",
                      str(attack.next_ts()))
    assert p.returncode == 0 and p.stdout.strip() == "good 192.0.2.70", p.stderr
    out = str(tmp_path / "req.bin")
    p = gstack.client(n["path"], "--request-out", out, "--ipv4", "192.0.2.71")
    assert p.returncode == 0, p.stderr
    assert b",kid=k1/2,ts=" in open(out, "rb").read()
    # kid and secret alone; a password that is not theirs is refused
    minimal = gstack.write_credentials({k: n[k] for k in ("device_id", "kid", "secret")},
                                       str(tmp_path / "min.json"))
    assert signed(gstack, {"path": minimal}, "192.0.2.72") == "good 192.0.2.72"
    for pw in (a["password"], n["kid"] + "." + n["secret"]):
        bad = gstack.write_credentials(dict({k: n[k] for k in ("device_id", "kid", "secret")},
                                            password=pw), str(tmp_path / "bad.json"))
        p = gstack.client(bad, "--ipv4", "192.0.2.73")
        assert p.returncode == 2 and "password does not match" in p.stderr, p.stderr
    # the password alone cannot sign from generation 1 on
    pw_only = gstack.write_credentials({"device_id": n["device_id"], "password": n["password"]},
                                       str(tmp_path / "pw.json"))
    p = gstack.client(pw_only, "--ipv4", "192.0.2.74")
    assert p.returncode == 2 and "password" in p.stderr, p.stderr


def read_record(raw):
    """docs/PROVISIONING.md, "The flash record", version 2."""
    assert len(raw) == 512 and raw[:4] == b"DDNS" and raw[4] == 2
    assert struct.unpack(">I", raw[508:])[0] == zlib.crc32(raw[:508]) & 0xffffffff
    return {"device_id": raw[8:14].hex(), "kid": raw[16:32].rstrip(b"\0").decode(),
            "secret": raw[32:64], "fqdn": raw[64:320].rstrip(b"\0").decode(),
            "generation": struct.unpack(">I", raw[448:452])[0], "password": raw[452:484],
            "reserved": raw[484:508]}


def test_batch_derive_and_register_carry_the_generation(gstack, tmp_path):
    macs = [new_mac() for _ in range(2)]
    csv_path = tmp_path / "in.csv"
    csv_path.write_text("mac,serial,model\n" + "".join(
        "%s,GEN-%s,IPC-G5\n" % (m, m.replace(":", "")[-6:]) for m in macs))
    outs = {}
    for fmt in ("jsonl", "csv", "record"):
        out = str(tmp_path / ("out-" + fmt))
        p = prov(gstack, "batch", "--csv", str(csv_path), "--zone", ZONE, "--kid", "k1",
                 "--format", fmt, "--out-dir" if fmt == "record" else "--out", out)
        assert p.returncode == 0, p.stderr
        outs[fmt] = out
    lines = [json.loads(x) for x in open(outs["jsonl"])]
    rows = list(csv.DictReader(open(outs["csv"])))
    for c, r in zip(lines, rows):
        assert (c["kid"], c["generation"]) == ("k1/1", 1)
        assert c["password"] == dyndns2_password("k1/1", secret_of(c))
        assert (r["kid"], r["secret"], r["password"]) == (c["kid"], c["secret"], c["password"])
        rec = read_record(open(os.path.join(outs["record"], c["device_id"] + ".bin"),
                               "rb").read())
        assert (rec["kid"], rec["generation"]) == ("k1", 1)
        assert b64u(rec["secret"]) == c["secret"]
        assert "k1/1." + b64u(rec["password"]) == c["password"]
        assert rec["reserved"] == b"\0" * 24
    assert signed(gstack, creds_file(gstack, tmp_path, lines[0]), "192.0.2.80") == \
        "good 192.0.2.80"

    # a reissued device: the same batch again writes its current credentials
    n, _ = reissue(gstack, tmp_path, lines[0], "--kid", "k1")
    out = str(tmp_path / "again.jsonl")
    p = prov(gstack, "batch", "--csv", str(csv_path), "--zone", ZONE, "--kid", "k1", "--out", out)
    assert p.returncode == 0 and "nothing changed" in p.stderr, p.stderr
    again = [json.loads(x) for x in open(out)]
    assert (again[0]["kid"], again[0]["secret"]) == (n["kid"], n["secret"])
    assert again[1] == lines[1]

    # derive (no database) and register: the public file carries the generation
    mac = new_mac()
    csv_path.write_text("mac,serial,model\n%s,GEN-D1,IPC-G5\n" % mac)
    flash, public = str(tmp_path / "derived.jsonl"), str(tmp_path / "public.csv")
    p = prov(gstack, "derive", "--csv", str(csv_path), "--zone", ZONE, "--kid", "k1",
             "--generation", "5", "--out", flash, "--public", public, db=False)
    assert p.returncode == 0, p.stderr
    assert open(public).readline() == "mac,serial,model,name,kid,zone,generation\n"
    d = json.loads(open(flash).readline())
    assert (d["kid"], d["generation"]) == ("k1/5", 5)
    p = prov(gstack, "register", "--public", public)
    assert p.returncode == 0, p.stderr
    assert registered(gstack, d["device_id"])[:2] == ["k1", "5"]
    assert signed(gstack, creds_file(gstack, tmp_path, d), "192.0.2.81") == "good 192.0.2.81"
    # a public file of a release before generations: generation 0
    mac0 = new_mac()
    dev0 = mac0.replace(":", "")
    old_public = tmp_path / "old-public.csv"
    old_public.write_text("mac,serial,model,name,kid,zone\n%s,GEN-D0,IPC-G5,old-%s,k1,%s\n"
                          % (dev0, dev0[-6:], ZONE))
    p = prov(gstack, "register", "--public", str(old_public))
    assert p.returncode == 0, p.stderr
    assert registered(gstack, dev0)[:2] == ["k1", "0"]
