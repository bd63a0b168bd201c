"""No device takes over the zone's own hosts (docs/SECURITY.md, "A device
takes over zone infrastructure"): ddns-provision and the admin API refuse
a label that matches the reserved patterns (cmn_label; the default list,
or DDNS_RESERVED_LABELS / [admin] reserved_labels) or that already holds
records in the zone without being a device's name; and the DNS server
itself lets the gateway's TSIG key change only A and AAAA records below
the apex, never at the zone's own hosts.

The stack's zone holds the operator's host 'portal' (an A record in the
zone file, no device's name) besides the name server 'ns1'."""
import json
import os
import subprocess
import urllib.error
import urllib.request
import uuid

import pytest

import ddnsstack

ZONE = ddnsstack.ZONE
PROV = os.path.join(ddnsstack.BIN, "ddns-provision")
CTL = os.path.join(ddnsstack.BIN, "ddnsctl")

# One label per default pattern (cmn_label.h, CMN_LABEL_RESERVED_DEFAULT)
# that a device label can spell ('_*' cannot be one: '_' is no label
# character, so it is refused by the label syntax already).
DEFAULT_REFUSED = {
    "ns*": "ns2", "dns*": "dns", "www": "www", "www[0-9]*": "www1", "mail*": "mailhost",
    "mx*": "mx1", "smtp*": "smtp", "imap*": "imaps", "pop": "pop", "pop3": "pop3",
    "ftp": "ftp", "sftp": "sftp", "webmail": "webmail", "autodiscover": "autodiscover",
    "autoconfig": "autoconfig", "wpad": "wpad", "isatap": "isatap", "localhost": "localhost",
    "api": "api", "admin": "admin", "hostmaster": "hostmaster", "postmaster": "postmaster",
    "webmaster": "webmaster", "abuse": "abuse", "ddns": "ddns", "gateway": "gateway",
    "update": "update", "checkip": "checkip",
}


def configure(s):
    s.zone_hosts = {"ns1": "127.0.0.1", "portal": "192.0.2.250"}


@pytest.fixture(scope="module")
def stack():
    with ddnsstack.started("ddns-labels-", "labels", configure=configure) as s:
        yield s


@pytest.fixture(scope="module")
def wtok(stack):
    p = subprocess.run([CTL, "token", "create", "--db", stack.conninfo, "--scope", "write",
                        "--comment", "labels"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def new_mac():
    return "0a:52:" + ":".join(uuid.uuid4().hex[i:i + 2] for i in range(0, 8, 2))


def prov(stack, *args, env=None):
    full = dict(os.environ)
    for k in ("DDNS_RESERVED_LABELS", "DDNS_DNS_SERVER", "DDNS_OPERATOR"):
        full.pop(k, None)
    full.update(env or {})
    return subprocess.run([PROV] + list(args) + ["--key-dir", stack.key_dir, "--db",
                                                 stack.conninfo, "--operator", "labels"],
                          capture_output=True, text=True, timeout=60, env=full)


def issue(stack, name, env=None):
    return prov(stack, "issue", "--mac", new_mac(), "--zone", ZONE, "--name", name, env=env)


def api(stack, method, path, body, token):
    """One admin API request; (status, decoded JSON answer)."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (stack.admin_port, path),
                                 method=method, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json",
                                          "Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, json.loads(r.read().decode())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode())


def names_of(stack, label):
    return stack.psql("SELECT device_id FROM names WHERE label = '%s'" % label)


@pytest.mark.parametrize("pattern,label", sorted(DEFAULT_REFUSED.items()))
def test_provisioning_refuses_each_default_pattern(stack, pattern, label):
    p = issue(stack, label)
    assert p.returncode == 2, p.stdout + p.stderr
    assert ("hostname label '%s' is reserved for the zone's own hosts (pattern '%s' of the "
            "reserved labels, DDNS_RESERVED_LABELS)" % (label, pattern)) in p.stderr, p.stderr
    assert p.stdout == "" and names_of(stack, label) == []


def test_provisioning_takes_a_configured_list(stack):
    env = {"DDNS_RESERVED_LABELS": "lab-*, front?"}
    for label, pattern in (("lab-7", "lab-*"), ("front1", "front?")):
        p = issue(stack, label, env=env)
        assert p.returncode == 2 and ("(pattern '%s' of the reserved labels" % pattern) in \
            p.stderr, p.stderr
    # the list replaces the default: www is a device label here
    p = issue(stack, "www", env=env)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["fqdn"] == "www." + ZONE
    # a list that is not one is refused, not ignored
    p = issue(stack, "cam-x", env={"DDNS_RESERVED_LABELS": "Upper"})
    assert p.returncode == 2 and "DDNS_RESERVED_LABELS: pattern 'Upper'" in p.stderr, p.stderr


def test_batch_and_reissue_refuse_reserved_labels(stack, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("mac,serial,model,name\n%s,SN-L1,IPC,cam-ok-1\n%s,SN-L2,IPC,mail\n"
                   % (new_mac(), new_mac()))
    p = prov(stack, "batch", "--zone", ZONE, "--csv", str(src), "--out",
             str(tmp_path / "out.jsonl"))
    assert p.returncode == 1, p.stdout + p.stderr
    assert ":3: " in p.stderr and "hostname label 'mail' is reserved" in p.stderr, p.stderr
    assert names_of(stack, "cam-ok-1") == []      # all lines or none
    mac = new_mac()
    p = prov(stack, "issue", "--mac", mac, "--zone", ZONE)
    assert p.returncode == 0, p.stderr
    p = prov(stack, "reissue", "--mac", mac, "--name", "ns7")
    assert p.returncode == 2 and "hostname label 'ns7' is reserved" in p.stderr, p.stderr


def test_random_labels_skip_reserved_patterns(stack):
    # every random label with the prefix 'm' that starts 'mx' or 'mail' is
    # reserved: drawn labels never are
    env = {"DDNS_RESERVED_LABELS": "m[a-m]*"}
    for _ in range(8):
        p = prov(stack, "issue", "--mac", new_mac(), "--zone", ZONE, "--label-prefix", "m",
                 env=env)
        assert p.returncode == 0, p.stderr
        label = json.loads(p.stdout)["fqdn"].split(".")[0]
        assert label[1] not in "abcdefghijklm", label
    p = prov(stack, "issue", "--mac", new_mac(), "--zone", ZONE, "--label-prefix", "ns")
    assert p.returncode == 2 and "--label-prefix 'ns' is not usable" in p.stderr, p.stderr


def test_provisioning_refuses_a_name_the_zone_already_holds(stack):
    dns = {"DDNS_DNS_SERVER": "127.0.0.1:%d" % stack.dns_port}
    p = issue(stack, "portal", env=dns)
    assert p.returncode == 1, p.stdout + p.stderr
    assert ("the name portal.%s is reserved: it already holds records in the zone that no "
            "device published" % ZONE) in p.stderr, p.stderr
    assert names_of(stack, "portal") == []
    # a free name passes, and a device's own published name stays its own
    mac = new_mac()
    p = prov(stack, "issue", "--mac", mac, "--zone", ZONE, "--name", "garage-cam", env=dns)
    assert p.returncode == 0, p.stderr
    creds = json.loads(p.stdout)
    path = stack.write_credentials(creds, os.path.join(stack.dir, "garage.json"))
    assert stack.client(path, "--ipv4", "192.0.2.31").stdout.strip() == "good 192.0.2.31"
    assert stack.wait_dns("garage-cam." + ZONE, "A", ["192.0.2.31"]) == ["192.0.2.31"]
    p = prov(stack, "issue", "--mac", mac, "--zone", ZONE, "--name", "garage-cam", env=dns)
    assert p.returncode == 0 and "nothing changed" in p.stderr, p.stderr
    # a server that does not answer: refused with the reason, nothing written
    p = issue(stack, "quiet-cam", env={"DDNS_DNS_SERVER": "127.0.0.1:%d" % ddnsstack.free_port()})
    assert p.returncode == 1 and "cannot tell whether quiet-cam.%s" % ZONE in p.stderr, p.stderr
    assert names_of(stack, "quiet-cam") == []


def test_admin_api_refuses_reserved_and_zone_held_labels(stack, wtok):
    p = issue(stack, "yard-cam")
    assert p.returncode == 0, p.stderr
    dev = json.loads(p.stdout)["device_id"]
    base = "/api/v1/devices/%s/names" % dev
    for name in ("www." + ZONE, "ns1", "mx2." + ZONE, "autodiscover"):
        st, body = api(stack, "POST", base, {"name": name}, wtok)
        assert st == 400 and body["field"] == "name", (name, st, body)
        assert "is reserved for the zone's own hosts (pattern '" in body["error"], body
        assert "of [admin] reserved_labels)" in body["error"], body
    st, body = api(stack, "PUT", base + "/yard-cam." + ZONE, {"name": "smtp"}, wtok)
    assert st == 400 and "'smtp' is reserved" in body["error"], body
    # held in the zone by a record no device published: 409, full or bare
    for name in ("portal." + ZONE, "portal"):
        st, body = api(stack, "POST", base, {"name": name}, wtok)
        assert st == 409 and body["field"] == "name", (st, body)
        assert body["error"] == ("the name portal.%s is reserved: it already holds records in "
                                 "the zone that no device published" % ZONE), body
    st, body = api(stack, "PUT", base + "/yard-cam." + ZONE, {"name": "portal"}, wtok)
    assert st == 409 and "already holds records" in body["error"], body
    assert names_of(stack, "portal") == []
    # a normal label passes
    st, body = api(stack, "POST", base, {"name": "yard-cam-2." + ZONE}, wtok)
    assert st == 201 or st == 200, (st, body)
    assert names_of(stack, "yard-cam-2") == [[dev]]


def test_admin_api_takes_a_configured_list(stack, wtok):
    p = issue(stack, "shed-cam")
    assert p.returncode == 0, p.stderr
    base = "/api/v1/devices/%s/names" % json.loads(p.stdout)["device_id"]
    with open(stack.gw_conf) as f:
        conf = f.read()
    assert "[admin]\n" in conf
    try:
        with open(stack.gw_conf, "w") as f:
            f.write(conf.replace("[admin]\n", "[admin]\nreserved_labels = shed-*, www\n", 1))
        stack.sighup()
        st, body = api(stack, "POST", base, {"name": "shed-cam-2"}, wtok)
        assert st == 400 and "(pattern 'shed-*' of [admin] reserved_labels)" in body["error"], \
            body
        # the list replaces the default: mx9 is a device label here
        st, body = api(stack, "POST", base, {"name": "mx9"}, wtok)
        assert st in (200, 201), (st, body)
    finally:
        with open(stack.gw_conf, "w") as f:
            f.write(conf)
        stack.sighup()


def knsupdate(stack, *lines):
    """Sends one UPDATE signed with the gateway's TSIG key; knsupdate's output."""
    script = "server 127.0.0.1 %d\nzone %s.\n%s\nsend\nanswer\n" % (
        stack.dns_port, ZONE, "\n".join(lines))
    p = subprocess.run(["knsupdate", "-y", "hmac-sha256:%s:%s" % (ddnsstack.TSIG_NAME,
                                                                stack.tsig_secret)],
                       input=script, capture_output=True, text=True, timeout=30)
    return p.stdout + p.stderr


def refused(out):
    """Knot answers an UPDATE its ACL refuses NOTAUTH with the TSIG error
    BADKEY (the same key's A updates pass: the key itself is good)."""
    return "status: NOERROR" not in out and any(w in out for w in ("NOTAUTH", "REFUSED",
                                                                   "BADKEY"))


def test_the_gateway_key_changes_only_device_addresses(stack):
    """What a stolen gateway TSIG key can do to the zone (Knot ACL of
    docs/DNS-SERVERS.md, as the stack runs it): A and AAAA below the apex."""
    assert "status: NOERROR" in knsupdate(stack, "update add acl-cam.%s. 60 A 192.0.2.41" % ZONE)
    assert "status: NOERROR" in knsupdate(stack, "update delete acl-cam.%s. A" % ZONE)
    for line in ("update add acl-cam.%s. 60 TXT hello" % ZONE,
                 "update add acl-cam.%s. 60 CNAME elsewhere.example." % ZONE,
                 "update add %s. 60 NS ns.attacker.example." % ZONE,
                 "update add %s. 60 A 192.0.2.66" % ZONE,
                 "update add %s. 60 MX 10 mail.attacker.example." % ZONE,
                 "update delete ns1.%s. A" % ZONE,
                 "update add ns1.%s. 60 A 192.0.2.66" % ZONE,
                 "update add portal.%s. 60 A 192.0.2.66" % ZONE):
        out = knsupdate(stack, line)
        assert refused(out), (line, out)
    assert stack.dig("ns1." + ZONE, "A") == ["127.0.0.1"]
    assert stack.dig("portal." + ZONE, "A") == ["192.0.2.250"]
    assert stack.dig(ZONE, "NS") == ["ns1.%s." % ZONE]


@pytest.fixture(scope="module")
def bind_stack():
    reason = ddnsstack.Stack.named_confined()
    if reason:
        pytest.skip(reason)
    with ddnsstack.started("ddns-labels-bind-", "labels bind", configure=configure,
                           dns_server="bind") as s:
        yield s


def test_bind_checks_every_record_of_an_update(bind_stack):
    """BIND's update-policy (docs/DNS-SERVERS.md) decides record by record:
    a host's record cannot ride along with a device's, and the gateway
    still publishes devices under it."""
    s = bind_stack
    assert "status: NOERROR" in knsupdate(s, "update add acl-cam.%s. 60 AAAA 2001:db8::41" % ZONE)
    for lines in (["update add acl-cam.%s. 60 TXT hello" % ZONE],
                  ["update add %s. 60 A 192.0.2.66" % ZONE],
                  ["update add acl-cam2.%s. 60 A 192.0.2.42" % ZONE,
                   "update add ns1.%s. 60 A 192.0.2.66" % ZONE],
                  ["update add acl-cam2.%s. 60 A 192.0.2.42" % ZONE,
                   "update delete portal.%s. A" % ZONE]):
        out = knsupdate(s, *lines)
        assert refused(out), (lines, out)
    assert s.dig("ns1." + ZONE, "A") == ["127.0.0.1"]
    assert s.dig("portal." + ZONE, "A") == ["192.0.2.250"]
    assert s.dig("acl-cam2." + ZONE, "A") == []
    creds = s.provision("02:00:00:b1:0d:01", name="bind-cam")
    path = s.write_credentials(creds, os.path.join(s.dir, "bind-cam.json"))
    assert s.client(path, "--ipv4", "192.0.2.43").stdout.strip() == "good 192.0.2.43"
    assert s.wait_dns("bind-cam." + ZONE, "A", ["192.0.2.43"]) == ["192.0.2.43"]
