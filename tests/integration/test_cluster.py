"""The scale-out topology of docker/compose.yml, on loopback without
containers (make test-cluster): PostgreSQL, a Knot DNS primary and a
secondary following it by NOTIFY/IXFR, two gateways behind HAProxy with
PROXY protocol v2 (TLS passes through HAProxy and ends at the gateways),
all started from the configuration files of docker/ (ddnsstack.Cluster).

Devices are served by both gateways; the gateways record the real client's
address (sent from 127.0.0.2); a replay sent to the other gateway is
refused; a gateway killed with SIGKILL loses no `good` update and HAProxy
keeps serving through the other; every change reaches the secondary by
IXFR; a gateway works through PgBouncer in transaction mode
(deploy/pgbouncer/pgbouncer.ini) with its publisher connected directly; the
images' HEALTHCHECK commands work."""
import json
import os
import re
import subprocess
import threading
import time

import pytest

import ddnsstack

ZONE = ddnsstack.ZONE
DEVICES = 6


@pytest.fixture(scope="module")
def cluster():
    with ddnsstack.cluster_started("ddns-cluster-", "cluster") as c:
        yield c


@pytest.fixture(scope="module")
def fleet(cluster, tmp_path_factory):
    return cluster.stack.provision_fleet(tmp_path_factory.mktemp("cfleet"),
                                         "0e:c1:%02x:00:02:%02x", DEVICES)


signed = ddnsstack.Stack.signed_request     # (stack, cred_file, directory, *args)


def served_by(cluster, device_id, result):
    """The gateways (0, 1) whose access log has an answer `result` for the device."""
    return sorted({i for i in range(cluster.GATEWAYS) for r in cluster.gateway_requests(i)
                   if r["device"] == device_id and r["result"] == result})


def test_devices_are_served_by_both_gateways(cluster, fleet):
    stack = cluster.stack
    for i, (creds, path) in enumerate(fleet):
        p = stack.client(path, "--ipv4", "198.51.100.%d" % (i + 1))
        assert p.stdout.strip() == "good 198.51.100.%d" % (i + 1), p.stdout + p.stderr
    # round robin: both gateways answered some of the devices
    by_gateway = [0, 0]
    for creds, _ in fleet:
        for g in served_by(cluster, creds["device_id"], "good"):
            by_gateway[g] += 1
    assert by_gateway[0] > 0 and by_gateway[1] > 0, by_gateway
    assert sum(by_gateway) == DEVICES, by_gateway
    for i, (creds, _) in enumerate(fleet):
        want = ["198.51.100.%d" % (i + 1)]
        assert stack.wait_dns(creds["fqdn"], "A", want) == want
        assert cluster.wait_secondary(creds["fqdn"], "A", want) == want


def test_gateway_records_the_real_client_address(cluster, fleet, tmp_path):
    """A device connecting from 127.0.0.2 through HAProxy: the gateway sees
    127.0.0.2 in the PROXY v2 header (HAProxy itself connects from
    127.0.0.1) and records it as the device's address and source."""
    stack = cluster.stack
    creds, path = fleet[0]
    time.sleep(1.05)        # one accepted request per device and second
    raw = signed(stack, path, tmp_path)     # empty body: use my connection's address
    status, _, body = stack.https_exchange(raw, source="127.0.0.2")
    assert (status, body) == (200, b"good 127.0.0.2\n")
    rows = stack.psql("SELECT host(ipv4), host(last_source) FROM names JOIN devices "
                      "USING (device_id) WHERE device_id = '%s'" % creds["device_id"])
    assert rows == [["127.0.0.2", "127.0.0.2"]]
    src = stack.psql("SELECT host(source) FROM history WHERE device_id = '%s' "
                     "ORDER BY id DESC LIMIT 1" % creds["device_id"])
    assert src == [["127.0.0.2"]]
    peers = [r["peer"] for g in range(cluster.GATEWAYS) for r in cluster.gateway_requests(g)
             if r["device"] == creds["device_id"] and r["result"] == "good"]
    assert peers and re.match(r"127\.0\.0\.2(:\d+)?$", peers[-1]), peers
    assert cluster.wait_secondary(creds["fqdn"], "A", ["127.0.0.2"]) == ["127.0.0.2"]


def test_replay_sent_to_the_other_gateway_is_refused(cluster, fleet, tmp_path):
    stack = cluster.stack
    creds, path = fleet[1]
    time.sleep(1.05)
    raw = signed(stack, path, tmp_path, "--ipv4", "198.51.100.201")
    # round robin sends two consecutive connections to the two gateways
    first = stack.https_exchange(raw)
    second = stack.https_exchange(raw)
    assert (first[0], first[2]) == (200, b"good 198.51.100.201\n")
    assert second[2] == b"replay\n", second
    good_at = [g for g in range(cluster.GATEWAYS) for r in cluster.gateway_requests(g)
               if r["device"] == creds["device_id"] and r["result"] == "good"]
    replay_at = served_by(cluster, creds["device_id"], "replay")
    assert len(replay_at) == 1 and replay_at[0] != good_at[-1], (good_at, replay_at)
    assert cluster.wait_secondary(creds["fqdn"], "A", ["198.51.100.201"]) == ["198.51.100.201"]


def test_updates_reach_the_secondary_by_ixfr(cluster, fleet):
    stack = cluster.stack
    creds, path = fleet[2]
    soa = lambda port: int(cluster.dig_at(port, ZONE, "SOA")[0].split()[2])
    sec_log = lambda: cluster.log_text("knot-secondary")
    before = sec_log()
    time.sleep(1.05)
    assert stack.client(path, "--ipv4", "198.51.100.77").stdout.strip() == "good 198.51.100.77"
    assert stack.wait_dns(creds["fqdn"], "A", ["198.51.100.77"]) == ["198.51.100.77"]
    serial = soa(cluster.primary_port)
    assert cluster.wait_secondary(creds["fqdn"], "A", ["198.51.100.77"]) == ["198.51.100.77"]
    deadline = time.time() + 10
    while soa(cluster.secondary_port) < serial and time.time() < deadline:
        time.sleep(0.05)
    assert soa(cluster.secondary_port) >= serial
    # the secondary was told by NOTIFY and fetched the change incrementally:
    # only its very first transfer was a whole zone (AXFR)
    new = sec_log()[len(before):]
    assert re.search(r"notify, incoming, remote 127\.0\.0\.1@\d+, serial \d+", new), new
    assert re.search(r"IXFR, incoming, remote 127\.0\.0\.1@%d, finished" % cluster.primary_port,
                     new), new
    assert "AXFR, incoming" not in new, new
    assert sec_log().count("AXFR, incoming") <= 2     # "started" and "finished" of the first
    assert "IXFR, outgoing" in cluster.log_text("knot-primary")


def test_gateway_through_pgbouncer_in_transaction_mode(cluster, fleet, tmp_path):
    """Gateway 1's request pool through PgBouncer in transaction mode
    (deploy/pgbouncer/pgbouncer.ini), its publisher straight to PostgreSQL
    (publisher_conninfo), as docs/OPERATIONS.md says: updates, the replay
    rule across gateways, publishing and the provisioning tool all work."""
    stack = cluster.stack
    port = cluster.start_pgbouncer()
    via = "host=127.0.0.1 port=%d dbname=ddns user=ddns_gateway_login" % port
    prov_via = "host=127.0.0.1 port=%d dbname=ddns user=ddns_provision_login" % port
    p = cluster.procs.pop("gateway1")
    p.terminate()
    assert p.wait(timeout=15) == 0
    cluster.wait_servers({"gw1": "DOWN", "gw2": "UP"})
    cluster.start_gateway(0, conninfo=via)
    cluster.wait_servers({"gw1": "UP", "gw2": "UP"})
    xacts = lambda: sum(int(r["total_xact_count"]) for r in cluster.pgbouncer_show("STATS")
                        if r["database"] == "ddns")
    before = xacts()
    n_gw1 = len(cluster.gateway_requests(0))
    time.sleep(1.05)
    for i, (creds, path) in enumerate(fleet):
        r = stack.client(path, "--ipv4", "198.51.101.%d" % (i + 1))
        assert r.stdout.strip() == "good 198.51.101.%d" % (i + 1), r.stdout + r.stderr
    new = [r for r in cluster.gateway_requests(0)[n_gw1:] if r["result"] == "good"]
    assert new, "gateway 1 answered none of the updates"
    # each of gateway 1's updates was a transaction through PgBouncer
    assert xacts() - before >= len(new)
    # PgBouncer's clients are gateway 1's request pool, not its publisher
    clients = [c for c in cluster.pgbouncer_show("CLIENTS") if c["database"] == "ddns"]
    apps = sorted({c["application_name"] for c in clients})
    assert apps == ["ddns-gateway"], clients
    for i, (creds, _) in enumerate(fleet):
        want = ["198.51.101.%d" % (i + 1)]
        assert cluster.wait_secondary(creds["fqdn"], "A", want) == want
    # the replay rule holds between a pooled and a direct gateway
    creds, path = fleet[3]
    time.sleep(1.05)
    raw = signed(stack, path, tmp_path, "--ipv4", "198.51.101.99")
    answers = sorted([stack.https_exchange(raw)[2], stack.https_exchange(raw)[2]])
    assert answers == [b"good 198.51.101.99\n", b"replay\n"], answers
    # the provisioning tool works through PgBouncer too: one device, and a
    # batch (COPY into a temporary table, all in one transaction)
    tool = os.path.join(ddnsstack.BIN, "ddns-provision")
    one = ddnsstack.run([tool, "issue", "--mac", "0e:c1:%02x:00:03:01" % (os.getpid() & 0xff),
                         "--zone", ZONE, "--key-dir", stack.key_dir, "--db", prov_via,
                         "--operator", "pgbouncer test"])
    assert '"device_id"' in one.stdout, one.stdout + one.stderr
    csv = tmp_path / "batch.csv"
    csv.write_text("mac,serial,model\n" + "".join(
        "0e:c1:%02x:00:04:%02x,SNPGB%02d,IPC-G5\n" % (os.getpid() & 0xff, k, k)
        for k in range(1, 21)))
    batch = ddnsstack.run([tool, "batch", "--csv", str(csv), "--zone", ZONE, "--key-dir",
                           stack.key_dir, "--db", prov_via, "--operator", "pgbouncer test",
                           "--format", "jsonl", "--out", str(tmp_path / "batch.jsonl")])
    assert len((tmp_path / "batch.jsonl").read_text().splitlines()) == 20, batch.stderr
    # each gateway's publisher has its own session with PostgreSQL
    pubs = stack.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                      "'ddns-gateway-publisher'")
    assert pubs == [["2"]], pubs


def dockerfile_healthchecks():
    """{stage: the exec-form command of its HEALTHCHECK} of docker/Dockerfile."""
    out, stage = {}, None
    with open(os.path.join(ddnsstack.DOCKER, "Dockerfile")) as f:
        text = f.read().replace("\\\n", " ")
    for line in text.splitlines():
        m = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.I)
        if m:
            stage = m.group(1)
        m = re.match(r"HEALTHCHECK\s.*?CMD\s+(\[.*\])\s*$", line)
        if m:
            out[stage] = json.loads(m.group(1))
    return out


def test_dockerfile_health_checks_work(cluster):
    """The images' HEALTHCHECK commands, run against the cluster's gateway
    and Knot (their address and socket replaced): healthy while they run,
    unhealthy for a port where nothing listens."""
    checks = dockerfile_healthchecks()
    gw = [a.replace("/9100", "/%d" % cluster.admin_ports[1]) for a in checks["gateway"]]
    assert gw != checks["gateway"]
    assert subprocess.run(gw, timeout=10).returncode == 0
    dead = [a.replace("/9100", "/%d" % ddnsstack.free_port()) for a in checks["gateway"]]
    assert subprocess.run(dead, timeout=10, stderr=subprocess.DEVNULL).returncode != 0
    sock = os.path.join(cluster.stack.dir, "knot-secondary", "run", "knot.sock")
    knot = [a.replace("/run/knot/knot.sock", sock) for a in checks["knot"]]
    assert knot != checks["knot"]
    assert subprocess.run(knot, timeout=10, capture_output=True).returncode == 0


class Load:
    """One thread per device sending an update with a new address through
    HAProxy, a second after the previous answer; logs (start time, address,
    answer)."""

    def __init__(self, stack, fleet, prefix):
        self.stack, self.fleet, self.prefix = stack, fleet, prefix
        self.stop_flag = threading.Event()
        self.log = [[] for _ in fleet]
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(len(fleet))]

    def _run(self, i):
        n = 0
        while not self.stop_flag.is_set():
            n += 1
            addr = "%s.%d.%d" % (self.prefix, i, n % 250 + 1)
            t0 = time.time()
            p = self.stack.client(self.fleet[i][1], "--ipv4", addr, "--timeout", "5")
            self.log[i].append((t0, addr, p.stdout.strip() or "error: " + p.stderr.strip()[-200:]))
            # the request is signed once connected, and a device's timestamp
            # must grow: a second after the answer (a connection HAProxy
            # retries on the other gateway takes a second longer)
            self.stop_flag.wait(1.02)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.threads:
            t.join()


def test_gateway_killed_loses_nothing_and_haproxy_serves_on(cluster, fleet):
    stack = cluster.stack
    with Load(stack, fleet, "198.18") as load:
        time.sleep(3)
        cluster.kill_gateway(0)
        killed = time.time()
        # the health checks (and the refused connections) take it out
        cluster.wait_servers({"gw1": "DOWN", "gw2": "UP"})
        time.sleep(3)
    for i, dev in enumerate(load.log):
        # every request started after the kill was answered, by gateway 2:
        # HAProxy sends a connection gateway 1 refuses to the other
        after = [(addr, ans) for t0, addr, ans in dev if t0 > killed]
        assert len(after) >= 2, dev
        assert all(ans == "good " + addr for addr, ans in after), (i, after)
        # at most the one request in flight at the kill has no answer
        lost = [ans for _, addr, ans in dev if ans != "good " + addr]
        assert len(lost) <= 1, (i, dev)
    # every device's last good address (or a later one whose answer was
    # lost) is in the database, on the primary and on the secondary, and
    # every change answered good is in its history
    for i, (creds, _) in enumerate(fleet):
        dev = load.log[i]
        recorded = {r[0] for r in stack.psql(
            "SELECT host(new_address) FROM history WHERE device_id = '%s' AND rrtype = 'A'"
            % creds["device_id"])}
        answered = {addr for _, addr, ans in dev if ans == "good " + addr}
        assert answered <= recorded, (i, answered - recorded)
        goods = [k for k, (_, addr, ans) in enumerate(dev) if ans == "good " + addr]
        allowed = {dev[goods[-1]][1]} | {addr for _, addr, _ in dev[goods[-1] + 1:]}
        rows = stack.psql("SELECT host(ipv4) FROM names WHERE device_id = '%s'"
                          % creds["device_id"])
        assert rows and rows[0][0] in allowed, (i, rows, dev[goods[-1]:])
        assert stack.wait_dns(creds["fqdn"], "A", rows[0]) == rows[0]
        assert cluster.wait_secondary(creds["fqdn"], "A", rows[0]) == rows[0]
    assert stack.outbox_empty()
    # the killed gateway comes back into the pool
    cluster.start_gateway(0)
    cluster.wait_servers({"gw1": "UP", "gw2": "UP"})
    time.sleep(1.05)
    creds, path = fleet[0]
    assert stack.client(path, "--ipv4", "198.51.100.99").stdout.strip() == "good 198.51.100.99"
