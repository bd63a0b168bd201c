"""Faults under load: the DNS server down for 30 s, PostgreSQL restarted, the
gateway killed with SIGKILL, the DNS server losing its journal. Devices keep
sending real signed updates (ddns-client) the whole time; each test ends by
comparing every `good` answer with the database and the final DNS state.

These tests stop and start the servers, so they run on a stack of their own."""
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

import ddnsstack

ZONE = ddnsstack.ZONE
GATEWAY = os.path.join(ddnsstack.BIN, "ddns-gateway")
DEVICES = 6


@pytest.fixture(scope="module")
def fstack():
    with ddnsstack.started("ddns-faults-", "faults stack") as s:
        yield s


@pytest.fixture(scope="module")
def fleet(fstack, tmp_path_factory):
    return fstack.provision_fleet(tmp_path_factory.mktemp("fleet"), "0e:fa:%02x:00:01:%02x",
                                  DEVICES)


class Load:
    """One thread per device sending an update with a new address about once
    a second (the replay rule allows one accepted request per second)."""

    def __init__(self, stack, fleet, prefix):
        self.stack, self.fleet, self.prefix = stack, fleet, prefix
        self.stop_flag = threading.Event()
        self.log = [[] for _ in fleet]     # per device: (address, answer)
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(len(fleet))]

    def _run(self, i):
        n, last_ts = 0, 0
        while not self.stop_flag.is_set():
            n += 1
            addr = "%s.%d.%d" % (self.prefix, i, n % 250 + 1)
            t0 = time.time()
            # a new second for every request, also when the previous one took
            # longer than a second (a slow start on a loaded machine would
            # otherwise sign two requests in one second: a replay)
            last_ts = max(int(t0), last_ts + 1)
            p = self.stack.client(self.fleet[i][1], "--ipv4", addr, "--timeout", "5",
                                  "--timestamp", str(last_ts))
            self.log[i].append((addr, p.stdout.strip() or "error: " + p.stderr.strip()[-200:]))
            self.stop_flag.wait(max(0.0, 1.05 - (time.time() - t0)))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.threads:
            t.join()

    def answers(self):
        return [a for dev in self.log for _, a in dev]

    def goods(self):
        return sum(1 for a in self.answers() if a.startswith("good "))


def verify(stack, load, deadline):
    """Every device's last `good` address (or a later one whose answer was
    lost) is in the database, and the DNS server serves the database's
    address by the deadline (time.time() value)."""
    for i, (creds, _) in enumerate(load.fleet):
        log = load.log[i]
        goods = [k for k, (addr, ans) in enumerate(log) if ans == "good " + addr]
        assert goods, "device %d never got good: %s" % (i, log)
        last = goods[-1]
        allowed = {log[last][0]} | {addr for addr, _ in log[last + 1:]}
        rows = stack.psql("SELECT host(ipv4) FROM names WHERE device_id = '%s'"
                          % creds["device_id"])
        assert rows and rows[0][0] in allowed, (i, rows, log[last:])
        want = [rows[0][0]]
        got = stack.wait_dns(creds["fqdn"], "A", want, timeout=max(0.0, deadline - time.time()))
        assert got == want, \
            "device %d: DNS serves %s, not %s" % (i, got, want)
    left = stack.psql("SELECT count(*) FROM dns_outbox")
    assert left == [["0"]], left


def test_dns_server_down_for_30_seconds(fstack, fleet):
    with Load(fstack, fleet, "198.18") as load:
        time.sleep(3)
        assert fstack.stop_process("knotd") is not None
        time.sleep(30)
    # the outbox kept every change the gateway answered good for
    backlog = int(fstack.psql("SELECT count(*) FROM dns_outbox")[0][0])
    assert backlog > 0
    assert load.goods() > 20 * DEVICES, load.answers()
    fstack.start_knot()
    verify(fstack, load, deadline=time.time() + 5)
    assert "changes not published" in fstack.gateway_log()


def test_postgres_restarted_under_load(fstack, fleet):
    with Load(fstack, fleet, "198.19") as load:
        time.sleep(3)
        fstack.stop_postgres()
        time.sleep(4)
        fstack.start_postgres()
        time.sleep(8)
        # the request path reconnected by itself
        recent = [dev[-1][1] for dev in load.log]
    answers = load.answers()
    outage = [a for a in answers if not a.startswith("good ")]
    assert outage, "no request fell into the outage"
    # requests during the outage got the temporary error (or no answer);
    # never one that tells the device to stop or to fix something
    permanent = {"badauth", "disabled", "badrequest", "notfound", "badagent", "badtime"}
    assert not [a for a in outage if a.split(" ")[0] in permanent], \
        [a for a in outage if a != "911"]
    assert outage.count("911") >= len(outage) // 2, [a for a in outage if a != "911"]
    assert all(a.startswith("good ") for a in recent), recent
    verify(fstack, load, deadline=time.time() + 5)


def test_gateway_killed_under_load(fstack, fleet):
    with Load(fstack, fleet, "198.20") as load:
        time.sleep(3)
        p = fstack.procs.pop("gateway")
        p.send_signal(signal.SIGKILL)
        p.wait()
        time.sleep(1)
        fstack.start_gateway()
        time.sleep(4)
    assert load.goods() > 0
    verify(fstack, load, deadline=time.time() + 5)


def test_journal_lost_then_resync(fstack, fleet):
    # the DNS server comes back from its zone file alone: every name is gone
    assert fstack.stop_process("knotd") is not None
    kdir = os.path.join(fstack.dir, "knot")
    for j in glob.glob(os.path.join(kdir, "journal")) + glob.glob(os.path.join(kdir, "timers")):
        shutil.rmtree(j)
    fstack.start_knot()
    creds = fleet[0][0]
    assert fstack.dig(creds["fqdn"]) == []
    p = subprocess.run([GATEWAY, "resync", ZONE, "-c", fstack.gw_conf], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "%d missing" % DEVICES in p.stdout, p.stdout
    for c, _ in fleet:
        want = fstack.psql("SELECT host(ipv4) FROM names WHERE device_id = '%s'"
                           % c["device_id"])[0]
        assert fstack.dig(c["fqdn"]) == want


def start_second_gateway(stack, tmp_path, name, edit=lambda text: text):
    """Another ddns-gateway on the same database and DNS server."""
    port = ddnsstack.free_port()
    text = stack.gateway_config_text(port)
    conf = tmp_path / ("%s.conf" % name)
    conf.write_text(edit(text))
    log = tmp_path / ("%s.log" % name)
    logf = open(log, "a")
    p = subprocess.Popen([GATEWAY, "-c", str(conf)], stdout=logf, stderr=logf,
                         start_new_session=True)
    deadline = time.time() + 20
    while "running:" not in log.read_text():
        assert p.poll() is None and time.time() < deadline, log.read_text()
        time.sleep(0.1)
    return p, port, log


def published_rows(text):
    return sum(int(m) for m in re.findall(r"published zone=\S+ changes=\d+ rows=(\d+)", text))


def test_two_gateways_share_the_outbox(fstack, fleet, tmp_path):
    p2, port2, log2 = start_second_gateway(fstack, tmp_path, "gw2")
    before = published_rows(fstack.gateway_log())
    hist0 = int(fstack.psql("SELECT coalesce(max(id), 0) FROM history")[0][0])
    try:
        # the devices alternate between the two gateways
        gw1 = fstack.https_port
        with Load(fstack, fleet, "198.21") as load:
            for _ in range(8):
                time.sleep(1)
                fstack.https_port = port2 if fstack.https_port == gw1 else gw1
        fstack.https_port = gw1
        verify(fstack, load, deadline=time.time() + 5)
        # a replay to the other gateway is refused there too
        cred = fleet[0][1]
        ts = str(int(time.time()) + 2)
        fstack.https_port = gw1
        a = fstack.client(cred, "--ipv4", "198.21.99.1", "--timestamp", ts).stdout.strip()
        fstack.https_port = port2
        b = fstack.client(cred, "--ipv4", "198.21.99.2", "--timestamp", ts).stdout.strip()
        fstack.https_port = gw1
        assert (a, b) == ("good 198.21.99.1", "replay")
        assert fstack.wait_dns(fleet[0][0]["fqdn"], "A", ["198.21.99.1"]) == ["198.21.99.1"]
    finally:
        fstack.https_port = gw1
        p2.send_signal(signal.SIGTERM)
        assert p2.wait(timeout=15) == 0, log2.read_text()[-3000:]
    # every outbox row was published exactly once, by one gateway or the other
    changes = int(fstack.psql("SELECT count(*) FROM history WHERE id > %d" % hist0)[0][0])
    by1 = published_rows(fstack.gateway_log()) - before
    by2 = published_rows(log2.read_text())
    assert by1 + by2 == changes, (by1, by2, changes)
    assert by2 > 0 or by1 > 0


def test_wrong_tsig_key_keeps_the_outbox(fstack, fleet, tmp_path):
    """A gateway whose TSIG key the DNS server rejects publishes nothing and
    loses nothing: the rows stay queued with the error until a gateway with
    the right key publishes them."""
    gw1 = fstack.procs.pop("gateway")
    gw1.send_signal(signal.SIGTERM)
    assert gw1.wait(timeout=15) == 0
    secret = tmp_path / "wrong.secret"
    secret.write_text("d3JvbmdrZXl3cm9uZ2tleXdyb25na2V5d3Jvbmc=\n")
    os.chmod(secret, 0o600)
    p2, port2, log2 = start_second_gateway(
        fstack, tmp_path, "badkey",
        lambda t: re.sub(r"tsig_secret_file = .*", "tsig_secret_file = %s" % secret, t))
    try:
        creds, path = fleet[1]
        fstack.https_port, saved = port2, fstack.https_port
        time.sleep(1.05)
        assert fstack.client(path, "--ipv4", "198.22.0.1").stdout.strip() == "good 198.22.0.1"
        fstack.https_port = saved
        deadline = time.time() + 10
        rows = []
        while time.time() < deadline:
            rows = fstack.psql("SELECT attempts, last_error FROM dns_outbox WHERE fqdn = '%s'"
                               % creds["fqdn"])
            if rows and int(rows[0][0]) >= 2:
                break
            time.sleep(0.2)
        assert rows and int(rows[0][0]) >= 2, rows
        assert "TSIG" in rows[0][1] or "NOTAUTH" in rows[0][1], rows
        assert fstack.dig(creds["fqdn"]) != ["198.22.0.1"]
    finally:
        p2.send_signal(signal.SIGTERM)
        assert p2.wait(timeout=15) == 0
    fstack.start_gateway()
    assert fstack.wait_dns(creds["fqdn"], "A", ["198.22.0.1"]) == ["198.22.0.1"]


class HoldingRelay:
    """A TCP relay between a gateway and the real DNS server that forwards
    requests at once and holds the server's answers until released; it counts
    the requests (two length bytes, then the message) and, when asked, turns
    the rcode of the first answer into REFUSED (which also breaks its TSIG)."""

    def __init__(self, server_port):
        self.server_port = server_port
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]
        self.requests = []          # (connection number, message count on it)
        self.connections = 0
        self.released = threading.Event()
        self.lock = threading.Lock()
        self.spoil_first_answer = False
        self.answers = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            s = socket.create_connection(("127.0.0.1", self.server_port))
            with self.lock:
                self.connections += 1
                n = self.connections
            threading.Thread(target=self._pump, args=(c, s, n, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(s, c, n, False), daemon=True).start()

    def _pump(self, src, dst, conn, is_request):
        buf = b""
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            buf += data
            while len(buf) >= 2 and len(buf) >= 2 + int.from_bytes(buf[:2], "big"):
                size = 2 + int.from_bytes(buf[:2], "big")
                if is_request:
                    with self.lock:
                        self.requests.append(conn)
                else:
                    self.released.wait()
                    with self.lock:
                        self.answers += 1
                        if self.answers == 1 and self.spoil_first_answer:
                            buf = buf[:5] + bytes([(buf[5] & 0xF0) | 5]) + buf[6:]
                dst.sendall(buf[:size])
                buf = buf[size:]

    def wait_requests(self, n, timeout=10):
        deadline = time.time() + timeout
        while len(self.requests) < n and time.time() < deadline:
            time.sleep(0.02)
        return list(self.requests)

    def close(self):
        self.released.set()
        self.lsock.close()


def test_two_updates_in_flight_and_a_refused_one(fstack, fleet, tmp_path):
    """The publisher sends the next UPDATE while one is unanswered, on the
    same TCP connection; when the first is not confirmed and the second is,
    the rows the second superseded leave the outbox and only the first
    message's other change waits for a retry (an older address is never sent
    again)."""
    relay = HoldingRelay(fstack.dns_port)
    relay.spoil_first_answer = True
    deadline = time.time() + 10
    while fstack.psql("SELECT count(*) FROM dns_outbox") != [["0"]] and time.time() < deadline:
        time.sleep(0.1)
    gw1 = fstack.procs.pop("gateway")
    gw1.send_signal(signal.SIGTERM)
    assert gw1.wait(timeout=15) == 0
    name = "inflight-%d.%s" % (os.getpid(), ZONE)
    other = "inflight-other-%d.%s" % (os.getpid(), ZONE)
    p2, _, log2 = start_second_gateway(
        fstack, tmp_path, "relayed",
        lambda t: t.replace("primary = 127.0.0.1:%d" % fstack.dns_port,
                            "primary = 127.0.0.1:%d" % relay.port))
    try:
        # message 1: the name's first address and another name's
        fstack.psql("BEGIN; INSERT INTO dns_outbox (zone, fqdn, rrtype, address) VALUES "
                    "('%s', '%s', 'A', '198.51.100.1'), ('%s', '%s', 'A', '198.51.100.7'); "
                    "SELECT pg_notify('ddns_outbox', ''); COMMIT" % (ZONE, name, ZONE, other))
        assert relay.wait_requests(1) == [1]
        # message 2, sent before the answer to message 1: the newer address
        fstack.psql("BEGIN; INSERT INTO dns_outbox (zone, fqdn, rrtype, address) VALUES "
                    "('%s', '%s', 'A', '198.51.100.2'); SELECT pg_notify('ddns_outbox', ''); "
                    "COMMIT" % (ZONE, name))
        assert relay.wait_requests(2) == [1, 1], "second UPDATE not sent on the same connection"
        # the answers go out; the first one's rcode (and so its TSIG) spoiled
        relay.released.set()
        assert fstack.wait_dns(name, "A", ["198.51.100.2"]) == ["198.51.100.2"]
        assert fstack.wait_dns(other, "A", ["198.51.100.7"]) == ["198.51.100.7"]
        deadline = time.time() + 10
        rows = None
        while time.time() < deadline:
            rows = fstack.psql("SELECT fqdn FROM dns_outbox WHERE fqdn IN ('%s', '%s')"
                               % (name, other))
            if not rows:
                break
            time.sleep(0.1)
        assert rows == [], rows
        text = log2.read_text()
        # message 2 confirmed its row and the one of message 1 it superseded;
        # the other change of message 1 was retried alone
        assert re.search(r"zone %s: 1 changes not published \(no valid answer from "
                         r"\S+: TSIG of the answer is missing or wrong \(rcode REFUSED\)\)"
                         % re.escape(ZONE), text), text[-3000:]
        assert published_rows(text) == 3, text[-3000:]
        time.sleep(1)
        assert fstack.dig(name) == ["198.51.100.2"]
    finally:
        p2.send_signal(signal.SIGTERM)
        assert p2.wait(timeout=15) == 0, log2.read_text()[-3000:]
        relay.close()
        fstack.start_gateway()


def test_a_change_the_server_refuses_does_not_hold_up_the_others(fstack, fleet):
    """One outbox row the DNS server refuses (a name outside the zone, which
    the gateway key's ACL does not allow: Knot refuses the whole message,
    NOTAUTH with the TSIG error BADKEY, unsigned) among others: the publisher
    sends fewer rows per message until that change is alone, sets it aside,
    and publishes every other change."""
    tag = "refuse-%d" % os.getpid()
    outside = "%s.not-%s" % (tag, ZONE)
    names = ["%s-%d.%s" % (tag, i, ZONE) for i in range(12)]
    rows = ["('%s', '%s', 'A', '203.0.113.%d')" % (ZONE, n, i + 1) for i, n in enumerate(names)]
    rows.insert(5, "('%s', '%s', 'A', '192.0.2.1')" % (ZONE, outside))
    try:
        fstack.psql("BEGIN; INSERT INTO dns_outbox (zone, fqdn, rrtype, address) VALUES %s; "
                    "SELECT pg_notify('ddns_outbox', ''); COMMIT" % ", ".join(rows))
        for i, n in enumerate(names):
            want = ["203.0.113.%d" % (i + 1)]
            assert fstack.wait_dns(n, "A", want, timeout=20) == want, n
        deadline = time.time() + 10
        left = None
        while time.time() < deadline:
            left = fstack.psql("SELECT fqdn, attempts, last_error FROM dns_outbox "
                               "WHERE fqdn LIKE '%s%%'" % tag)
            if len(left) == 1:
                break
            time.sleep(0.1)
        assert len(left) == 1 and left[0][0] == outside, left
        assert int(left[0][1]) >= 1 and "refused the UPDATE: NOTAUTH with TSIG error " \
            "BADKEY" in left[0][2], left
        log = fstack.gateway_log()
        assert "looking for the change refused" in log
        assert "%s refused alone; set aside for 60 s" % outside in log
    finally:
        fstack.psql("DELETE FROM dns_outbox WHERE fqdn = '%s'" % outside)
