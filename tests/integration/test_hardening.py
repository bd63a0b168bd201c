"""The gateway on the open internet: every limit of [limits] crossed, the
PROXY protocol (v1 and v2, trusted and untrusted peers), IPv6, the admin
listener (/healthz, /readyz, /metrics), the log (no secret, JSON lines),
SIGHUP reloads under load and TLS (versions, resumption, ECDSA and RSA).

One gateway with tight limits serves this whole module. Tests that must not
disturb each other's per-source counts connect from different loopback
source addresses (127.0.0.x) or name different clients in PROXY headers;
every connection goes to 127.0.0.1 or ::1. Nothing here measures time: a
slow client is shown to be cut off before it could finish."""
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest

import ddnsstack

LIMITS = """
[limits]
max_header_size = 2048
max_body_size = 1024
max_uri_length = 256
max_query_params = 4
header_timeout = 2
max_connections = 10
max_connections_per_source = 6
auth_fail_limit = 3
auth_fail_window = 60
auth_block_time = 30
"""

HEALTH = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def have_ipv6():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def make_rsa_cert(stack):
    """An RSA server certificate from the stack's CA (for certificate2)."""
    t = os.path.join(stack.dir, "tls")
    j = lambda n: os.path.join(t, n)
    ddnsstack.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                   "-keyout", j("rsa.key"), "-out", j("rsa.csr")])
    ddnsstack.run(["openssl", "x509", "-req", "-in", j("rsa.csr"), "-CA", j("ca.crt"),
                   "-CAkey", j("ca.key"), "-set_serial", "4242", "-days", "30",
                   "-extfile", j("server.ext"), "-out", j("rsa.crt")])


# The hardening stack's gateway runs this many worker threads, so that the
# reload and stop tests below cover several event loops.
WORKERS = 4


def tls_lines(stack, cert="server.crt", key="server.key"):
    t = os.path.join(stack.dir, "tls")
    return ("certificate = {t}/{c}\nprivate_key = {t}/{k}\n"
            "certificate2 = {t}/rsa.crt\nprivate_key2 = {t}/rsa.key\n"
            .format(t=t, c=cert, k=key))


@pytest.fixture(scope="module")
def hs():
    def configure(s):
        s.proxy_port = ddnsstack.free_port()
        s.v6_port = ddnsstack.free_port() if have_ipv6() else None
        s.more_listen = ["127.0.0.1:%d" % s.proxy_port]
        if s.v6_port:
            s.more_listen.append("[::1]:%d" % s.v6_port)
        s.config_extra = LIMITS + ("\n[proxy]\nlisteners = 127.0.0.1:%d\ntrusted = 127.0.0.1\n"
                                   % s.proxy_port)
        s.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.notify.bind(os.path.join(s.dir, "notify.sock"))
        s.notify.setblocking(False)
        s.notes = []
        s.gateway_env = {"NOTIFY_SOCKET": os.path.join(s.dir, "notify.sock")}
        s.gateway_extra = "workers = %d\n" % WORKERS
        s.make_tls()
        make_rsa_cert(s)
        s.tls_lines = tls_lines(s)

    with ddnsstack.started("ddns-hard-", "hardening", configure) as s:
        yield s
        s.notify.close()


@pytest.fixture
def hdevice(hs, tmp_path):
    n = hdevice.count = getattr(hdevice, "count", 0) + 1
    creds = hs.provision("02:00:00:7e:%02x:%02x" % (os.getpid() & 0xff, n))
    return creds, hs.write_credentials(creds, str(tmp_path / "dev.json"))


signed = ddnsstack.Stack.signed_request     # (stack, cred_file, directory, *args)


def proxy_v1(src, sport, dst="127.0.0.1", dport=443):
    fam = "TCP6" if ":" in src else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n" % (fam, src, dst, sport, dport)).encode()


V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v2(src=None, sport=0, dst=None, dport=443):
    if src is None:     # LOCAL command: the proxy's own connection
        return V2_SIG + b"\x20\x00\x00\x00"
    fam = socket.AF_INET6 if ":" in src else socket.AF_INET
    dst = dst or ("::1" if fam == socket.AF_INET6 else "127.0.0.1")
    body = (socket.inet_pton(fam, src) + socket.inet_pton(fam, dst) +
            sport.to_bytes(2, "big") + dport.to_bytes(2, "big"))
    body += b"\x04\x00\x03abc"      # a TLV (PP2_TYPE_NOOP) is skipped
    return V2_SIG + bytes([0x21, 0x21 if fam == socket.AF_INET6 else 0x11]) + \
        len(body).to_bytes(2, "big") + body


def refused(stack, raw=HEALTH, **kw):
    """True when the gateway closes the connection without an answer."""
    try:
        stack.https_exchange(raw, timeout=10, **kw)
    except (ssl.SSLError, OSError):
        return True
    return False


def wait_until(pred, timeout=20.0, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def notifications(stack):
    """Every sd_notify datagram the gateway sent so far."""
    while True:
        try:
            stack.notes.append(stack.notify.recv(4096).decode())
        except BlockingIOError:
            return stack.notes


def wait_no_connections(stack):
    assert wait_until(lambda: stack.metrics()["ddns_connections_open"] == 0), \
        "connections of earlier tests still open"


def log_line_of(stack, headers):
    """The access-log line (text or JSON) of the answer carrying headers: the
    newest with its request id (the log goes on across restarts of the
    gateway, whose request ids start again at 1)."""
    rid = headers["x-request-id"]
    for line in reversed(stack.gateway_log().splitlines()):
        if "req=%s " % rid in line or '"req":%s,' % rid in line:
            return line
    return None


def cert_key_type(der):
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-text"], input=der,
                         capture_output=True, check=True)
    text = out.stdout.decode()
    return "rsa" if "rsaEncryption" in text else "ec" if "id-ecPublicKey" in text else text


def cert_serial(der):
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-serial"], input=der,
                         capture_output=True, check=True)
    return out.stdout.decode().strip()


# ---- [limits]: sizes, URI, query, methods ---------------------------------------

def test_header_size_limit(hs):
    # libevent 2.1 answers itself, with its own HTML page (it has no hook
    # for error pages): 400 for headers over the limit, then closes.
    big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 3000 + b"\r\n\r\n"
    status, headers, _ = hs.https_exchange(big)
    assert (status, headers["connection"]) == (400, "close")
    ok = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1500 + b"\r\n\r\n"
    assert hs.https_request(ok) == (200, b"ok\n")


def test_body_size_limit(hs):
    body = b"ipv4=192.0.2.1&" + b"x" * 1100
    raw = (b"POST /v1/update HTTP/1.1\r\nHost: x\r\nAuthorization: DDNS-HMAC-SHA256 id=1\r\n"
           b"Content-Length: %d\r\n\r\n" % len(body)) + body
    status, headers, _ = hs.https_exchange(raw)
    assert (status, headers["connection"]) == (413, "close")


def test_uri_length_and_query_parameters(hs):
    long_uri = b"/healthz?" + b"a" * 300
    status, _, body = hs.https_exchange(b"GET " + long_uri + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (status, body) == (414, b"badrequest uri\n")
    five = b"/healthz?a=1&b=2&c=3&d=4&e=5"
    status, _, body = hs.https_exchange(b"GET " + five + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (status, body) == (400, b"badrequest query\n")
    four = b"/healthz?a=1&b=2&c=3&d=4"
    assert hs.https_request(b"GET " + four + b" HTTP/1.1\r\nHost: x\r\n\r\n") == (200, b"ok\n")


def test_methods_per_route(hs):
    status, headers, body = hs.https_exchange(b"POST /healthz HTTP/1.1\r\nHost: x\r\n"
                                              b"Content-Length: 0\r\n\r\n")
    assert (status, headers["allow"], body) == (405, "GET, HEAD", b"badrequest method\n")
    status, headers, body = hs.https_exchange(b"DELETE /v1/update HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (status, headers["allow"], body) == (405, "POST", b"badrequest method\n")


# ---- slow clients ----------------------------------------------------------------

def test_slow_headers_are_cut_off_while_others_are_served(hs):
    before = hs.metrics()['ddns_connections_refused_total{reason="header_timeout"}']
    ctx = hs.tls_context()
    raw = socket.create_connection(("127.0.0.1", hs.https_port), timeout=10,
                                   source_address=("127.0.0.20", 0))
    t = ctx.wrap_socket(raw, server_hostname="localhost")
    req = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 300 + b"\r\n\r\n"
    sent, closed, served = 0, False, 0
    try:
        for i in range(len(req)):
            t.settimeout(0)     # has the gateway closed it? (a ticket is not an answer)
            try:
                closed = t.recv(100) == b""
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLError, OSError):
                closed = True
            t.settimeout(10)
            if closed:
                break
            try:
                t.send(req[i:i + 1])
            except (ssl.SSLError, OSError):
                closed = True
                break
            sent += 1
            if i % 5 == 0:
                assert hs.https_request(HEALTH, source="127.0.0.21") == (200, b"ok\n")
                served += 1
            time.sleep(0.1)   # a byte at a time: 300+ bytes would take 30 s
    finally:
        t.close()
    assert closed and sent < len(req), "the slow connection was never cut off"
    assert served >= 2
    assert hs.metrics()['ddns_connections_refused_total{reason="header_timeout"}'] > before
    assert "no complete request within header_timeout (2 s)" in hs.gateway_log()


def test_idle_kept_alive_connection_is_closed(hs):
    t = open_tls(hs, "127.0.0.40")
    try:
        t.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = ddnsstack.read_response(t)
        assert (status, body) == (200, b"ok\n") and "connection" not in headers
        t.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")   # kept alive
        assert ddnsstack.read_response(t)[0] == 200
        t.settimeout(30)    # then idle: closed after header_timeout (2 s), long before this
        try:
            assert t.recv(100) == b""
        except (ssl.SSLError, ConnectionResetError):
            pass
    finally:
        t.close()


def test_client_that_never_reads_is_bounded_and_cut_off(hs):
    """A client pipelines requests and never reads the answers. The gateway
    must stop reading from it once one request's worth of input waits
    (instead of buffering all it sends), serve others meanwhile, and close
    it after header_timeout without a complete exchange."""
    wait_no_connections(hs)
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.bind(("127.0.0.41", 0))
    raw.connect(("127.0.0.1", hs.https_port))
    t = hs.tls_context().wrap_socket(raw, server_hostname="localhost")
    chunk = b"GET /checkip HTTP/1.1\r\nHost: x\r\n\r\n" * 1000
    cap = 64 << 20      # far beyond socket buffers and the gateway's input bound
    sent, blocked = 0, False
    t.settimeout(3)
    try:
        while sent < cap:
            t.sendall(chunk)
            sent += len(chunk)
    except (socket.timeout, ssl.SSLError, OSError):
        blocked = True
    try:
        print("sent %d bytes before the gateway stopped reading" % sent)
        assert blocked and sent < cap, "the gateway read %d bytes from a client that never " \
            "reads its answers" % sent
        assert hs.https_request(HEALTH, source="127.0.0.42") == (200, b"ok\n")
        assert wait_until(lambda: hs.metrics()["ddns_connections_open"] == 0, timeout=30), \
            "the connection of a client that never reads was not closed"
    finally:
        t.close()


# ---- connection limits ---------------------------------------------------------------

def open_tls(stack, source):
    s = socket.create_connection(("127.0.0.1", stack.https_port), timeout=10,
                                 source_address=(source, 0))
    return stack.tls_context().wrap_socket(s, server_hostname="localhost")


def test_connections_per_source_are_limited(hs):
    wait_no_connections(hs)
    held = [open_tls(hs, "127.0.0.5") for _ in range(6)]
    try:
        assert wait_until(lambda: hs.metrics()["ddns_connections_open"] == 6)
        assert refused(hs, source="127.0.0.5")
        # another source is served meanwhile
        assert hs.https_request(HEALTH, source="127.0.0.6") == (200, b"ok\n")
        m = hs.metrics()
        assert m['ddns_connections_refused_total{reason="per_source"}'] >= 1
        held.pop().close()
        assert wait_until(lambda: hs.metrics()["ddns_connections_open"] == 5)
        assert hs.https_request(HEALTH, source="127.0.0.5") == (200, b"ok\n")
    finally:
        for t in held:
            t.close()
    assert "max_connections_per_source reached" in hs.gateway_log()


def test_total_connections_are_limited(hs):
    wait_no_connections(hs)
    held = [open_tls(hs, "127.0.0.7") for _ in range(6)]
    held += [open_tls(hs, "127.0.0.8") for _ in range(4)]
    try:
        assert wait_until(lambda: hs.metrics()["ddns_connections_open"] == 10)
        assert refused(hs, source="127.0.0.9")
        assert hs.metrics()['ddns_connections_refused_total{reason="max_connections"}'] >= 1
        held.pop().close()
        assert wait_until(lambda: hs.metrics()["ddns_connections_open"] == 9)
        assert hs.https_request(HEALTH, source="127.0.0.9") == (200, b"ok\n")
    finally:
        for t in held:
            t.close()
    assert "max_connections reached" in hs.gateway_log()


# ---- PROXY protocol ------------------------------------------------------------------

def test_proxy_v1_names_the_client(hs):
    status, headers, body = hs.https_exchange(HEALTH, port=hs.proxy_port,
                                              prefix=proxy_v1("203.0.113.7", 5555))
    assert (status, body) == (200, b"ok\n")
    assert "peer=203.0.113.7:5555 " in log_line_of(hs, headers)


def test_proxy_v2_names_an_ipv6_client(hs):
    status, headers, body = hs.https_exchange(HEALTH, port=hs.proxy_port,
                                              prefix=proxy_v2("2001:db8::7", 6000))
    assert (status, body) == (200, b"ok\n")
    assert "peer=[2001:db8::7]:6000 " in log_line_of(hs, headers)


def test_proxy_v2_local_is_the_proxy_itself(hs):
    status, headers, _ = hs.https_exchange(HEALTH, port=hs.proxy_port, prefix=proxy_v2())
    assert status == 200
    assert "peer=127.0.0.1:" in log_line_of(hs, headers)


def test_update_uses_the_address_of_the_proxy_header(hs, hdevice, tmp_path):
    creds, path = hdevice
    raw = signed(hs, path, tmp_path)    # no address: the connection's is used
    status, _, body = hs.https_exchange(raw, port=hs.proxy_port,
                                        prefix=proxy_v2("198.51.100.20", 40000))
    assert (status, body) == (200, b"good 198.51.100.20\n")


def test_x_forwarded_for_is_never_used(hs, hdevice, tmp_path):
    creds, path = hdevice
    raw = signed(hs, path, tmp_path)
    head, _, rest = raw.partition(b"\r\n")
    raw = head + b"\r\nX-Forwarded-For: 192.0.2.99\r\nX-Real-IP: 192.0.2.98\r\n" + rest
    assert hs.https_request(raw) == (200, b"good 127.0.0.1\n")


def test_proxy_header_from_an_untrusted_peer_is_refused(hs):
    assert refused(hs, port=hs.proxy_port, source="127.0.0.2",
                   prefix=proxy_v1("203.0.113.8", 1234))
    assert "PROXY header from an address not in [proxy] trusted" in hs.gateway_log()
    # without a header, the untrusted peer is an ordinary client of that listener
    status, headers, _ = hs.https_exchange(HEALTH, port=hs.proxy_port, source="127.0.0.2")
    assert status == 200
    assert "peer=127.0.0.2:" in log_line_of(hs, headers)
    # on a listener without PROXY protocol, a header is not TLS: refused
    assert refused(hs, prefix=proxy_v1("203.0.113.8", 1234))


@pytest.mark.parametrize("prefix, why", [
    (b"", "none sent"),
    (b"PROXY TCP4 203.0.113.9 127.0.0.1 1234\r\n", "v1 line needs 6 fields"),
    (b"PROXY TCP4 203.0.113.300 127.0.0.1 1 2\r\n", "v1 TCP4 address is not a dotted quad"),
    (b"PROXY TCP5 1.2.3.4 127.0.0.1 1 2\r\n", "v1 protocol is not TCP4, TCP6 or UNKNOWN"),
    (b"PROXY TCP4 1.2.3.4 127.0.0.1 1 " + b"9" * 100, "v1 line longer than 107 bytes"),
    (V2_SIG + b"\x31\x11\x00\x0c" + b"\x00" * 12, "v2 version is not 2"),
    (V2_SIG + b"\x21\x11\x00\x04" + b"\x00" * 4, "v2 INET address block shorter"),
    (V2_SIG + b"\x21\x11\x04\x00", "v2 header longer than 1024 bytes"),
])
def test_bad_proxy_headers_from_a_trusted_peer_are_refused(hs, prefix, why):
    assert refused(hs, port=hs.proxy_port, prefix=prefix)
    assert why in hs.gateway_log()


# ---- failed authentication limiter ------------------------------------------------------

def test_brute_force_is_rate_limited(hs, hdevice, tmp_path):
    creds, path = hdevice
    attacker = proxy_v1("198.51.100.66", 4444)
    before = hs.metrics()
    for _ in range(3):
        raw = signed(hs, path, tmp_path, "--ipv4", "192.0.2.90")
        bad = raw.replace(b"ipv4=192.0.2.90", b"ipv4=192.0.2.91")
        assert hs.https_request(bad, port=hs.proxy_port, prefix=attacker) == (401, b"badauth\n")
    # now even a correct request from that source is not looked at, and its
    # answer is held back for [limits] blocked_delay (1000 ms by default: a
    # lower bound, which no machine can make shorter)
    good = signed(hs, path, tmp_path, "--ipv4", "192.0.2.92")
    t0 = time.monotonic()
    status, headers, body = hs.https_exchange(good, port=hs.proxy_port, prefix=attacker)
    assert time.monotonic() - t0 >= 1.0
    m = re.fullmatch(rb"ratelimit (\d+)\n", body)
    assert status == 429 and m, (status, body)
    assert 1 <= int(m.group(1)) <= 30 and headers["retry-after"] == m.group(1).decode()
    # the same request from another source is served
    assert hs.https_request(good, port=hs.proxy_port,
                            prefix=proxy_v1("198.51.100.67", 4444)) == (200, b"good 192.0.2.92\n")
    after = hs.metrics()
    assert after["ddns_auth_failures_total"] - before["ddns_auth_failures_total"] == 3
    assert after["ddns_ratelimited_total"] - before["ddns_ratelimited_total"] == 1
    assert "source 198.51.100.66 blocked for 30 s after 3 failed authentications" in \
        hs.gateway_log()


# ---- IPv6 --------------------------------------------------------------------------------

def test_ipv6_listener(hs, hdevice, tmp_path):
    if not hs.v6_port:
        pytest.skip("no IPv6 loopback on this machine")
    assert hs.https_request(HEALTH, host="::1", port=hs.v6_port) == (200, b"ok\n")
    creds, path = hdevice
    raw = signed(hs, path, tmp_path)
    assert hs.https_request(raw, host="::1", port=hs.v6_port) == (200, b"good ::1\n")
    assert "listening on [::1]:%d" % hs.v6_port in hs.gateway_log()


# ---- admin listener ------------------------------------------------------------------------

def test_admin_health_and_metrics(hs, hdevice):
    creds, path = hdevice
    assert hs.admin_get("/healthz")[::2] == (200, "ok\n")
    assert wait_until(lambda: hs.admin_get("/readyz")[2] == "ready\n")
    status, headers, _ = hs.admin_get("/nope")
    assert status == 404
    p = hs.client(path, "--ipv4", "192.0.2.140")
    assert p.stdout == "good 192.0.2.140\n", p.stderr
    m = hs.metrics()
    assert m['ddns_requests_total{endpoint="/v1/update",result="good"}'] >= 1
    assert m['ddns_request_duration_seconds_count{endpoint="/v1/update"}'] >= 1
    assert m['ddns_request_duration_seconds_bucket{endpoint="/v1/update",le="+Inf"}'] == \
        m['ddns_request_duration_seconds_count{endpoint="/v1/update"}']
    pool = sum(m['ddns_db_pool_connections{state="%s"}' % s]
               for s in ("busy", "idle", "connecting", "down"))
    assert pool == 4 * WORKERS      # pool_size per worker
    assert m["ddns_db_pool_queued"] == 0
    assert "ddns_outbox_rows" in m and "ddns_outbox_oldest_age_seconds" in m
    assert wait_until(lambda: hs.metrics()['ddns_publish_batches_total{result="ok"}'] >= 1)
    _, headers, _ = hs.admin_get("/metrics")
    assert headers["content-type"].startswith("text/plain; version=0.0.4")


def test_readyz_follows_the_dns_primary(hs, hdevice):
    creds, path = hdevice
    hs.stop_process("knotd")
    try:
        p = hs.client(path, "--ipv4", "192.0.2.141")
        assert p.stdout == "good 192.0.2.141\n", p.stderr
        status = wait_until(lambda: hs.admin_get("/readyz")[0] == 503)
        status, _, body = hs.admin_get("/readyz")
        assert status == 503 and body.startswith("notready publisher: zone ddns.example.test"), body
        assert hs.metrics()["ddns_outbox_rows"] >= 0
        assert hs.metrics()['ddns_publish_batches_total{result="failed"}'] >= 1
    finally:
        hs.start_knot()
    assert wait_until(lambda: hs.admin_get("/readyz")[2] == "ready\n", timeout=60), \
        hs.admin_get("/readyz")
    assert hs.wait_dns(creds["fqdn"], "A", ["192.0.2.141"]) == ["192.0.2.141"]


# ---- logs ------------------------------------------------------------------------------------

def test_log_holds_no_secret(hs, hdevice, tmp_path):
    creds, path = hdevice
    raw = signed(hs, path, tmp_path, "--ipv4", "192.0.2.150")
    sig = re.search(rb"sig=([A-Za-z0-9_\-]+)", raw).group(1).decode()
    status, headers, body = hs.https_exchange(raw)
    assert (status, body) == (200, b"good 192.0.2.150\n")
    line = log_line_of(hs, headers)
    assert "device=%s" % creds["device_id"] in line and "result=good" in line
    assert re.search(r" ms=\d+\.\d", line)
    log = hs.gateway_log()
    for secret in (creds["secret"], creds["password"], sig, "Authorization", "DDNS-HMAC"):
        assert secret not in log


# ---- TLS ---------------------------------------------------------------------------------------

def test_tls_versions(hs):
    def s_client(*args):
        return subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % hs.https_port,
                               "-servername", "localhost"] + list(args),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
    old = s_client("-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
    assert old.returncode != 0 and "Cipher is (NONE)" in old.stdout, old.stdout
    assert re.search(r"alert protocol version|unsupported protocol|no protocols available",
                     old.stdout + old.stderr), old.stdout + old.stderr
    for flag, name in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
        p = s_client(flag)
        assert p.returncode == 0 and "New, %s," % name in p.stdout, p.stdout + p.stderr


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_session_resumption(hs, version):
    ctx = hs.tls_context()
    ctx.minimum_version = ctx.maximum_version = version
    first, again = {}, {}
    assert hs.https_exchange(HEALTH, ctx=ctx, info=first)[0] == 200
    assert first["version"] == {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                                ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
    assert not first["reused"]
    assert hs.https_exchange(HEALTH, ctx=ctx, session=first["session"], info=again)[0] == 200
    assert again["reused"], "the session was not resumed"


def test_an_answer_leaves_in_one_tls_record(hs):
    """evhttp queues an answer's header and body apart, and the TLS
    bufferevent would send each as a record of its own; the gateway joins
    them. TLS 1.2: no record after the handshake but the answer's. Two
    keep-alive requests on one connection: the second finds the connection
    as every request of a kept-alive device does."""
    ctx = hs.tls_context()
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, out, server_hostname="localhost")
    with socket.create_connection(("127.0.0.1", hs.https_port), timeout=10) as s:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                s.sendall(out.read())
                data = s.recv(65536)
                assert data, "the gateway closed during the handshake"
                inc.write(data)
        s.sendall(out.read())
        for _ in range(2):
            tls.write(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            s.sendall(out.read())
            raw, text = b"", b""
            while not (b"\r\n\r\n" in text and text.endswith(b"ok\n")):
                data = s.recv(65536)
                assert data, "the gateway closed before answering"
                raw += data
                inc.write(data)
                try:
                    while True:
                        text += tls.read(65536)
                except ssl.SSLWantReadError:
                    pass
            assert text.startswith(b"HTTP/1.1 200"), text
            records, i = [], 0
            while i + 5 <= len(raw):
                records.append(raw[i])
                i += 5 + int.from_bytes(raw[i + 3:i + 5], "big")
            assert i == len(raw) and records == [23], (records, len(raw))


def test_ecdsa_and_rsa_certificates(hs):
    for cipher, want in (("ECDHE-ECDSA-AES128-GCM-SHA256", "ec"),
                         ("ECDHE-RSA-AES128-GCM-SHA256", "rsa")):
        ctx = hs.tls_context()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(cipher)
        info = {}
        assert hs.https_exchange(HEALTH, ctx=ctx, info=info)[0] == 200
        assert cert_key_type(info["cert"]) == want


# ---- SIGTERM ---------------------------------------------------------------------------------

def test_requests_are_served_by_several_workers(hs):
    """Each new connection goes to one worker's socket (SO_REUSEPORT); the
    access log names the worker. 40 connections all on one of 4 workers
    would be a broken spread, not bad luck (chance 4^-39)."""
    start = len(hs.gateway_log())
    for i in range(40):
        assert hs.https_request(HEALTH, source="127.0.0.%d" % (100 + i % 50)) == (200, b"ok\n")
    log = hs.gateway_log()[start:]
    seen = set(int(w) for w in re.findall(r"path=/healthz status=200 .* worker=(\d+)", log))
    assert len(seen) >= 2, log[-2000:]
    assert seen <= set(range(WORKERS))
    assert "ddns-gateway 0.1.0 running: %d worker(s)" % WORKERS in hs.gateway_log()


def test_sigterm_drains_requests_in_flight(hs, hdevice, tmp_path):
    """An update waiting for its device row (locked here) when SIGTERM comes
    still gets its answer; new connections are refused meanwhile; exit 0."""
    creds, path = hdevice
    raw = signed(hs, path, tmp_path, "--ipv4", "192.0.2.160")
    lock = subprocess.Popen(["psql", "-X", "-At", hs.conninfo], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    result = []
    try:
        lock.stdin.write("BEGIN;\nSELECT 'locked' FROM devices WHERE device_id = '%s' FOR UPDATE;\n"
                         % creds["device_id"])
        lock.stdin.flush()
        assert lock.stdout.readline().strip() in ("BEGIN", "locked")
        th = threading.Thread(target=lambda: result.append(hs.https_request(raw)))
        th.start()
        assert wait_until(lambda: hs.metrics()["ddns_requests_in_flight"] == 1)
        gw = hs.procs["gateway"]
        gw.send_signal(signal.SIGTERM)
        assert wait_until(lambda: "stopping (1 request(s) in flight)" in hs.gateway_log())
        assert hs.admin_get("/readyz")[::2] == (503, "notready stopping\n")
        with pytest.raises(OSError):
            hs.https_request(HEALTH)
        lock.stdin.write("COMMIT;\n")
        lock.stdin.flush()
        th.join(timeout=30)
        assert gw.wait(timeout=30) == 0
    finally:
        lock.stdin.close()
        lock.wait(timeout=10)
    assert result == [(200, b"good 192.0.2.160\n")]
    assert "no request in flight: stopping" in hs.gateway_log()
    notes = notifications(hs)
    assert notes[0] == "READY=1\nSTATUS=serving"
    assert notes[-1].startswith("STOPPING=1\n")
    hs.start_gateway()      # the rest of the module needs it


# ---- SIGHUP (last: they change keys and the configuration) ----------------------------------

def test_sighup_loads_new_master_keys(hs, tmp_path):
    hs.make_keys("k2")
    creds = hs.provision("02:00:00:7f:00:01", extra=["--kid", "k2"])
    assert creds["kid"] == "k2/1"
    path = hs.write_credentials(creds, str(tmp_path / "k2.json"))
    # sent in the name of other clients, so that badauth blocks nobody else
    raw = signed(hs, path, tmp_path)
    assert hs.https_request(raw, port=hs.proxy_port,
                            prefix=proxy_v1("198.51.100.80", 1)) == (401, b"badauth\n")
    n = hs.gateway_log().count("reloaded %s" % hs.gw_conf)
    hs.procs["gateway"].send_signal(signal.SIGHUP)
    assert wait_until(lambda: hs.gateway_log().count("reloaded %s" % hs.gw_conf) > n)
    assert "reloaded %s: TLS certificate(s), 2 master key(s)" % hs.gw_conf in hs.gateway_log()
    raw = signed(hs, path, tmp_path)
    assert hs.https_request(raw, port=hs.proxy_port, prefix=proxy_v1("198.51.100.81", 1)) == \
        (200, b"good 198.51.100.81\n")


def test_sighup_reloads_without_dropping_requests(hs):
    gw = hs.procs["gateway"]
    failures, done, count = [], threading.Event(), [0]

    def traffic():
        while not done.is_set():
            try:
                r = hs.https_request(HEALTH, source="127.0.0.30")
                if r != (200, b"ok\n"):
                    failures.append(r)
            except Exception as e:  # noqa: BLE001 - every failure counts
                failures.append(repr(e))
            count[0] += 1

    def reloads():
        return hs.gateway_log().count("reloaded %s" % hs.gw_conf)

    def refusals():
        return hs.gateway_log().count("reload refused:")

    first_note = len(notifications(hs))
    ctx = hs.tls_context()
    before_info = {}
    assert hs.https_exchange(HEALTH, ctx=ctx, info=before_info)[0] == 200
    old_serial = cert_serial(before_info["cert"])
    th = threading.Thread(target=traffic)
    th.start()
    try:
        # a new ECDSA certificate under new file names
        t = os.path.join(hs.dir, "tls")
        j = lambda n: os.path.join(t, n)
        ddnsstack.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                       "-nodes", "-subj", "/CN=localhost", "-keyout", j("new.key"),
                       "-out", j("new.csr")])
        ddnsstack.run(["openssl", "x509", "-req", "-in", j("new.csr"), "-CA", j("ca.crt"),
                       "-CAkey", j("ca.key"), "-set_serial", "777", "-days", "30",
                       "-extfile", j("server.ext"), "-out", j("new.crt")])
        for i in range(3):
            n = reloads()
            if i == 2:
                hs.write_gateway_config(tls=tls_lines(hs, "new.crt", "new.key"))
            gw.send_signal(signal.SIGHUP)
            assert wait_until(lambda: reloads() > n), hs.gateway_log()[-2000:]
        info = {}
        assert hs.https_exchange(HEALTH, info=info)[0] == 200
        assert cert_serial(info["cert"]) == "serial=0309" != old_serial
        # a session from before the reloads still resumes (ticket keys survive)
        again = {}
        assert hs.https_exchange(HEALTH, ctx=ctx, session=before_info["session"],
                                 info=again)[0] == 200
        assert again["reused"]

        # a broken configuration: refused, the running one stays
        n = refusals()
        hs.write_gateway_config(tls=tls_lines(hs, "missing.crt", "new.key"))
        gw.send_signal(signal.SIGHUP)
        assert wait_until(lambda: refusals() > n)
        assert "missing.crt" in hs.gateway_log()
        info = {}
        assert hs.https_exchange(HEALTH, info=info)[0] == 200
        assert cert_serial(info["cert"]) == "serial=0309"
        m = hs.metrics()
        assert m['ddns_reloads_total{result="ok"}'] >= 3
        assert m['ddns_reloads_total{result="failed"}'] >= 1

        # JSON log lines after a reload with log_format = json
        hs.gateway_extra = "log_format = json"
        hs.write_gateway_config(tls=tls_lines(hs, "new.crt", "new.key"))
        n = reloads()
        gw.send_signal(signal.SIGHUP)
        assert wait_until(lambda: reloads() > n)
        status, headers, _ = hs.https_exchange(HEALTH, port=hs.proxy_port,
                                               prefix=proxy_v1("203.0.113.44", 999))
        assert status == 200
        entry = json.loads(log_line_of(hs, headers))
        assert entry["event"] == "request" and entry["peer"] == "203.0.113.44:999"
        assert (entry["path"], entry["status"], entry["result"]) == ("/healthz", 200, "ok")
        assert entry["level"] == "info" and entry["time"].endswith("Z")
        assert isinstance(entry["ms"], (int, float)) and entry["req"] == int(headers["x-request-id"])
    finally:
        done.set()
        th.join()
    assert count[0] > 0
    assert failures == []
    notes = notifications(hs)[first_note:]
    assert sum(n.startswith("RELOADING=1\nMONOTONIC_USEC=") for n in notes) == 5
    assert "READY=1\nSTATUS=serving (reload refused: see the log)" in notes
    assert notes[-1] == "READY=1\nSTATUS=serving (reloaded)"


# ---- OCSP stapling (after the reload tests: it reloads the configuration) ----------------

def make_ocsp(stack, cert, out, status="V"):
    """A DER OCSP response from the test CA for cert (status V good, R revoked)."""
    t = os.path.join(stack.dir, "tls")
    j = lambda n: os.path.join(t, n)
    serial = subprocess.run(["openssl", "x509", "-in", j(cert), "-noout", "-serial"],
                            capture_output=True, text=True, check=True).stdout.strip()
    serial = serial.split("=", 1)[1]
    revoked = "261101000000Z" if status == "R" else ""
    with open(j(out + ".idx"), "w") as f:
        f.write("%s\t301231000000Z\t%s\t%s\tunknown\t/CN=localhost\n" % (status, revoked, serial))
    ddnsstack.run(["openssl", "ocsp", "-issuer", j("ca.crt"), "-cert", j(cert), "-no_nonce",
                   "-reqout", j(out + ".req")])
    ddnsstack.run(["openssl", "ocsp", "-index", j(out + ".idx"), "-rsigner", j("ca.crt"),
                   "-rkey", j("ca.key"), "-CA", j("ca.crt"), "-reqin", j(out + ".req"),
                   "-respout", j(out), "-ndays", "1"])
    return j(out)


def ocsp_lines(first=None, second=None):
    return "".join("%s = %s\n" % (k, v) for k, v in (("ocsp_response", first),
                                                     ("ocsp_response2", second)) if v)


def test_ocsp_stapling(hs, tmp_path):
    good_ec = make_ocsp(hs, "server.crt", "ocsp-ec.der")
    good_rsa = make_ocsp(hs, "rsa.crt", "ocsp-rsa.der")
    revoked = make_ocsp(hs, "server.crt", "ocsp-revoked.der", status="R")
    garbage = str(tmp_path / "garbage.der")
    with open(garbage, "wb") as f:
        f.write(b"0\x82\x01\x00 not an OCSP response")

    # what --check-config (and so a start or a reload) refuses, naming the key
    for first, second, why in (
            (garbage, None, "not a DER-encoded OCSP response"),
            (good_rsa, None, "is not about this certificate"),
            (revoked, None, "the certificate's status is revoked"),
            (good_ec, good_ec, "is not about this certificate"),
            (str(tmp_path / "missing.der"), None, "cannot open OCSP response")):
        conf = tmp_path / "check.conf"
        conf.write_text(hs.gateway_config_text(hs.https_port, main=True,
                                               tls=tls_lines(hs) + ocsp_lines(first, second)))
        p = subprocess.run([os.path.join(ddnsstack.BIN, "ddns-gateway"), "--check-config",
                            "-c", str(conf)], capture_output=True, text=True, timeout=30)
        key = "ocsp_response2" if second else "ocsp_response"
        assert p.returncode != 0, p.stdout + p.stderr
        assert re.search(r"\[tls\] %s\b.*%s" % (key, re.escape(why)), p.stderr), p.stderr

    def s_client(*args):
        return subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % hs.https_port,
                               "-servername", "localhost", "-CAfile", hs.ca_cert] + list(args),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=20).stdout

    def serial_of(name):
        out = subprocess.run(["openssl", "x509", "-in", os.path.join(hs.dir, "tls", name),
                              "-noout", "-serial"], capture_output=True, text=True, check=True)
        return out.stdout.strip().split("=", 1)[1]

    gw = hs.procs["gateway"]
    reloads = lambda: hs.gateway_log().count("reloaded %s" % hs.gw_conf)
    n = reloads()
    hs.write_gateway_config(tls=tls_lines(hs) + ocsp_lines(good_ec, good_rsa))
    gw.send_signal(signal.SIGHUP)
    assert wait_until(lambda: reloads() > n), hs.gateway_log()[-2000:]
    for args, cert in ((["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"], "server.crt"),
                       (["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"], "rsa.crt"),
                       (["-tls1_3"], "server.crt")):
        out = s_client("-status", *args)
        assert "OCSP Response Status: successful" in out and "Cert Status: good" in out, out
        m = re.search(r"Serial Number: ([0-9A-F]+)", out)
        assert m and m.group(1) == serial_of(cert), out
        assert "Verify return code: 0 (ok)" in out, out
    # a client that does not ask gets nothing stapled
    out = s_client("-tls1_3")
    assert "OCSP response" not in out and "Verify return code: 0 (ok)" in out, out
