"""Malformed and hostile HTTP against the real gateway: chunked bodies,
request smuggling shapes, pipelining, invalid UTF-8, NUL bytes,
percent-encoding tricks, duplicate parameters and headers, log
injection, and floods of slow or idle connections while another client
is still served (docs/SECURITY.md). The sizes of [limits] themselves are
crossed in test_hardening.py.

Every hostile request must get an answer below 500 or a closed
connection, never a crash: each test ends by checking that the gateway
still answers, and the session fixture checks its clean exit and the
absence of sanitizer reports under make test-asan."""
import os
import re
import socket
import ssl
import threading
import time

import pytest

import attack
import ddnsstack

HEALTH = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def new_device(stack):
    n = new_device.n = getattr(new_device, "n", 0) + 1
    return stack.provision("0a:%02x:00:b7:00:%02x" % (os.getpid() & 0xff, n))


def open_tls(stack, port=None, source=None):
    s = socket.create_connection(("127.0.0.1", port or stack.https_port), timeout=10,
                                 source_address=(source, 0) if source else None)
    return stack.tls_context().wrap_socket(s, server_hostname="localhost")


def _responses(data):
    """Splits bytes into complete responses [(status, body)] and the rest."""
    out = []
    while True:
        m = re.match(rb"HTTP/1\.[01] (\d{3}) [^\r]*\r\n(.*?)\r\n\r\n", data, re.S)
        if not m:
            return out, data
        length = int(re.search(rb"(?im)^content-length:\s*(\d+)", m.group(2)).group(1))
        if len(data) < m.end() + length:
            return out, data
        out.append((int(m.group(1)), data[m.end():m.end() + length]))
        data = data[m.end() + length:]


def exchange_all(stack, raw, timeout=10, port=None, quiet=0.25):
    """Sends raw bytes; returns every response (status, body) the gateway
    wrote before closing the connection or going quiet for `quiet` seconds
    after what looks like the end of a response (every body here ends with
    a line feed); timeout bounds the whole exchange."""
    t = open_tls(stack, port=port)
    data = b""
    try:
        t.sendall(raw)
        deadline = time.time() + timeout
        while time.time() < deadline:
            t.settimeout(quiet if data.endswith(b"\n") else max(0.1, deadline - time.time()))
            try:
                chunk = t.recv(65536)
            except (socket.timeout, ssl.SSLError, OSError):
                break
            if not chunk:
                break
            data += chunk
    finally:
        t.close()
    out, rest = _responses(data)
    assert rest == b"", rest[:300]
    return out


metrics = ddnsstack.admin_metrics    # of a gateway's admin listener, by port


def alive(stack):
    assert stack.https_request(HEALTH) == (200, b"ok\n")


def chunked(body, sizes):
    out, i = b"", 0
    for n in sizes:
        out += b"%x\r\n" % n + body[i:i + n] + b"\r\n"
        i += n
    return out + b"0\r\n\r\n"


def as_chunked(raw, sizes):
    head, _, body = raw.partition(b"\r\n\r\n")
    head = re.sub(rb"\r\nContent-Length: \d+", b"", head)
    return head + b"\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body, sizes)


def test_chunked_bodies(stack):
    """A chunked body is the body that was signed; broken chunking, chunks
    over max_body_size and Content-Length together with chunking are
    refused without reaching the handler."""
    creds = new_device(stack)
    raw = attack.signed_update(creds, b"ipv4=192.0.2.101")
    assert exchange_all(stack, as_chunked(raw, [4, 5, 7])) == [(200, b"good 192.0.2.101\n")]
    # a chunked body other than the signed one
    raw = attack.signed_update(creds, b"ipv4=192.0.2.102")
    tampered = as_chunked(raw, [16]).replace(b"192.0.2.102", b"192.0.2.166")
    assert exchange_all(stack, tampered) == [(401, b"badauth\n")]
    bad = [
        b"zz\r\nipv4\r\n0\r\n\r\n",                                  # size not hex
        b"ffffffffffffffff\r\nipv4\r\n0\r\n\r\n",                    # size overflow
        b"-5\r\nipv4=\r\n0\r\n\r\n",                                 # negative
        b"1000\r\n" + b"a" * 4096 + b"\r\n1000\r\n" + b"a" * 4096 + b"\r\n0\r\n\r\n",  # too big
    ]
    for body in bad:
        head = attack.signed_update(creds, b"").partition(b"\r\n\r\n")[0]
        head = re.sub(rb"\r\nContent-Length: \d+", b"", head)
        got = exchange_all(stack, head + b"\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
        assert all(400 <= s < 500 for s, _ in got) and len(got) <= 1, (body[:20], got)
    # Content-Length and Transfer-Encoding together (a smuggling shape): the
    # hidden second request must never be answered as a request of its own
    raw = attack.signed_update(creds, b"ipv4=192.0.2.103")
    head, _, body = raw.partition(b"\r\n\r\n")
    smuggled = (head + b"\r\nTransfer-Encoding: chunked\r\n\r\n" + b"0\r\n\r\n" +
                b"GET /checkip HTTP/1.1\r\nHost: x\r\n\r\n")
    got = exchange_all(stack, smuggled)
    assert [s for s, _ in got] == [400], got
    # two Transfer-Encoding fields
    head, _, body = as_chunked(raw, [16]).partition(b"\r\n\r\n")
    got = exchange_all(stack, head + b"\r\nTransfer-Encoding: identity\r\n\r\n" + body)
    assert [s for s, _ in got] == [400], got
    alive(stack)


def test_pipelined_requests_are_answered_in_order(stack):
    creds = new_device(stack)
    upd = attack.signed_update(creds, b"ipv4=192.0.2.111")
    pipeline = (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + upd +
                b"GET /checkip HTTP/1.1\r\nHost: x\r\n\r\n" +
                b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n" + upd +
                b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert exchange_all(stack, pipeline) == [(200, b"ok\n"), (200, b"good 192.0.2.111\n"),
                                             (200, b"127.0.0.1\n"), (404, b"notfound\n"),
                                             (409, b"replay\n"), (200, b"ok\n")]
    # a broken request in the middle ends the connection: nothing after it runs
    upd = attack.signed_update(creds, b"ipv4=192.0.2.112")
    got = exchange_all(stack, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                              b"GARBAGE\x00\xff\r\n\r\n" + upd)
    assert got[0] == (200, b"ok\n") and len(got) <= 2 and 400 <= got[-1][0] < 500, got
    assert stack.psql("SELECT count(*) FROM history WHERE host(new_address) = '192.0.2.112'") \
        == [["0"]]
    # three hundred pipelined requests in one write
    many = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 300
    got = exchange_all(stack, many + HEALTH, timeout=20)
    assert got == [(200, b"ok\n")] * 301, len(got)
    alive(stack)


def test_invalid_utf8_nul_bytes_and_control_characters(stack):
    creds = new_device(stack)
    auth = attack.basic(creds["device_id"], creds["password"])
    cases = [
        # request line
        b"GET /healthz\xff HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /heal\x00thz HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\x00\r\nHost: x\r\n\r\n",
        b"G\xc3\x89T /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x00\x00\x00\x00\r\n\r\n",
        b"GET /nic/update?hostname=\xc0\xae\xc0\xae&myip=192.0.2.1 HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: " + auth.encode() + b"\r\nUser-Agent: a/1\r\n\r\n",
        # headers
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: \xff\xfe\xc3\x28\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX\x00A: a\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n: empty name\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
        b"GET /healthz HTTP/1.1\nHost: x\n\n",
        b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
        b"GET /healthz HTTP/1.1 extra\r\nHost: x\r\n\r\n",
        b"GET  /healthz  HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET http://evil.example/healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        b"CONNECT 127.0.0.1:5432 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
    ]
    for raw in cases:
        got = exchange_all(stack, raw)
        # (libevent answers an unknown method 501 Not Implemented itself)
        assert len(got) <= 1 and all(s < 500 or s == 501 for s, _ in got), (raw, got)
        if got and raw.startswith(b"GET /nic/update"):
            assert got[0][1] in (b"notfqdn\n", b"badrequest query\n"), got
    # the signed body: NUL and non-ASCII bytes are a badrequest naming the field
    for body, field in ((b"ipv4=192.0.2.121\x00", b"ipv4"), (b"ipv4=192.0.2.\xd9\xa1", b"ipv4"),
                        (b"ipv6=2001:db8::\x00", b"ipv6")):
        raw = attack.signed_update(creds, body)
        status, got = stack.https_request(raw)
        assert (status, got) == (400, b"badrequest " + field + b"\n"), (body, status, got)
    # an unknown parameter is ignored whatever its name, but it is signed
    raw = attack.signed_update(creds, b"ipv4=192.0.2.121&\x00\xff=1")
    assert stack.https_request(raw) == (200, b"good 192.0.2.121\n")
    # control characters and a fake log field in the logged path (and in a
    # User-Agent, which is not logged): the access log line shows them as
    # '?', one line per request, no terminal escape
    status, headers, _ = stack.https_exchange(b"GET /nope\x1b[2J\x7f\tresult=good%0Ax HTTP/1.1\r\n"
                                              b"Host: x\r\nUser-Agent: a/1\x1b[31m\r\n\r\n")
    assert status == 404
    line = [l for l in stack.gateway_log().splitlines()
            if "req=%s " % headers["x-request-id"] in l]
    assert len(line) == 1 and "path=/nope?[2J??result=good%0Ax " in line[0], line
    for l in stack.gateway_log().splitlines():
        assert "\x1b" not in l and "\x7f" not in l, l
    alive(stack)


def test_percent_encoding_tricks_and_duplicate_parameters(stack):
    creds = new_device(stack)
    fqdn = creds["fqdn"]
    auth = attack.basic(creds["device_id"], creds["password"])
    # the signed endpoint's target is exact: no encoded, dotted or doubled form
    raw = attack.signed_update(creds, b"ipv4=192.0.2.131")
    for target in (b"/v1/%75pdate", b"/v1/update/", b"//v1/update", b"/v1/./update",
                   b"/v1/x/../update", b"/V1/UPDATE", b"/v1/update%00", b"/v1/update;x=1",
                   b"/v1/update#f", b"/v1/update?"):
        got = exchange_all(stack, raw.replace(b"/v1/update", target, 1))
        assert len(got) == 1 and got[0][0] in (400, 404), (target, got)
    assert stack.psql("SELECT count(*) FROM history WHERE device_id = '%s'"
                      % creds["device_id"]) == [["0"]]
    # the signed body is not percent-decoded: an encoded address is not an address
    for body, field in ((b"ipv4=192%2E0%2E2%2E131", b"ipv4"), (b"ipv4=192.0.2.131+", b"ipv4"),
                        (b"ipv4=192.0.2.131&ipv4=192.0.2.132", b"ipv4"),
                        (b"ipv6=2001:db8::1&ipv6=2001:db8::1", b"ipv6"),
                        (b"ipv4=", b"ipv4"), (b"ipv4", b"ipv4"), (b"ipv4=::1", b"ipv4"),
                        (b"ipv6=192.0.2.1", b"ipv6")):
        status, got = stack.https_request(attack.signed_update(creds, body))
        assert (status, got) == (400, b"badrequest " + field + b"\n"), (body, status, got)
    # dyndns2 decodes once: double encoding stays text, an encoded
    # separator is one, a '+' is a blank
    q = lambda query: stack.https_request(attack.nic_raw(query, auth=auth))[1].decode()
    assert q("hostname=%s&myip=192%%2E0%%2E2%%2E133" % fqdn) == "good 192.0.2.133\n"
    assert q("hostname=%s&myip=192%%252E0%%252E2%%252E134" % fqdn) == "badrequest myip\n"
    assert q("hostname=%s&myip=192.0.2.133%%2C2001:db8::133" % fqdn) == \
        "good 192.0.2.133,2001:db8::133\n"
    assert q("hostname=%s%%2C%s&myip=192.0.2.133" % (fqdn, fqdn)) == "nochg 192.0.2.133\n" * 2
    assert q("host%%6Eame=%s&myip=192.0.2.135" % fqdn) == "good 192.0.2.135\n"
    for query, field in (("hostname=%s&myip=192.0.2.1&myip=192.0.2.2" % fqdn, "myip"),
                         ("hostname=%s&offline=NO&offline=YES" % fqdn, "offline"),
                         ("hostname=%s&hostn%%61me=%s" % (fqdn, fqdn), "hostname"),
                         ("hostname=%s&myip=192.0.2.1%%" % fqdn, "query"),
                         ("hostname=%s&myip=192.0.2.1%%4" % fqdn, "query"),
                         ("hostname=%s&myip=%%C0%%AE" % fqdn, "myip")):
        assert q(query) == "badrequest %s\n" % field, query
    assert stack.wait_dns(fqdn, "A", ["192.0.2.135"]) == ["192.0.2.135"]
    # duplicate headers: two Authorization values are not a second chance
    raw = attack.signed_update(creds, b"ipv4=192.0.2.136")
    auth_line = re.search(rb"Authorization: [^\r]*\r\n", raw).group(0)
    bogus = b"Authorization: DDNS-HMAC-SHA256 id=000000000000\r\n"
    for dup in (bogus + auth_line, auth_line + bogus):
        got = exchange_all(stack, raw.replace(auth_line, dup))
        assert len(got) == 1 and got[0][0] in (400, 401), got
    # two Content-Length headers that disagree
    raw = attack.signed_update(creds, b"ipv4=192.0.2.137")
    for second in (b"4", b"16"):
        got = exchange_all(stack, raw.replace(b"Content-Length: 16", b"Content-Length: 16\r\n"
                                                                    b"Content-Length: " + second, 1))
        assert got == [(400, b"badrequest content-length\n")], got
    alive(stack)


# ---- floods ---------------------------------------------------------------------------

FLOOD_LIMITS = """
[limits]
header_timeout = 2
max_connections = 120
max_connections_per_source = 20
"""


def test_slowloris_and_connection_floods_while_another_client_is_served(stack):
    """Four sources hold every connection they may (plain TCP without a
    byte, half a TLS handshake, half a request header, and a request that
    trickles a byte a second), a fifth opens and drops TLS connections as
    fast as it can; meanwhile a device on its own address updates and is
    answered every time. When the attack stops, no connection is left."""
    creds = new_device(stack)
    admin = ddnsstack.free_port()
    extra = FLOOD_LIMITS + "\n[admin]\nlisten = 127.0.0.1:%d\n" % admin
    with stack.extra_gateway("flood", extra=extra) as port:
        stop = threading.Event()
        held, errors, churned = [], [], [0]

        def hold(source, kind):
            while not stop.is_set():
                try:
                    s = socket.create_connection(("127.0.0.1", port), timeout=5,
                                                 source_address=(source, 0))
                except OSError:
                    time.sleep(0.05)
                    continue
                try:
                    if kind == "half-handshake":
                        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
                    elif kind in ("half-header", "trickle"):
                        t = stack.tls_context().wrap_socket(s, server_hostname="localhost")
                        t.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                        s = t
                        if kind == "trickle":
                            while not stop.is_set():
                                s.sendall(b"X")
                                time.sleep(1)
                except (OSError, ssl.SSLError):
                    pass
                held.append(s)
                if len(held) > 400:
                    time.sleep(0.1)

        def churn():
            while not stop.is_set():
                try:
                    t = open_tls(stack, port=port, source="127.0.0.75")
                    t.close()
                    churned[0] += 1
                except (OSError, ssl.SSLError):
                    time.sleep(0.01)

        threads = [threading.Thread(target=hold, args=("127.0.0.%d" % (71 + i), kind))
                   for i, kind in enumerate(("tcp", "half-handshake", "half-header"))]
        threads += [threading.Thread(target=hold, args=("127.0.0.74", "trickle"))
                    for _ in range(20)]
        threads.append(threading.Thread(target=churn))
        for t in threads:
            t.start()
        answers = []
        try:
            time.sleep(1)
            for i in range(6):
                raw = attack.signed_update(creds, ("ipv4=192.0.2.%d" % (140 + i)).encode())
                try:
                    answers.append(stack.https_request(raw, port=port, source="127.0.0.76"))
                except (OSError, ssl.SSLError) as e:
                    errors.append(repr(e))
                time.sleep(0.4)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=30)
            for s in held:
                try:
                    s.close()
                except OSError:
                    pass
        assert errors == [] and answers == [(200, ("good 192.0.2.%d\n" % (140 + i)).encode())
                                            for i in range(6)], (errors, answers)
        assert churned[0] > 20
        log = open(os.path.join(stack.dir, "gateway-flood.log"), errors="replace").read()
        assert "max_connections_per_source reached" in log
        assert "no complete request within header_timeout (2 s)" in log
        # nothing is left open once the attackers are gone
        deadline = time.time() + 15
        while time.time() < deadline:
            m = metrics(admin)
            if m["ddns_connections_open"] == 0 and m["ddns_connections_state"] == 0:
                break
            time.sleep(0.2)
        assert (m["ddns_connections_open"], m["ddns_connections_state"]) == (0, 0), m
        assert m['ddns_connections_refused_total{reason="per_source"}'] > 0
        assert m['ddns_connections_refused_total{reason="header_timeout"}'] > 0
        assert stack.https_request(HEALTH, port=port) == (200, b"ok\n")
        print("flood: %d TLS connections opened and dropped, %d held" % (churned[0], len(held)))
    assert stack.wait_dns(creds["fqdn"], "A", ["192.0.2.145"]) == ["192.0.2.145"]
