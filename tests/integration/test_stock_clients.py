"""Stock dyndns2 clients against the gateway: Debian's ddclient and inadyn,
run once in the foreground with configuration and cache in a temporary
directory, over HTTPS with the test CA (ddclient ssl_ca_file, inadyn
ca-trust-file).

The clients stay on 127.0.0.1: ddclient is given the address (use=ip,
ip=...), inadyn either runs a command that prints it (checkip-command) or
asks the gateway's own /checkip. The outcome is checked where it happens,
in the gateway's access log and in DNS, not only through the client's exit
code (inadyn's is not reliable for every failure)."""
import os
import re
import shutil
import subprocess

import pytest

ZONE = "ddns.example.test"



@pytest.fixture(autouse=True)
def clients_installed():
    for prog in ("ddclient", "inadyn", "curl"):
        assert shutil.which(prog), "%s is missing: run scripts/install-deps" % prog


def results(stack, device_id):
    """The result words of the gateway's /nic/update log lines for a device."""
    return re.findall(r"path=/nic/update status=\d+ result=(\S+) device=%s " % device_id,
                      stack.gateway_log())


def write_private(path, text):
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return str(path)


def add_name(stack, creds, label):
    stack.psql("INSERT INTO names (device_id, label, zone) VALUES ('%s', '%s', '%s')"
               % (creds["device_id"], label, ZONE))
    return "%s.%s" % (label, ZONE)


def ddclient(stack, tmp_path, creds, hosts, ip, password=None, force=False):
    # server must be a dotted name or address: ddclient replaces anything
    # else with its built-in default server on the Internet.
    server = "127.0.0.1:%d" % stack.https_port
    conf = write_private(tmp_path / "ddclient.conf", """daemon=0
syslog=no
ssl=yes
ssl_ca_file={ca}
use=ip, ip={ip}
protocol=dyndns2
server={server}
login={login}
password='{password}'
{hosts}
""".format(ca=stack.ca_cert, ip=ip, server=server, login=creds["device_id"],
           password=password or creds["password"], hosts=",".join(hosts)))
    cmd = ["ddclient", "-daemon=0", "-foreground", "-file", conf,
           "-cache", str(tmp_path / "ddclient.cache"), "-verbose", "-noquiet"]
    if force:
        cmd.append("-force")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    out = p.stdout + p.stderr
    assert "Invalid Value" not in out and "members.dyndns.org" not in out, out
    return p.returncode, out


def inadyn(stack, tmp_path, creds, hosts, ip=None, password=None, force=False):
    """ip: the address a checkip-command prints; None: ask the gateway's
    /checkip."""
    if ip is None:
        checkip = ('checkip-server = "127.0.0.1:%d"\n    checkip-path = "/checkip"\n'
                   '    checkip-ssl = true' % stack.https_port)
    else:
        checkip = 'checkip-command = "/bin/echo %s"' % ip
    conf = write_private(tmp_path / "inadyn.conf", """verify-address = false
allow-ipv6 = true
ca-trust-file = {ca}
custom ddns-test {{
    ssl = true
    ddns-server = "127.0.0.1:{port}"
    ddns-path = "/nic/update?hostname=%h&myip=%i"
    username = {login}
    password = "{password}"
    hostname = {{ {hosts} }}
    {checkip}
}}
""".format(ca=stack.ca_cert, port=stack.https_port, login=creds["device_id"],
           password=password or creds["password"],
           hosts=", ".join('"%s"' % h for h in hosts), checkip=checkip))
    cache = tmp_path / "inadyn-cache"
    cache.mkdir(exist_ok=True)
    cmd = ["inadyn", "--once", "--foreground", "--no-pidfile", "-f", conf,
           "--cache-dir", str(cache), "-l", "info"]
    if force:
        cmd.append("--force")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    out = p.stdout + p.stderr
    assert "ifconfig.me" not in out, out
    return p.returncode, out


def test_ddclient_good_nochg_ipv6_several_hosts(stack, device, tmp_path):
    creds, _ = device
    dev, fqdn = creds["device_id"], creds["fqdn"]
    rc, out = ddclient(stack, tmp_path, creds, [fqdn], "192.0.2.221")
    assert rc == 0 and "SUCCESS:  updating %s: good: IP address set to 192.0.2.221" % fqdn in out, out
    assert stack.wait_dns(fqdn, "A", ["192.0.2.221"]) == ["192.0.2.221"]
    # forced again with the same address: nochg, which ddclient accepts
    rc, out = ddclient(stack, tmp_path, creds, [fqdn], "192.0.2.221", force=True)
    assert rc == 0 and "updating %s: nochg" % fqdn in out, out
    assert results(stack, dev) == ["good", "nochg"]
    # IPv6 and two names in one request, one line each
    second = add_name(stack, creds, "dd2-" + dev)
    rc, out = ddclient(stack, tmp_path, creds, [fqdn, second], "2001:db8::221", force=True)
    for name in (fqdn, second):
        assert "SUCCESS:  updating %s: good: IP address set to 2001:db8::221" % name in out, out
        assert stack.wait_dns(name, "AAAA", ["2001:db8::221"]) == ["2001:db8::221"]
    assert stack.dig(fqdn, "A") == ["192.0.2.221"]


def test_ddclient_wrong_password_is_badauth(stack, device, tmp_path):
    creds, _ = device
    other = stack.provision("02:00:00:ee:c1:01")
    rc, out = ddclient(stack, tmp_path, creds, [creds["fqdn"]], "192.0.2.222",
                       password=other["password"])
    assert "FAILED:   updating %s: badauth" % creds["fqdn"] in out, out
    assert results(stack, creds["device_id"]) == ["badauth"]
    assert stack.dig(creds["fqdn"], "A") == []


def test_inadyn_good_with_the_gateway_checkip_then_nochg(stack, device, tmp_path):
    creds, _ = device
    dev, fqdn = creds["device_id"], creds["fqdn"]
    # Only when /checkip answers does inadyn use it; were it to fail, inadyn
    # would fall back to a server on the Internet, so make sure first.
    status, body = stack.https_request(b"GET /checkip HTTP/1.0\r\n\r\n")
    assert (status, body) == (200, b"127.0.0.1\n")
    rc, out = inadyn(stack, tmp_path, creds, [fqdn])
    assert rc == 0, out
    assert stack.wait_dns(fqdn, "A", ["127.0.0.1"]) == ["127.0.0.1"]
    rc, out = inadyn(stack, tmp_path, creds, [fqdn], force=True)
    assert rc == 0, out
    assert results(stack, dev) == ["good", "nochg"]
    log = stack.gateway_log()
    assert log.count("path=/checkip status=200") >= 2


def test_inadyn_ipv6_and_several_hosts(stack, device, tmp_path):
    creds, _ = device
    dev, fqdn = creds["device_id"], creds["fqdn"]
    second = add_name(stack, creds, "in2-" + dev)
    rc, out = inadyn(stack, tmp_path, creds, [fqdn, second], ip="2001:db8::223")
    assert rc == 0, out
    for name in (fqdn, second):
        assert stack.wait_dns(name, "AAAA", ["2001:db8::223"]) == ["2001:db8::223"]
    # inadyn sends one request per host
    assert results(stack, dev) == ["good", "good"]


def test_inadyn_wrong_password_is_badauth(stack, device, tmp_path):
    creds, _ = device
    other = stack.provision("02:00:00:ee:c1:02")
    inadyn(stack, tmp_path, creds, [creds["fqdn"]], ip="192.0.2.224",
           password=other["password"])
    assert results(stack, creds["device_id"]) == ["badauth"]
    assert stack.dig(creds["fqdn"], "A") == []
