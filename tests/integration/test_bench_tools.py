"""The benchmark programs against real servers: ddns-load against the
session's gateway (PostgreSQL, Knot DNS) with devices from
`ddns-provision batch`, and against ddns-hello in plain HTTP and TLS.

Every count ddns-load reports is checked against what the other side
recorded: the gateway's access log (one line per answer, with the result
and the device) and the database (history rows, recorded addresses). Short
runs with --count only: no assertion depends on timing."""
import base64
import collections
import json
import os
import re
import signal
import socket
import subprocess
import threading

import pytest

import ddnsstack

LOAD = os.path.join(ddnsstack.BIN, "ddns-load")
HELLO = os.path.join(ddnsstack.BIN, "ddns-hello")
PROV = os.path.join(ddnsstack.BIN, "ddns-provision")
LOG_LINE = re.compile(r"path=/v1/update status=(\d+) result=(\S+) device=([0-9a-f]{12})")


# -- devices -----------------------------------------------------------------

class Fleet:
    """Devices registered with one `ddns-provision batch`, handed out in
    fresh slices so that every test starts from devices that never sent."""

    def __init__(self, creds, directory):
        self.creds = creds
        self.dir = directory
        self.next = 0

    def take(self, n, name):
        assert self.next + n <= len(self.creds), "fleet too small"
        part = self.creds[self.next:self.next + n]
        self.next += n
        return part, write_jsonl(part, os.path.join(self.dir, name + ".jsonl"))


def write_jsonl(creds, path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        for c in creds:
            f.write(json.dumps(c) + "\n")
    return path


@pytest.fixture(scope="module")
def fleet(stack, tmp_path_factory):
    d = tmp_path_factory.mktemp("bench-fleet")
    macs = set()
    while len(macs) < 500:
        macs.add("0e:" + ":".join("%02x" % b for b in os.urandom(5)))
    csv = d / "fleet.csv"
    with open(csv, "w") as f:
        f.write("mac,serial,model\n")
        for i, m in enumerate(sorted(macs)):
            f.write("%s,LD-%s-%04d,BENCH\n" % (m, os.urandom(3).hex(), i))
    out = d / "fleet.jsonl"
    p = subprocess.run([PROV, "batch", "--csv", str(csv), "--zone", ddnsstack.ZONE,
                        "--key-dir", stack.key_dir, "--db", stack.provision_conninfo,
                        "--operator", "bench-test", "--out", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    with open(out) as f:
        creds = [json.loads(line) for line in f]
    assert len(creds) == 500
    return Fleet(creds, str(d))


# -- running ddns-load ---------------------------------------------------------

def load(target, *args, tls=True, ca=None, host="localhost", timeout=120):
    """Runs ddns-load against 127.0.0.1:target; returns (process, summary)."""
    cmd = [LOAD, "--server", "127.0.0.1:%d" % target, "-q"]
    if tls:
        cmd += ["--ca", ca, "--host-header", host]
    else:
        cmd += ["--plain"]
    p = subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True,
                       timeout=timeout)
    assert p.returncode in (0, 1), "ddns-load exited %d:\n%s" % (p.returncode, p.stderr)
    lines = p.stdout.splitlines()
    assert len(lines) == 1, p.stdout
    return p, json.loads(lines[0])


def gw_load(stack, *args, **kw):
    return load(stack.https_port, *args, ca=stack.ca_cert, **kw)


def nonzero(results):
    return {k: v for k, v in results.items() if v}


def gateway_answers(stack, creds):
    """Results the gateway logged for these devices' updates."""
    ids = {c["device_id"] for c in creds}
    seen = collections.Counter()
    for m in LOG_LINE.finditer(stack.gateway_log()):
        if m.group(3) in ids:
            seen[m.group(2)] += 1
    return dict(seen)


def in_list(creds):
    return ",".join("'%s'" % c["device_id"] for c in creds)


def assert_clean(s, requests):
    assert s["requests"] == requests, s
    assert s["errors"]["total"] == 0, s["errors"]
    assert s["latency_ms"]["count"] == requests
    assert s["cpu_s"]["user"] >= 0 and s["cpu_s"]["system"] >= 0
    assert 0 < s["latency_ms"]["min"] <= s["latency_ms"]["p50"] <= s["latency_ms"]["p99"] \
        <= s["latency_ms"]["max"]


# -- the gateway ---------------------------------------------------------------

def test_change_keepalive_every_answer_good(stack, fleet):
    creds, path = fleet.take(60, "change")
    p, s = gw_load(stack, "--devices", path, "--workload", "change", "--connections", 4,
                   "--count", 120)
    assert p.returncode == 0
    assert_clean(s, 120)
    assert nonzero(s["results"]) == {"good": 120}
    assert s["ok"] == 120 and s["http_status"] == {"200": 120}
    assert s["connections_opened"] == 4
    assert gateway_answers(stack, creds) == {"good": 120}
    # every good answer is one recorded change of the device's one name
    rows = stack.psql("SELECT count(*) FROM history WHERE device_id IN (%s)" % in_list(creds))
    assert int(rows[0][0]) == 120
    addrs = stack.psql("SELECT host(ipv4) FROM names WHERE device_id IN (%s)" % in_list(creds))
    assert len(addrs) == 60 and all(a[0].startswith("100.") for a in addrs)


def test_nochg_first_round_good_then_nochg(stack, fleet):
    creds, path = fleet.take(50, "nochg")
    p, s = gw_load(stack, "--devices", path, "--workload", "nochg", "--connections", 4,
                   "--count", 100)
    assert_clean(s, 100)
    # the first request of each fresh device records its address, the
    # others find it recorded
    assert nonzero(s["results"]) == {"good": 50, "nochg": 50}
    assert gateway_answers(stack, creds) == {"good": 50, "nochg": 50}
    # the address of the n-th device of the file is 198.18.0.n
    rows = stack.psql("SELECT device_id, host(ipv4) FROM names WHERE device_id IN (%s)"
                      % in_list(creds))
    want = {c["device_id"]: "198.18.0.%d" % i for i, c in enumerate(creds)}
    assert dict((r[0], r[1]) for r in rows) == want
    # no device was used twice in one second: the gateway saw no replay
    assert "replay" not in gateway_answers(stack, creds)


def test_nochg_warmup_is_not_measured(stack, fleet):
    creds, path = fleet.take(40, "warmup")
    p, s = gw_load(stack, "--devices", path, "--workload", "nochg", "--warmup",
                   "--connections", 4, "--count", 40)
    assert_clean(s, 40)
    assert nonzero(s["results"]) == {"nochg": 40}
    assert s["warmup"]["requests"] == 40
    assert nonzero(s["warmup"]["results"]) == {"good": 40}
    assert gateway_answers(stack, creds) == {"good": 40, "nochg": 40}


@pytest.mark.parametrize("resume,tls_max", [(False, "1.3"), (True, "1.3"), (True, "1.2")])
def test_new_connection_per_request(stack, fleet, resume, tls_max):
    creds, path = fleet.take(30, "new-%s-%s" % (resume, tls_max))
    args = ["--devices", path, "--workload", "change", "--mode", "new", "--connections", 4,
            "--count", 40, "--tls-max", tls_max]
    if resume:
        args.append("--resume")
    p, s = gw_load(stack, *args)
    assert_clean(s, 40)
    assert nonzero(s["results"]) == {"good": 40}
    assert s["connections_opened"] == 40
    if resume:
        # every connection after a slot's first resumes (with TLS 1.3 on
        # the fresh ticket the previous resumption brought)
        assert s["handshakes_resumed"] >= 40 - 4
    else:
        assert s["handshakes_resumed"] == 0
    assert gateway_answers(stack, creds) == {"good": 40}


def test_threads_and_open_loop_rate(stack, fleet):
    creds, path = fleet.take(40, "rate")
    p, s = gw_load(stack, "--devices", path, "--workload", "change", "--threads", 2,
                   "--connections", 4, "--rate", 200, "--count", 60)
    assert_clean(s, 60)
    assert nonzero(s["results"]) == {"good": 60}
    assert s["rate_target"] == 200 and s["rate_unsent"] == 0
    assert gateway_answers(stack, creds) == {"good": 60}


def test_wrong_secrets_are_counted_as_badauth(stack, fleet):
    creds, _ = fleet.take(20, "badauth")
    wrong = []
    for c in creds:
        secret = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
        wrong.append({"device_id": c["device_id"], "kid": c["kid"], "secret": secret})
    path = write_jsonl(wrong, os.path.join(fleet.dir, "wrong.jsonl"))
    p, s = gw_load(stack, "--devices", path, "--connections", 2, "--count", 30)
    assert p.returncode == 1        # the summary is printed, nothing succeeded
    assert s["requests"] == 30 and s["ok"] == 0
    assert nonzero(s["results"]) == {"badauth": 30}
    assert s["http_status"] == {"401": 30}
    assert s["errors"]["total"] == 0
    assert gateway_answers(stack, creds) == {"badauth": 30}


def test_dyndns2_workload(stack, fleet):
    creds, path = fleet.take(20, "dyndns2")
    p, s = gw_load(stack, "--devices", path, "--workload", "dyndns2", "--connections", 2,
                   "--count", 40)
    assert_clean(s, 40)
    assert nonzero(s["results"]) == {"good": 20, "nochg": 20}


def test_server_certificate_name_is_verified(stack, fleet):
    creds, path = fleet.take(5, "wrongname")
    p, s = gw_load(stack, "--devices", path, "--connections", 2, "--count", 5,
                   host="wrong.example.test")
    assert p.returncode == 1
    assert s["ok"] == 0 and s["requests"] == 5
    # the 2 connections opened before measuring fail too
    assert s["errors"]["tls"] == 5 + 2
    assert "certificate verification failed: hostname mismatch" in p.stderr
    assert gateway_answers(stack, creds) == {}


def test_idle_connections_to_the_gateway(stack):
    p, s = gw_load(stack, "--mode", "idle", "--connections", 30, "--duration", 0.3)
    assert p.returncode == 0
    assert s["connections_opened"] == 30 and s["open_end"] == 30 and s["open_max"] == 30
    assert s["errors"]["total"] == 0 and s["requests"] == 0


def test_bad_devices_file_is_a_usage_error(stack, fleet, tmp_path):
    creds, _ = fleet.take(1, "bad")
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(creds[0]) + "\n" + '{"device_id": "0e0000000001"}\n')
    p = subprocess.run([LOAD, "--server", "127.0.0.1:%d" % stack.https_port, "--ca",
                        stack.ca_cert, "--devices", str(path), "--count", "1"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and p.stdout == ""
    assert "%s:2: credentials: need kid and secret, or password" % path in p.stderr
    assert creds[0]["secret"] not in p.stderr


# -- ddns-hello ----------------------------------------------------------------

def start_hello(*args):
    p = subprocess.Popen([HELLO, "--listen", "127.0.0.1:0"] + list(args),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    m = re.match(r"ddns-hello: listening on 127\.0\.0\.1:(\d+) (tls|plain) pid (\d+)$", line)
    assert m, (line, p.stderr.read() if p.poll() is not None else "")
    assert int(m.group(3)) == p.pid
    return p, int(m.group(1))


def stop_hello(p):
    p.send_signal(signal.SIGTERM)
    rc = p.wait(timeout=10)
    err = p.stderr.read()
    assert rc == 0, err
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        assert marker not in err, err


@pytest.fixture(scope="module")
def hello(stack):
    plain, pport = start_hello()
    tls, tport = start_hello("--tls", os.path.join(stack.dir, "tls", "server.crt"),
                             os.path.join(stack.dir, "tls", "server.key"))
    yield {"plain": pport, "tls": tport, "ca": stack.ca_cert}
    stop_hello(plain)
    stop_hello(tls)


def test_hello_plain_keepalive(hello):
    p, s = load(hello["plain"], "--workload", "hello", "--connections", 4, "--count", 300,
                tls=False)
    assert_clean(s, 300)
    assert nonzero(s["results"]) == {"hello": 300} and s["http_status"] == {"200": 300}
    assert s["connections_opened"] == 4 and s["tls"] is False


@pytest.mark.parametrize("mode", ["keepalive", "new"])
def test_hello_tls(hello, mode):
    p, s = load(hello["tls"], "--workload", "hello", "--mode", mode, "--connections", 4,
                "--count", 100, ca=hello["ca"])
    assert_clean(s, 100)
    assert nonzero(s["results"]) == {"hello": 100}
    assert s["connections_opened"] == (4 if mode == "keepalive" else 100)


def test_hello_open_loop_ends_at_the_count(hello):
    # connections waiting for the next token when the count is reached get
    # none: the run ends once the last answer is in
    p, s = load(hello["plain"], "--workload", "hello", "--connections", 8, "--rate", 500,
                "--count", 50, tls=False, timeout=30)
    assert_clean(s, 50)
    assert nonzero(s["results"]) == {"hello": 50} and s["rate_unsent"] == 0


def test_hello_other_path_is_an_http_error(hello):
    p, s = load(hello["plain"], "--workload", "hello", "--path", "/nothing", "--connections", 2,
                "--count", 10, tls=False)
    assert p.returncode == 1
    assert s["http_status"] == {"404": 10} and s["errors"]["http"] == 10 and s["ok"] == 0


def test_hello_idle_connections(hello):
    p, s = load(hello["tls"], "--mode", "idle", "--connections", 50, "--duration", 0.3,
                "--idle-ping", 0.1, ca=hello["ca"])
    assert p.returncode == 0
    assert s["connections_opened"] == 50 and s["open_end"] == 50
    assert s["errors"]["total"] == 0


def test_sigint_ends_the_run_with_a_summary(hello):
    p = subprocess.Popen([LOAD, "--server", "127.0.0.1:%d" % hello["plain"], "--plain",
                          "--workload", "hello", "--connections", "2", "--duration", "3600"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # the first progress line: the run is under way
        while "measuring" not in p.stderr.readline():
            assert p.poll() is None, p.stderr.read()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    s = json.loads(out)
    assert s["interrupted"] is True
    assert s["ok"] > 0 and s["ok"] == s["results"]["hello"] == s["requests"]
    assert s["errors"]["total"] == 0


# -- a server that answers nonsense --------------------------------------------

GARBAGE = [
    b"HTTP/1.1 200 OK\r\n\r\ngood 192.0.2.1\n",                       # no Content-Length
    b"\x16\x03\x01 not http at all\r\n\r\n",                            # not HTTP
    b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nnonsense\n",          # not an answer
    b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\ngood",              # cut short
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\ngood\n\r\n0\r\n\r\n",
    b"",                                                                # closed at once
]


def test_garbage_answers_are_counted_never_fatal(fleet):
    creds, path = fleet.take(10, "garbage")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    port = srv.getsockname()[1]
    served = []

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            with c:
                c.settimeout(5)
                try:
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = c.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    if data:
                        c.sendall(GARBAGE[len(served) % len(GARBAGE)])
                        served.append(1)
                except OSError:
                    pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        p, s = load(port, "--devices", path, "--connections", 2, "--count", 24, "--timeout", 5,
                    tls=False)
    finally:
        srv.close()
    assert p.returncode == 1
    assert s["requests"] == 24 and s["ok"] == 0
    assert sum(s["results"].values()) == 0
    # every request ends as an HTTP error or a connection closed early
    assert s["errors"]["http"] + s["errors"]["closed"] == 24, s["errors"]
    assert s["errors"]["http"] >= 10 and s["errors"]["closed"] >= 4
