"""Master keys in a PKCS#11 token, end to end, with SoftHSM2 from Debian's
packages in a temporary directory (a token of its own, SOFTHSM2_CONF):
keys generated in the token by `ddns-provision keygen --pkcs11`, shown to
be impossible to read out (pkcs11-tool from OpenSC reads the token on its
own), a batch provisioned from them, devices updating through a gateway
whose [keys] pkcs11 names the token (signed requests from ddns-client and
dyndns2), a key added to the token taken on SIGHUP, show / derive giving
the batch's secrets again, and wrong PIN, missing token, missing key and
an unsafe PIN file refused with messages that name what is wrong and
never the PIN.

The stack is the test module's own: its gateway reads the token."""
import base64
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

import ddnsstack

PROV = os.path.join(ddnsstack.BIN, "ddns-provision")
GATEWAY = os.path.join(ddnsstack.BIN, "ddns-gateway")
ZONE = ddnsstack.ZONE
PIN = "4711-0815"
WRONG_PIN = "1234-9876"
TOKEN = "ddns-it"
MODULES = ["/usr/lib/softhsm/libsofthsm2.so",
           "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
           "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"]
MODULE = next((m for m in MODULES if os.path.exists(m)), None)

pytestmark = pytest.mark.skipif(
    MODULE is None or shutil.which("softhsm2-util") is None,
    reason="SoftHSM2 (Debian package softhsm2) is not installed: no PKCS#11 token to test with")


class Token:
    """A SoftHSM2 token in directory d, and the environment that finds it."""

    def __init__(self, d):
        self.dir = d
        os.makedirs(os.path.join(d, "tokens"), mode=0o700)
        self.conf = os.path.join(d, "softhsm2.conf")
        with open(self.conf, "w") as f:
            f.write("directories.tokendir = %s/tokens\nobjectstore.backend = file\n"
                    "log.level = ERROR\nslots.removable = false\n" % d)
        self.env = dict(os.environ, SOFTHSM2_CONF=self.conf)
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", TOKEN,
                        "--pin", PIN, "--so-pin", "9999-0000"], env=self.env, check=True,
                       capture_output=True, timeout=60)
        self.pin_file = self.write_pin("token.pin", PIN)

    def write_pin(self, name, pin, mode=0o600):
        path = os.path.join(self.dir, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w") as f:
            f.write(pin + "\n")
        os.chmod(path, mode)
        return path

    def uri(self, path_extra="", token=TOKEN, pin_file=None, query_extra=None):
        query = query_extra or "pin-source=%s" % (pin_file or self.pin_file)
        return "pkcs11:token=%s%s?module-path=%s&%s" % (token, path_extra, MODULE, query)


def prov(token, *args, timeout=120):
    return subprocess.run([PROV] + list(args), capture_output=True, text=True, timeout=timeout,
                          env=token.env)


@pytest.fixture(scope="module")
def hsm():
    """(stack, token): the token with master key h1, generated in it by
    ddns-provision, and a stack whose gateway loads the token's keys."""
    holder = {}

    def configure(stack):
        token = Token(os.path.join(stack.dir, "softhsm"))
        p = prov(token, "keygen", "--pkcs11", token.uri(), "--kid", "h1")
        assert p.returncode == 0, p.stderr
        assert "created master key 'h1' in token '%s' (generated inside the token" % TOKEN \
            in p.stdout
        stack.keys_pkcs11 = token.uri()
        stack.gateway_env = {"SOFTHSM2_CONF": token.conf}
        holder["token"] = token

    with ddnsstack.started("ddns-hsm-", "hsm stack", configure=configure) as s:
        yield s, holder["token"]


def batch(stack, token, tmp_path, macs, *extra):
    src = tmp_path / ("in-%d.csv" % time.monotonic_ns())
    src.write_text("mac,serial,model\n" + "".join(
        "%s,HSM-%s,IPC-G5\n" % (m, m.replace(":", "")) for m in macs))
    out = tmp_path / ("out-%d.jsonl" % time.monotonic_ns())
    p = prov(token, "batch", "--csv", str(src), "--zone", ZONE, "--operator", "hsm-test",
             "--pkcs11", token.uri(), "--db", stack.provision_conninfo, "--out", str(out), *extra)
    assert p.returncode == 0, p.stderr
    creds = [json.loads(line) for line in out.read_text().splitlines()]
    for c in creds:
        c["path"] = stack.write_credentials({k: c[k] for k in ("device_id", "kid", "secret")},
                                            str(tmp_path / ("%s.json" % c["device_id"])))
    return creds


def nic_update(stack, creds, addr):
    auth = base64.b64encode(("%s:%s" % (creds["device_id"], creds["password"])).encode())
    raw = ("GET /nic/update?hostname=%s&myip=%s HTTP/1.1\r\nHost: localhost\r\n"
           "Authorization: Basic %s\r\nUser-Agent: AcmeCam-X9/1.0.0\r\nConnection: close\r\n\r\n"
           % (creds["fqdn"], addr, auth.decode())).encode()
    return stack.https_request(raw)


def test_keys_generated_in_the_token_cannot_be_read_out(hsm):
    stack, token = hsm
    p = prov(token, "keys", "list", "--pkcs11", token.uri(), "--db", stack.provision_conninfo)
    assert p.returncode == 0, p.stderr
    row = [l for l in p.stdout.splitlines() if l.startswith("h1 ")]
    assert row and "newest" in row[0] and "generated in the token" in row[0], p.stdout
    fingerprint = row[0].split()[2]
    assert len(fingerprint) == 16

    if shutil.which("pkcs11-tool") is None:
        pytest.skip("pkcs11-tool (Debian package opensc) is not installed")
    tool = ["pkcs11-tool", "--module", MODULE, "--token-label", TOKEN, "--login",
            "--pin", PIN]
    listed = subprocess.run(tool + ["--list-objects", "--type", "secrkey"], env=token.env,
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    block = listed.stdout.split("label:      h1")[1].split("Secret Key Object")[0]
    # CKA_SENSITIVE true, CKA_EXTRACTABLE false (and never were), made in the token
    assert "sensitive, always sensitive, never extractable, local" in block, listed.stdout
    read = subprocess.run(tool + ["--read-object", "--type", "secrkey", "--label", "h1"],
                          env=token.env, capture_output=True, text=True, timeout=60)
    assert read.returncode != 0
    assert "CKR_ATTRIBUTE_SENSITIVE" in read.stdout + read.stderr, read.stdout + read.stderr


def test_batch_from_the_token_and_devices_update_through_the_gateway(hsm, tmp_path):
    stack, token = hsm
    macs = ["0a:11:%02x:00:00:%02x" % (os.getpid() & 0xff, i + 1) for i in range(6)]
    creds = batch(stack, token, tmp_path, macs)
    assert {c["kid"] for c in creds} == {"h1/1"}      # key id h1, generation 1
    assert stack.psql("SELECT count(*) FROM devices WHERE kid = 'h1' AND device_id IN (%s)"
                      % ",".join("'%s'" % c["device_id"] for c in creds))[0][0] == "6"
    # the signed protocol through the real SDK client
    for i, c in enumerate(creds[:4]):
        p = stack.client(c["path"], "--ipv4", "192.0.2.%d" % (60 + i))
        assert p.stdout.strip() == "good 192.0.2.%d" % (60 + i), p.stdout + p.stderr
    stack.wait_dns(creds[0]["fqdn"], "A", ["192.0.2.60"])
    # dyndns2: the password is checked against the secret the token derives
    assert nic_update(stack, creds[4], "192.0.2.70") == (200, b"good 192.0.2.70\n")
    wrong = dict(creds[5], password=creds[5]["password"][:-2] + "AA")
    assert nic_update(stack, wrong, "192.0.2.71") == (200, b"badauth\n")

    # show and derive give the batch's secrets again, from the token
    p = prov(token, "show", "--pkcs11", token.uri(), "--mac", macs[0])
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["secret"] == creds[0]["secret"]
    src = tmp_path / "again.csv"
    src.write_text("mac,serial,model\n%s,HSM-X,IPC-G5\n" % macs[1])
    p = prov(token, "derive", "--csv", str(src), "--zone", ZONE, "--pkcs11", token.uri(),
             "--public", str(tmp_path / "again.public.csv"))
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["secret"] == creds[1]["secret"]
    for c in creds:
        assert c["secret"] not in stack.gateway_log()


def test_a_key_id_the_token_does_not_hold_is_badauth(hsm, tmp_path):
    stack, token = hsm
    # a device of the file key k1 (the stack's own key directory, which this
    # gateway does not read)
    creds = stack.provision("0a:12:%02x:00:00:01" % (os.getpid() & 0xff))
    assert creds["kid"] == "k1/1"
    path = stack.write_credentials(creds, str(tmp_path / "k1.json"))
    p = stack.client(path, "--ipv4", "192.0.2.80")
    assert p.stdout.strip() == "badauth", p.stdout + p.stderr


def test_sighup_loads_a_key_added_to_the_token(hsm, tmp_path):
    stack, token = hsm
    p = prov(token, "keygen", "--pkcs11", token.uri(), "--kid", "h2")
    assert p.returncode == 0, p.stderr
    creds = batch(stack, token, tmp_path, ["0a:13:%02x:00:00:01" % (os.getpid() & 0xff)],
                  "--kid", "h2")
    assert creds[0]["kid"] == "h2/1"
    p = stack.client(creds[0]["path"], "--ipv4", "192.0.2.90")
    assert p.stdout.strip() == "badauth", p.stdout
    stack.sighup()
    assert "reloaded %s: TLS certificate(s), 2 master key(s)" % stack.gw_conf \
        in stack.gateway_log()
    time.sleep(1.05)    # a newer timestamp than the refused request's
    p = stack.client(creds[0]["path"], "--ipv4", "192.0.2.91")
    assert p.stdout.strip() == "good 192.0.2.91", p.stdout + p.stderr


def check_config(stack, token, uri):
    conf = os.path.join(stack.dir, "gateway-check.conf")
    with open(conf, "w") as f:
        f.write(stack.gateway_config_text(ddnsstack.free_port()).replace(
            "pkcs11 = %s" % stack.keys_pkcs11, "pkcs11 = %s" % uri))
    return subprocess.run([GATEWAY, "--check-config", "-c", conf], capture_output=True,
                          text=True, timeout=60, env=token.env)


@pytest.mark.parametrize("case", ["wrong PIN", "wrong pin-value", "missing token",
                                  "missing key", "unsafe PIN file", "no PIN", "misspelt"])
def test_problems_are_named_and_the_pin_never_shown(hsm, case):
    stack, token = hsm
    wrong = token.write_pin("wrong.pin", WRONG_PIN)
    unsafe = token.write_pin("unsafe.pin", PIN, mode=0o644)
    uri, says = {
        "wrong PIN": (token.uri(pin_file=wrong),
                      "token '%s' refused the PIN from %s (CKR_PIN_INCORRECT)" % (TOKEN, wrong)),
        "wrong pin-value": (token.uri(query_extra="pin-value=" + WRONG_PIN),
                            "token '%s' refused the PIN from pin-value (CKR_PIN_INCORRECT)"
                            % TOKEN),
        "missing token": (token.uri(token="no-such-token"),
                          "no token labelled 'no-such-token' in PKCS#11 module %s (tokens "
                          "present: '%s'" % (MODULE, TOKEN)),
        "missing key": (token.uri(path_extra=";object=h9"),
                        "token '%s' holds no key labelled 'h9'" % TOKEN),
        "unsafe PIN file": (token.uri(pin_file=unsafe),
                            "pin-source %s: PIN file is accessible by group or others "
                            "(mode 0644)" % unsafe),
        "no PIN": ("pkcs11:token=%s?module-path=%s" % (TOKEN, MODULE),
                   "token '%s' needs a PIN: add pin-source=FILE" % TOKEN),
        "misspelt": (token.uri(query_extra="pin-sorce=" + token.pin_file),
                     "unknown attribute 'pin-sorce'"),
    }[case]
    p = prov(token, "show", "--pkcs11", uri, "--mac", "3c:5a:b4:f0:9a:21")
    assert p.returncode == 2
    assert p.stdout == ""
    assert says in p.stderr, p.stderr
    for secret in (PIN, WRONG_PIN):
        assert secret not in p.stderr
    # the gateway says the same, naming the configuration key
    g = check_config(stack, token, uri)
    assert g.returncode == 1
    assert "[keys] pkcs11: " + says in g.stderr, g.stderr
    for secret in (PIN, WRONG_PIN):
        assert secret not in g.stderr + g.stdout


def test_a_refused_reload_keeps_the_tokens_keys(hsm, tmp_path):
    stack, token = hsm
    with open(stack.gw_conf) as f:
        good = f.read()
    wrong = token.write_pin("reload-wrong.pin", WRONG_PIN)
    try:
        with open(stack.gw_conf, "w") as f:
            f.write(good.replace(token.pin_file, wrong))
        stack.procs["gateway"].send_signal(signal.SIGHUP)
        deadline = time.time() + 20
        while "reload refused: " not in stack.gateway_log():
            assert time.time() < deadline
            time.sleep(0.1)
        # the token is logged in already, so it would not look at the PIN:
        # the gateway compares it with the one it logged in with
        assert "differs from the one this process logged in with" in stack.gateway_log()
        assert WRONG_PIN not in stack.gateway_log()
    finally:
        with open(stack.gw_conf, "w") as f:
            f.write(good)
    creds = batch(stack, token, tmp_path, ["0a:14:%02x:00:00:01" % (os.getpid() & 0xff)])
    p = stack.client(creds[0]["path"], "--ipv4", "192.0.2.95")
    assert p.stdout.strip() == "good 192.0.2.95", p.stdout + p.stderr
