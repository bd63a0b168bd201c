"""SIGHUP applies what the configuration reference marks 'SIGHUP applies
it' and names, in a warning, every changed key marked 'needs a restart'.

The key-leak runbook (docs/OPERATIONS.md) depends on the first: a zone's
TSIG key is replaced without a restart. Here the DNS server first knows
both keys, the gateway is switched to the new one by SIGHUP, then the DNS
server forgets the old one: a change published after that proves the
publisher signs with the new key."""
import base64
import os
import re
import signal
import subprocess
import time

import pytest

import ddnsstack


@pytest.fixture(scope="module")
def rstack():
    with ddnsstack.started("ddns-reload-", "reload stack") as s:
        yield s


def wait_until(cond, timeout=15.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return False


def knot_keys(s, keys):
    """Knot's configuration with the TSIG keys [(name, secret)], every one
    under the gateway key's rules (ACLs ddns-*); applied with knotc reload."""
    conf = os.path.join(s.dir, "knot", "knot.conf")
    with open(conf) as f:
        text = f.read()
    key_block = "key:\n" + "".join("  - id: %s\n    algorithm: hmac-sha256\n    secret: %s\n"
                                   % k for k in keys)
    text = re.sub(r"key:\n(?:  - id: .*\n    algorithm: .*\n    secret: .*\n)+", key_block, text)
    text = re.sub(r"(\n  - id: ddns-[a-z]+\n    key: ).*\n",
                  r"\g<1>[%s]\n" % ", ".join(k[0] for k in keys), text)
    with open(conf, "w") as f:
        f.write(text)
    out = subprocess.run(["knotc", "-c", conf, "reload"], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr


def sighup(s):
    n = s.gateway_log().count("reloaded %s" % s.gw_conf)
    s.procs["gateway"].send_signal(signal.SIGHUP)
    assert wait_until(lambda: s.gateway_log().count("reloaded %s" % s.gw_conf) > n), \
        s.gateway_log()[-3000:]


def test_sighup_replaces_a_zones_tsig_key(rstack, tmp_path):
    s = rstack
    creds = s.provision("02:00:00:7e:00:01")
    path = s.write_credentials(creds, str(tmp_path / "d.json"))
    assert s.client(path, "--ipv4", "192.0.2.71").stdout.strip() == "good 192.0.2.71"
    assert s.wait_dns(creds["fqdn"], "A", ["192.0.2.71"]) == ["192.0.2.71"]

    # the new key: the DNS server knows both for the change-over
    new_secret = base64.b64encode(os.urandom(32)).decode()
    secret_file = tmp_path / "tsig-new.secret"
    secret_file.write_text(new_secret + "\n")
    os.chmod(secret_file, 0o600)
    knot_keys(s, [(ddnsstack.TSIG_NAME, s.tsig_secret), ("ddns-update-new", new_secret)])

    with open(s.gw_conf) as f:
        conf = f.read()
    conf = re.sub(r"tsig_key_name = .*", "tsig_key_name = ddns-update-new", conf)
    conf = re.sub(r"tsig_secret_file = .*", "tsig_secret_file = %s" % secret_file, conf)
    with open(s.gw_conf, "w") as f:
        f.write(conf)
    taken = s.gateway_log().count("publisher: zone settings reloaded")
    sighup(s)
    assert "needs a restart" not in s.gateway_log().split("received SIGHUP")[-1]
    # the publisher takes the new settings before its next run (at the
    # latest after its one-second safety wait)
    assert wait_until(lambda: s.gateway_log().count("publisher: zone settings reloaded") > taken)

    # the old key is gone from the DNS server: only the new one can publish
    knot_keys(s, [("ddns-update-new", new_secret)])
    time.sleep(1.05)    # a newer timestamp for the device
    assert s.client(path, "--ipv4", "192.0.2.72").stdout.strip() == "good 192.0.2.72"
    assert s.wait_dns(creds["fqdn"], "A", ["192.0.2.72"]) == ["192.0.2.72"], \
        s.gateway_log()[-3000:]
    assert s.outbox_empty()
    assert new_secret not in s.gateway_log()


def test_sighup_names_the_keys_that_need_a_restart(rstack):
    s = rstack
    with open(s.gw_conf) as f:
        conf = f.read()
    changed = re.sub(r"pool_size = \d+", "pool_size = 7", conf)
    changed = re.sub(r"workers = \d+", "workers = 3", changed)
    changed = re.sub(r"clock_skew = \d+", "clock_skew = 120", changed)
    assert changed.count("= 7") > conf.count("= 7") and "workers = 3" in changed and \
        "clock_skew = 120" in changed
    with open(s.gw_conf, "w") as f:
        f.write(changed)
    try:
        sighup(s)
        tail = s.gateway_log().split("received SIGHUP")[-1]
        m = re.search(r"reload: (.*) changed: needs a restart; the running value\(s\) stay in use",
                      tail)
        assert m, tail
        # exactly the changed keys that need a restart (clock_skew is applied)
        assert sorted(m.group(1).split(", ")) == ["[database] pool_size", "[gateway] workers"]
        # the gateway still serves
        assert s.https_request(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n"
                               b"Connection: close\r\n\r\n")[0] == 200
    finally:
        with open(s.gw_conf, "w") as f:
            f.write(conf)
        sighup(s)


def _reload_refused(s):
    """Sends SIGHUP; the log's text from it on once the reload was refused."""
    before = len(s.gateway_log())
    s.procs["gateway"].send_signal(signal.SIGHUP)
    assert wait_until(lambda: "reload refused" in s.gateway_log()[before:]), \
        s.gateway_log()[before:][-3000:]
    return s.gateway_log()[before:]


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o610])
def test_a_tsig_secret_file_others_may_access_is_refused(rstack, tmp_path, mode):
    """A TSIG secret file with any group or other permission bit is refused
    as a master key file is: the gateway does not start with it, and a
    reload to it is refused (the running key stays in use), the message
    naming the file and its mode, never the secret."""
    s = rstack
    secret = base64.b64encode(os.urandom(32)).decode()
    secret_file = tmp_path / "tsig-open.secret"
    secret_file.write_text(secret + "\n")
    os.chmod(secret_file, mode)
    with open(s.gw_conf) as f:
        conf = f.read()
    changed = re.sub(r"tsig_secret_file = .*", "tsig_secret_file = %s" % secret_file, conf)
    want = "%s: TSIG secret file is accessible by group or others (mode %04o)" % (secret_file,
                                                                                  mode)
    # a gateway started with it stops at once, naming it
    other = tmp_path / "gw-open.conf"
    other.write_text(changed)
    p = subprocess.run([os.path.join(ddnsstack.BIN, "ddns-gateway"), "-c", str(other)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and want in p.stderr, p.stderr
    assert secret not in p.stdout + p.stderr
    # the running gateway refuses a reload to it and still publishes
    with open(s.gw_conf, "w") as f:
        f.write(changed)
    try:
        log = _reload_refused(s)
        assert want in log and secret not in log, log
    finally:
        with open(s.gw_conf, "w") as f:
            f.write(conf)
        sighup(s)
    creds = s.provision("02:00:00:7e:01:%02x" % (mode & 0xff))
    path = s.write_credentials(creds, str(tmp_path / "d.json"))
    assert s.client(path, "--ipv4", "192.0.2.81").stdout.strip() == "good 192.0.2.81"
    assert s.wait_dns(creds["fqdn"], "A", ["192.0.2.81"]) == ["192.0.2.81"]
