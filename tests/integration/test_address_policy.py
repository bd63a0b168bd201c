"""Where a device's name may point (docs/SECURITY.md, "A name pointed at
internal addresses"; docs/PROTOCOL.md sections 6 and 10): every block of
the IANA special-purpose registries that is not globally reachable, and
the other refused prefixes, through both protocols and both families, as
an address the request names and as the address the connection comes
from. A refused update is answered `403 badaddr <addr>` (signed, through
the SDK's ddns-client) or `abuse` (dyndns2), and nothing is written: the
device's rows, the history, the outbox and DNS stay as they were. A zone's
allow list ([zone] allow_addresses, applied by SIGHUP) lets its networks
through; globally reachable addresses always pass.

One stack of its own whose zone allows 10.20.0.0/16 and fd20::/16 only
(not loopback or the documentation ranges the other tests use), listening
on 127.0.0.1 and ::1."""
import itertools
import os
import re
import signal
import socket
import subprocess
import time

import pytest

import ddnsstack
from test_dyndns2 import basic, nic_update

UA = "AcmeCam-X9/1.0.0"
ALLOW = "10.20.0.0/16, fd20::/16"

# One address in each refused block (several for some), IPv4 then IPv6.
REFUSED_V4 = [
    "0.0.0.0", "0.1.2.3", "10.1.2.3", "100.64.0.1", "100.127.255.254", "127.0.0.1",
    "127.255.255.255", "169.254.169.254", "172.16.0.1", "172.31.255.255", "192.0.0.1",
    "192.0.0.170", "192.0.2.10", "192.88.99.1", "192.168.1.1", "198.18.0.1", "198.19.255.255",
    "198.51.100.7", "203.0.113.9", "224.0.0.1", "239.255.255.250", "240.0.0.1",
    "255.255.255.254", "255.255.255.255",
]
REFUSED_V6 = [
    "::", "::1", "::ffff:169.254.169.254", "::a9fe:a9fe",
    "64:ff9b::a9fe:a9fe", "64:ff9b:1::1", "100::1", "100:0:0:1::1", "2001::1",
    "2001:0:a9fe:a9fe::1", "2001:2::1", "2001:10::1", "2001:1ff:ffff::1", "2001:db8::1",
    "2002:a00:1::1", "3fff::1", "3fff:fff::1", "5f00::1", "fc00::1", "fd00::1", "fe80::1",
    "febf::1", "fec0::1", "ff02::1", "ff0e::1", "4000::1", "e000::1",
]
GLOBAL_V4 = ["1.0.0.1", "8.8.4.4", "192.0.0.9", "192.31.196.1", "223.255.255.254"]
GLOBAL_V6 = ["2a00:1450:4001::1", "2001:1::1", "2001:4:112::1", "2001:200::1",
             "2620:4f:8000::1", "3ffe:ffff::1"]


def canonical(addr):
    """The gateway's text form of an address (inet_ntop)."""
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    return socket.inet_ntop(fam, socket.inet_pton(fam, addr))


@pytest.fixture(scope="module")
def astack():
    def configure(s):
        s.zone_allow = ALLOW
        s.v6_port = ddnsstack.free_port()
        s.more_listen = ["[::1]:%d" % s.v6_port]
    with ddnsstack.started("ddns-addr-", "address policy stack", configure=configure) as s:
        yield s


_numbers = itertools.count(1)


@pytest.fixture
def dev(astack, tmp_path):
    mac = "02:ad:00:%02x:00:%02x" % (os.getpid() & 0xff, next(_numbers))
    creds = astack.provision(mac)
    return creds, astack.write_credentials(creds, str(tmp_path / "device.json"))


class Clock:
    """Strictly increasing timestamps for signed requests, so that accepted
    updates in the same second are not replays."""
    def __init__(self):
        self.ts = int(time.time())

    def next(self):
        self.ts = max(self.ts + 1, int(time.time()))
        return str(self.ts)


def state(stack, creds):
    """Everything the database holds about the device and its name."""
    dev_id = creds["device_id"]
    return {
        "device": stack.psql("SELECT d::text FROM devices d WHERE device_id = '%s'" % dev_id),
        "names": stack.psql("SELECT n::text FROM names n WHERE device_id = '%s'" % dev_id),
        "history": stack.psql("SELECT count(*) FROM history WHERE device_id = '%s'" % dev_id),
        "outbox": stack.psql("SELECT count(*) FROM dns_outbox WHERE fqdn = '%s'"
                             % creds["fqdn"]),
    }


def signed(stack, path, clock, *args, server=None):
    extra = ["--timestamp", clock.next()]
    if server:
        cmd = [os.path.join(ddnsstack.BIN, "ddns-client"), "--server", server,
               "--ca", stack.ca_cert, "--credentials", path] + list(args) + extra
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    return stack.client(path, *(list(args) + extra))


def assert_badaddr(p, *addrs):
    want = "badaddr %s\n" % " ".join(canonical(a) for a in addrs)
    assert (p.returncode, p.stdout) == (1, want), (p.stdout, p.stderr)
    # the SDK parsed it: the refused addresses, and idle (no retry storm)
    m = re.search(r"^ddns-client: answer: result=badaddr (.*) next=idle ", p.stderr, re.M)
    assert m, p.stderr
    assert m.group(1) == " ".join("addr=%s" % canonical(a) for a in addrs)


def dyn(stack, creds, query, **kw):
    return nic_update(stack, query, creds["device_id"], creds["password"], ua=UA, **kw)


def published(stack, creds, v4, v6):
    """The device's name holds v4 and v6 in DNS."""
    assert stack.wait_dns(creds["fqdn"], "A", [v4]) == [v4]
    assert stack.wait_dns(creds["fqdn"], "AAAA", [v6]) == [v6]


def test_every_refused_block_signed(astack, dev):
    creds, path = dev
    clock = Clock()
    p = signed(astack, path, clock, "--ipv4", "1.0.0.1", "--ipv6", "2a00:1450:4001::1")
    assert p.stdout == "good 1.0.0.1 2a00:1450:4001::1\n", p.stderr
    published(astack, creds, "1.0.0.1", "2a00:1450:4001::1")
    before = state(astack, creds)
    for a in REFUSED_V4:
        assert_badaddr(signed(astack, path, clock, "--ipv4", a), a)
    for a in REFUSED_V6:
        p = signed(astack, path, clock, "--ipv6", a)
        if a.startswith("::ffff:"):
            # an IPv4-mapped ipv6 is of the wrong family before any policy
            assert (p.returncode, p.stdout) == (1, "badrequest ipv6\n"), (a, p.stdout)
        else:
            assert_badaddr(p, a)
    # one refused address of two refuses the request; both refused: both named
    assert_badaddr(signed(astack, path, clock, "--ipv4", "8.8.8.8", "--ipv6", "fe80::1"),
                   "fe80::1")
    assert_badaddr(signed(astack, path, clock, "--ipv4", "10.9.9.9", "--ipv6", "2001:db8::9"),
                   "10.9.9.9", "2001:db8::9")
    # no address named: the connection's, over IPv4 and IPv6
    assert_badaddr(signed(astack, path, clock), "127.0.0.1")
    assert_badaddr(signed(astack, path, clock, server="[::1]:%d" % astack.v6_port), "::1")
    # nothing was written, and DNS still serves what it did
    assert state(astack, creds) == before
    assert astack.dig(creds["fqdn"], "A") == ["1.0.0.1"]
    assert astack.dig(creds["fqdn"], "AAAA") == ["2a00:1450:4001::1"]


def test_every_refused_block_dyndns2(astack, dev):
    creds, _ = dev
    fqdn = creds["fqdn"]
    assert dyn(astack, creds, "hostname=%s&myip=1.0.0.2,2a00:1450:4001::2" % fqdn)[:2] == \
        (200, "good 1.0.0.2,2a00:1450:4001::2\n")
    published(astack, creds, "1.0.0.2", "2a00:1450:4001::2")
    before = state(astack, creds)
    for a in REFUSED_V4 + REFUSED_V6:
        got = dyn(astack, creds, "hostname=%s&myip=%s" % (fqdn, a))[:2]
        assert got == (200, "abuse\n"), (a, got)
    # without hostname (every name), and with items that are not FQDNs
    assert dyn(astack, creds, "myip=192.168.0.1")[:2] == (200, "abuse\n")
    assert dyn(astack, creds, "hostname=%s,bad_name,%s&myip=8.8.8.8,fe80::2" % (fqdn, fqdn))[:2] \
        == (200, "abuse\nnotfqdn\nabuse\n")
    # no myip: the connection's address, over IPv4 and IPv6
    assert dyn(astack, creds, "hostname=%s" % fqdn)[:2] == (200, "abuse\n")
    raw = ("GET /nic/update?hostname=%s HTTP/1.1\r\nHost: localhost\r\nAuthorization: %s\r\n"
           "User-Agent: %s\r\nConnection: close\r\n\r\n"
           % (fqdn, basic(creds["device_id"], creds["password"]), UA)).encode()
    status, _, body = astack.https_exchange(raw, host="::1", port=astack.v6_port)
    assert (status, body) == (200, b"abuse\n")
    assert state(astack, creds) == before
    assert astack.dig(fqdn, "A") == ["1.0.0.2"]
    assert astack.dig(fqdn, "AAAA") == ["2a00:1450:4001::2"]
    # offline=YES publishes no address: the connection's is not looked at
    assert dyn(astack, creds, "hostname=%s&offline=YES" % fqdn)[:2] == (200, "good\n")


def test_globally_reachable_and_allowed_addresses_pass(astack, dev):
    creds, path = dev
    clock = Clock()
    for a in GLOBAL_V4:
        p = signed(astack, path, clock, "--ipv4", a)
        assert (p.returncode, p.stdout) == (0, "good %s\n" % a), p.stderr
    for a in GLOBAL_V6:
        p = signed(astack, path, clock, "--ipv6", a)
        assert p.returncode == 0 and p.stdout.startswith("good "), p.stderr
    # the zone's allow list: its networks pass, their neighbours do not
    p = signed(astack, path, clock, "--ipv4", "10.20.1.1", "--ipv6", "fd20::1")
    assert (p.returncode, p.stdout) == (0, "good 10.20.1.1 fd20::1\n"), p.stderr
    published(astack, creds, "10.20.1.1", "fd20::1")
    assert_badaddr(signed(astack, path, clock, "--ipv4", "10.21.0.1"), "10.21.0.1")
    assert_badaddr(signed(astack, path, clock, "--ipv6", "fd21::1"), "fd21::1")
    got = dyn(astack, creds, "hostname=%s&myip=10.20.255.254" % creds["fqdn"])[:2]
    assert got == (200, "good 10.20.255.254\n")
    assert dyn(astack, creds, "hostname=%s&myip=10.19.0.1" % creds["fqdn"])[:2] == \
        (200, "abuse\n")
    assert astack.wait_dns(creds["fqdn"], "A", ["10.20.255.254"]) == ["10.20.255.254"]


def test_allow_list_reload(astack, dev):
    """[zone] allow_addresses is applied by SIGHUP, without a restart."""
    creds, path = dev
    clock = Clock()

    def reload(allow):
        astack.zone_allow = allow
        astack.write_gateway_config()
        n = astack.gateway_log().count("reloaded %s" % astack.gw_conf)
        astack.procs["gateway"].send_signal(signal.SIGHUP)
        deadline = time.time() + 15
        while astack.gateway_log().count("reloaded %s" % astack.gw_conf) == n:
            assert time.time() < deadline, "no reload"
            time.sleep(0.05)

    assert_badaddr(signed(astack, path, clock, "--ipv4", "172.16.5.5"), "172.16.5.5")
    try:
        reload(ALLOW + ", 172.16.0.0/12")
        p = signed(astack, path, clock, "--ipv4", "172.16.5.5")
        assert (p.returncode, p.stdout) == (0, "good 172.16.5.5\n"), p.stderr
    finally:
        reload(ALLOW)
    assert_badaddr(signed(astack, path, clock, "--ipv4", "172.16.5.6"), "172.16.5.6")
    assert "needs a restart" not in astack.gateway_log().split("received SIGHUP")[-1]
