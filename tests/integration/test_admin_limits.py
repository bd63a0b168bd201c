"""The operations listener and the admin API under abuse, against the real
gateway, PostgreSQL and Knot DNS: its own connection caps and header
deadline, its own failed-login limiter, the client's address behind a
trusted proxy, and admin statements that run too long (cancelled in
PostgreSQL, answered 504).

The stack's [admin] limits are small so that the tests reach them:
max_connections 8, max_connections_per_source 4, header_timeout 2 s,
auth_fail_limit 3, statement_timeout 2 s; 127.0.0.2 is the trusted proxy
that names the client in X-Forwarded-For. Loopback addresses other than
127.0.0.1 stand for other clients (Linux routes all of 127/8 to lo)."""
import json
import os
import socket
import subprocess
import time

import pytest

import ddnsstack
from test_hardening import wait_until

PROXY = "127.0.0.2"
ADMIN = """max_connections = 8
max_connections_per_source = 4
header_timeout = 2
auth_fail_limit = 3
auth_fail_window = 60
auth_block_time = 60
statement_timeout = 2
trusted_proxies = %s
client_address_header = X-Forwarded-For
""" % PROXY
LIMITS = """
[limits]
auth_fail_limit = 3
auth_fail_window = 60
auth_block_time = 60
"""


@pytest.fixture(scope="module")
def st():
    def configure(s):
        s.admin_extra = ADMIN
        s.config_extra = LIMITS
    with ddnsstack.started("ddns-admlim-", "admin-limits", configure) as s:
        yield s


def admin_raw(st, method, path, source="127.0.0.1", token=None, headers=None, body=None,
              timeout=20):
    """One admin request from source; returns (status, headers, body bytes)."""
    h = {"Host": "localhost", "Connection": "close"}
    if token is not None:
        h["Authorization"] = "Bearer " + token
    data = json.dumps(body).encode() if body is not None else b""
    if body is not None:
        h["Content-Type"] = "application/json"
    h["Content-Length"] = str(len(data))
    h.update(headers or {})
    raw = ("%s %s HTTP/1.1\r\n" % (method, path) +
           "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n").encode() + data
    with socket.create_connection(("127.0.0.1", st.admin_port), timeout=timeout,
                                  source_address=(source, 0)) as s:
        s.sendall(raw)
        return ddnsstack.read_response(s)


def make_token(st, scope="write", comment="limits"):
    env = dict(os.environ, DDNSCTL_CONFIG="/dev/null")
    env.pop("DDNS_DB", None)
    p = subprocess.run([os.path.join(ddnsstack.BIN, "ddnsctl"), "token", "create", "--db",
                        st.conninfo, "--scope", scope, "--comment", comment],
                       capture_output=True, text=True, timeout=30, env=env)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


@pytest.fixture(scope="module")
def tok(st):
    return make_token(st)


def closed_without_answer(sock, timeout=10):
    """True when the server closes sock without sending anything."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def refused_or(fn):
    """fn(), or False when the connection was closed without an answer."""
    try:
        return fn()
    except OSError:
        return False


def device_update(st, tmp_path, mac, ipv4):
    creds = st.provision(mac)
    path = st.write_credentials(creds, str(tmp_path / ("%s.json" % mac.replace(":", ""))))
    p = st.client(path, "--ipv4", ipv4)
    return p.stdout.strip() or p.stderr.strip()[-300:]


# ---- the operations listener's connections ---------------------------------------------

def test_admin_connections_are_capped_and_devices_still_served(st, tmp_path):
    held = []

    def connect(source):
        held.append(socket.create_connection(("127.0.0.1", st.admin_port),
                                             source_address=(source, 0)))
        return held[-1]
    try:
        for _ in range(4):
            connect("127.0.0.1")
        # the fifth from one source is closed before anything is read
        assert closed_without_answer(connect("127.0.0.1"))
        for _ in range(4):
            connect("127.0.0.3")
        # eight open: a connection from a new source is over the total
        assert closed_without_answer(connect("127.0.0.4"))
        # meanwhile the device listener serves devices
        assert device_update(st, tmp_path, "0A:DD:00:00:00:01", "192.0.2.61") == \
            "good 192.0.2.61"
        assert "admin connection from 127.0.0.1 closed: [admin] max_connections_per_source " \
            "reached" in st.gateway_log()
    finally:
        for s in held:
            s.close()
    # once they are gone the listener answers again
    # (until the gateway has seen every close, a connection may be refused)
    assert wait_until(lambda: refused_or(lambda: admin_raw(st, "GET", "/healthz",
                                                           source="127.0.0.4")[0] == 200))
    assert wait_until(lambda: refused_or(
        lambda: st.metrics()["ddns_admin_connections_open"] <= 1))


def test_admin_slowloris_is_closed_at_the_header_deadline(st):
    request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Pad: " + b"a" * 200 + b"\r\n\r\n"
    with socket.create_connection(("127.0.0.1", st.admin_port),
                                  source_address=("127.0.0.5", 0)) as s:
        s.settimeout(5)
        sent = 0
        closed = False
        # one byte every 0.2 s: the whole request would take 45 s, far past
        # the 2 s deadline; evhttp's inactivity timeout alone never fires
        for b in request:
            try:
                s.send(bytes([b]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            sent += 1
            s.settimeout(0.2)
            try:
                if s.recv(1) == b"":
                    closed = True
                    break
            except socket.timeout:
                pass
            except ConnectionResetError:
                closed = True
                break
        assert closed and sent < len(request), sent
    assert "no complete request within [admin] header_timeout" in st.gateway_log()


def test_admin_keepalive_gets_a_new_deadline_after_each_answer(st):
    req = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
    with socket.create_connection(("127.0.0.1", st.admin_port),
                                  source_address=("127.0.0.6", 0)) as s:
        s.settimeout(10)
        for _ in range(2):
            s.sendall(req)
            status, _, body = ddnsstack.read_response(s)
            assert (status, body) == (200, b"ok\n")
        # idle after the answer: closed at the deadline, without an answer
        assert closed_without_answer(s)


# ---- failed logins ---------------------------------------------------------------------

def test_admin_login_limiter_is_apart_from_the_devices(st, tok, tmp_path):
    src = "127.0.0.7"
    for _ in range(3):
        assert admin_raw(st, "GET", "/api/v1/whoami", source=src, token="ddnsadm_wrong")[0] == 401
    status, headers, body = admin_raw(st, "GET", "/api/v1/whoami", source=src, token=tok)
    assert status == 429 and 1 <= int(headers["retry-after"]) <= 60, (status, body)
    assert "admin API: source 127.0.0.7 blocked for 60 s" in st.gateway_log()
    # another operator is not affected
    assert admin_raw(st, "GET", "/api/v1/whoami", source="127.0.0.8", token=tok)[0] == 200
    # a device flood of badauth from one source blocks devices, not that
    # source's operators
    creds = st.provision("0A:DD:00:00:00:02")
    wrong = st.write_credentials({"device_id": creds["device_id"], "kid": creds["kid"],
                                  "secret": "A" * 43}, str(tmp_path / "wrong.json"))
    answers = [st.client(wrong, "--ipv4", "192.0.2.62") for _ in range(4)]
    assert [p.stdout.strip() for p in answers[:3]] == ["badauth"] * 3, answers[0].stderr
    assert answers[3].stdout.strip().startswith("ratelimit"), answers[3].stderr
    assert admin_raw(st, "GET", "/api/v1/whoami", source="127.0.0.1", token=tok)[0] == 200


# ---- the client behind a trusted proxy -----------------------------------------------------

def audit_sources(st, comment):
    rows = st.psql("SELECT source FROM admin_audit WHERE detail::text LIKE '%%%s%%' "
                   "ORDER BY audit_id" % comment)
    return [r[0] for r in rows]


def test_trusted_proxy_names_the_client(st, tok):
    xff = {"X-Forwarded-For": "203.0.113.50, 198.51.100.77"}
    status, _, body = admin_raw(st, "POST", "/api/v1/tokens", source=PROXY, token=tok,
                                headers=xff, body={"scope": "read", "comment": "via-proxy"})
    assert status == 201, body
    # the right-most address, the one the proxy appended, is the client
    assert audit_sources(st, "via-proxy") == ["198.51.100.77"]
    assert "admin POST /api/v1/tokens from 198.51.100.77: 201" in st.gateway_log()
    # the limiter keys on it: one client behind the proxy is blocked, the
    # next is not
    bad = {"X-Forwarded-For": "198.51.100.66"}
    for _ in range(3):
        assert admin_raw(st, "GET", "/api/v1/whoami", source=PROXY, token="ddnsadm_x",
                         headers=bad)[0] == 401
    assert admin_raw(st, "GET", "/api/v1/whoami", source=PROXY, token=tok, headers=bad)[0] == 429
    assert admin_raw(st, "GET", "/api/v1/whoami", source=PROXY, token=tok,
                     headers={"X-Forwarded-For": "198.51.100.67"})[0] == 200
    assert admin_raw(st, "GET", "/api/v1/whoami", source=PROXY, token=tok)[0] == 200


def test_client_address_header_from_an_untrusted_peer_is_ignored(st, tok):
    xff = {"X-Forwarded-For": "198.51.100.78"}
    status, _, body = admin_raw(st, "POST", "/api/v1/tokens", source="127.0.0.9", token=tok,
                                headers=xff, body={"scope": "read", "comment": "not-proxied"})
    assert status == 201, body
    assert audit_sources(st, "not-proxied") == ["127.0.0.9"]
    # nor can it dodge a block by naming another client
    for i in range(3):
        assert admin_raw(st, "GET", "/api/v1/whoami", source="127.0.0.10", token="ddnsadm_y",
                         headers={"X-Forwarded-For": "198.51.100.%d" % (90 + i)})[0] == 401
    assert admin_raw(st, "GET", "/api/v1/whoami", source="127.0.0.10", token=tok,
                     headers={"X-Forwarded-For": "198.51.100.99"})[0] == 429


# ---- statements that run too long ------------------------------------------------------

class TableLock:
    """A psql session that holds ACCESS EXCLUSIVE on a table until closed, as
    the tables' owner: every admin statement reading it waits."""

    def __init__(self, st, table):
        self.p = subprocess.Popen(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", st.conninfo],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.p.stdin.write("BEGIN;\nLOCK TABLE %s IN ACCESS EXCLUSIVE MODE;\n"
                           "SELECT 'locked';\n" % table)
        self.p.stdin.flush()
        while True:     # psql echoes BEGIN and LOCK TABLE first
            line = self.p.stdout.readline()
            assert line, "psql ended"
            if line.strip() == "locked":
                break

    def close(self):
        self.p.stdin.write("ROLLBACK;\n")
        self.p.stdin.close()
        self.p.wait(timeout=30)


def admin_waiting(st):
    """Admin statements of the gateway that run in PostgreSQL now."""
    return st.psql("SELECT pid FROM pg_stat_activity WHERE application_name = 'ddns-gateway' "
                   "AND state = 'active' AND query LIKE '%admin_tokens%'")


def test_slow_admin_statement_is_cancelled_and_answered_504(st, tok):
    lock = TableLock(st, "admin_tokens")
    try:
        status, _, body = admin_raw(st, "GET", "/api/v1/whoami", source="127.0.0.11", token=tok)
        # the answer came while the lock is still held: the statement was
        # cancelled in PostgreSQL, not left waiting
        assert status == 504, body
        assert b"did not answer within 2 s" in body
        assert admin_waiting(st) == []
    finally:
        lock.close()
    assert admin_raw(st, "GET", "/api/v1/whoami", source="127.0.0.11", token=tok)[0] == 200


def test_admin_statement_of_a_client_that_left_is_cancelled(st, tok):
    lock = TableLock(st, "admin_tokens")
    try:
        s = socket.create_connection(("127.0.0.1", st.admin_port),
                                     source_address=("127.0.0.12", 0))
        s.sendall(("GET /api/v1/whoami HTTP/1.1\r\nHost: localhost\r\n"
                   "Authorization: Bearer %s\r\n\r\n" % tok).encode())
        assert wait_until(lambda: admin_waiting(st) != [])
        s.close()
        # the gateway cancels it at once, not at the server's statement_timeout
        assert wait_until(lambda: "statement past its deadline cancelled" in st.gateway_log())
        assert admin_waiting(st) == []
    finally:
        lock.close()
