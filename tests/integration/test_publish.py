"""DNS publishing: outbox coalescing and 'ddns-gateway resync', against the
real Knot DNS of the session stack and against BIND 9 (named) on a stack of
its own, with the configuration docs/DNS-SERVERS.md shows."""
import os
import re
import subprocess
import time
import uuid

import pytest

import ddnsstack

ZONE = ddnsstack.ZONE
GATEWAY = os.path.join(ddnsstack.BIN, "ddns-gateway")


@pytest.fixture(scope="module")
def bind_stack():
    reason = ddnsstack.Stack.named_confined()
    if reason:
        pytest.skip(reason)
    with ddnsstack.started("ddns-bind-", "bind stack", dns_server="bind") as s:
        yield s


@pytest.fixture(params=["knot", "bind"])
def dstack(request):
    """The session's stack (Knot DNS), or the BIND 9 stack."""
    return request.getfixturevalue("stack" if request.param == "knot" else "bind_stack")


def nsupdate(stack, *commands):
    """Changes the zone behind the gateway's back (as a lost journal or an
    old backup would), with the stack's TSIG key."""
    script = "server 127.0.0.1 %d\nzone %s\n%s\nsend\n" % (stack.dns_port, ZONE,
                                                          "\n".join(commands))
    p = subprocess.run(["nsupdate", "-y", "hmac-sha256:%s:%s" % (ddnsstack.TSIG_NAME,
                                                                stack.tsig_secret)],
                       input=script, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr


def resync(stack, *args):
    return subprocess.run([GATEWAY, "resync", ZONE, "-c", stack.gw_conf] + list(args),
                          capture_output=True, text=True, timeout=120)


def update(stack, path, *args):
    time.sleep(1.05)  # one accepted request per second per device (replay rule)
    return stack.client(path, *args).stdout.strip()


def test_changes_to_one_name_coalesce_to_the_newest(dstack):
    stack = dstack
    fqdn = "co-%s.%s" % (uuid.uuid4().hex[:10], ZONE)
    rows = ", ".join("('%s', '%s', 'A', '198.51.100.%d', NULL)" % (ZONE, fqdn, i)
                     for i in range(1, 6))
    # five versions of one record set and one of another, committed together
    stack.psql("WITH q AS (INSERT INTO dns_outbox (zone, fqdn, rrtype, address, ttl) "
               "VALUES %s, ('%s', '%s', 'AAAA', '2001:db8::5', 120) RETURNING 1) "
               "SELECT pg_notify('ddns_outbox', '') FROM q LIMIT 1" % (rows, ZONE, fqdn))
    assert stack.wait_dns(fqdn, "A", ["198.51.100.5"]) == ["198.51.100.5"]
    assert stack.wait_dns(fqdn, "AAAA", ["2001:db8::5"]) == ["2001:db8::5"]
    assert stack.outbox_empty()
    # one UPDATE carried two changes for the six rows
    assert re.search(r"published zone=%s changes=2 rows=6 " % re.escape(ZONE),
                     stack.gateway_log()), stack.gateway_log()[-2000:]


def test_resync_repairs_what_the_dns_server_lost(dstack, tmp_path):
    stack = dstack
    devs = []
    for i in range(4):
        creds = stack.provision("0e:5e:%02x:00:00:%02x" % (os.getpid() & 0xff, i + 1))
        path = stack.write_credentials(creds, str(tmp_path / ("d%d.json" % i)))
        fqdn = creds["fqdn"]
        assert update(stack, path, "--ipv4", "203.0.113.%d" % (10 + i)) == \
            "good 203.0.113.%d" % (10 + i)
        assert stack.wait_dns(fqdn, "A", ["203.0.113.%d" % (10 + i)]) == \
            ["203.0.113.%d" % (10 + i)]
        devs.append((creds, path, fqdn))
    (c0, _, f0), (c1, _, f1), (c2, _, f2), (c3, _, f3) = devs
    assert stack.outbox_empty()
    # revoke device 2 in the database only: its record is now one too many
    stack.psql("UPDATE devices SET status = 'revoked' WHERE device_id = '%s'" % c2["device_id"])
    # move device 3 to a new label in the database only: the old name was
    # published (history) and no longer exists
    new_label = "rs-%s" % uuid.uuid4().hex[:12]
    stack.psql("UPDATE names SET label = '%s' WHERE device_id = '%s'" % (new_label,
                                                                      c3["device_id"]))
    new3 = "%s.%s" % (new_label, ZONE)
    # the DNS server loses one record, serves a wrong one, a wrong TTL, and
    # has a record added by hand
    manual = "manual-%s.%s" % (uuid.uuid4().hex[:8], ZONE)
    nsupdate(stack, "update delete %s. A" % f0,
             "update delete %s. A" % f1, "update add %s. 60 A 192.0.2.254" % f1,
             "update add %s. 60 AAAA 2001:db8::99" % f1,
             "update add %s. 60 A 192.0.2.77" % manual)
    assert stack.dig(f0) == [] and stack.dig(f1) == ["192.0.2.254"]

    p = resync(stack, "--dry-run")
    assert p.returncode == 4, p.stdout + p.stderr
    # (on the session's stack, earlier tests may have left differences of
    # their own: these are counted too)
    m = re.search(r"differences: (\d+) missing, (\d+) wrong, (\d+) extra, (\d+) removed",
                  p.stdout)
    assert m, p.stdout
    counts = [int(x) for x in m.groups()]
    assert counts[0] >= 2 and counts[1] >= 1 and counts[2] >= 2 and counts[3] >= 1, p.stdout
    assert "record(s) not published by the gateway left alone" in p.stdout
    assert re.search(r"missing +A +%s +zone: - +database: 203\.0\.113\.10 ttl 60"
                     % re.escape(f0), p.stdout), p.stdout
    assert re.search(r"wrong +A +%s +zone: 192\.0\.2\.254 ttl 60 +database: 203\.0\.113\.11"
                     % re.escape(f1), p.stdout), p.stdout
    assert re.search(r"extra +AAAA +%s .*database: no address" % re.escape(f1), p.stdout)
    assert re.search(r"extra +A +%s .*database: device revoked" % re.escape(f2), p.stdout)
    assert re.search(r"removed +A +%s " % re.escape(f3), p.stdout)
    assert re.search(r"missing +A +%s " % re.escape(new3), p.stdout)
    assert stack.dig(f0) == [], "a dry run changes nothing"

    p = resync(stack)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "%d change(s) queued" % sum(counts) in p.stdout, p.stdout
    assert "published" in p.stdout, p.stdout
    assert stack.dig(f0) == ["203.0.113.10"]
    assert stack.dig(f1) == ["203.0.113.11"] and stack.dig(f1, "AAAA") == []
    assert stack.dig(f2) == []
    assert stack.dig(f3) == [] and stack.dig(new3) == ["203.0.113.13"]
    assert stack.dig(manual) == ["192.0.2.77"], "records the gateway never published stay"

    p = resync(stack)
    assert p.returncode == 0 and "in sync, nothing to do" in p.stdout, p.stdout + p.stderr


def test_resync_errors(stack, tmp_path):
    p = resync(stack, "--timeout", "0")
    assert p.returncode == 2 and "--timeout wants seconds" in p.stderr
    p = subprocess.run([GATEWAY, "resync", "-c", stack.gw_conf], capture_output=True, text=True)
    assert p.returncode == 2 and "which ZONE" in p.stderr
    p = subprocess.run([GATEWAY, "resync", "other.example", "-c", stack.gw_conf],
                       capture_output=True, text=True)
    assert p.returncode == 1 and "zone 'other.example' is not configured" in p.stderr
    p = subprocess.run([GATEWAY, "resync", "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "EXIT STATUS" in p.stdout
    # a server that refuses the transfer: a key it does not know
    conf = tmp_path / "gw.conf"
    text = open(stack.gw_conf).read()
    secret = tmp_path / "other.secret"
    secret.write_text("c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=\n")
    os.chmod(secret, 0o600)
    text = re.sub(r"tsig_secret_file = .*", "tsig_secret_file = %s" % secret, text)
    conf.write_text(text)
    p = subprocess.run([GATEWAY, "resync", ZONE, "-c", str(conf)], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 3, p.stdout + p.stderr
    assert "zone transfer" in p.stderr and "c2VjcmV0" not in p.stderr + p.stdout
