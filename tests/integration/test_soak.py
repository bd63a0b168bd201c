"""Soak: many devices update through two gateways on one database while
PostgreSQL, Knot DNS and one of the gateways are each restarted at random
moments. At the end every `good` answer is in the history table, DNS
serves every device's recorded address, the outbox is empty, no
connection or request is left open on either gateway, no database session
is stuck in a transaction, and the gateway that was never restarted still
runs (its resident memory before and after is printed).

The short form (DDNS_SOAK_SECONDS, 20 s by default) is part of make test;
`make soak` runs the long one (600 s, more devices). The random schedule
is printed with its seed (DDNS_SOAK_SEED repeats a run)."""
import os
import random
import signal
import ssl
import threading
import time

import attack
import ddnsstack

SECONDS = float(os.environ.get("DDNS_SOAK_SECONDS", "20"))
DEVICES = int(os.environ.get("DDNS_SOAK_DEVICES", "40"))
THREADS = int(os.environ.get("DDNS_SOAK_THREADS", "6"))
SEED = int(os.environ.get("DDNS_SOAK_SEED", str(int(time.time()))))
PERMANENT = {"badauth", "disabled", "badrequest", "notfound", "badagent", "badtime", "replay",
             "ratelimit"}


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


metrics = ddnsstack.admin_metrics    # of a gateway's admin listener, by port


class Soak:
    def __init__(self, stack, devices, port_b, rng):
        self.stack, self.devices, self.rng = stack, devices, rng
        self.ports = [stack.https_port, port_b]
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.log = {d["device_id"]: [] for d in devices}    # (addr, answer)
        self.last_ts = {d["device_id"]: 0 for d in devices}
        self.counts = {}

    def _send(self, dev, n):
        addr = "10.%d.%d.%d" % (n % 200 + 1, self.devices.index(dev) % 250, (n // 200) % 250 + 1)
        did = dev["device_id"]
        ts = max(int(time.time()), self.last_ts[did] + 1)
        self.last_ts[did] = ts
        raw = attack.signed_update(dev, ("ipv4=" + addr).encode(), ts=ts)
        port = self.ports[n % 2]
        try:
            status, body = self.stack.https_request(raw, port=port, timeout=8)
            answer = body.decode().strip()
        except (OSError, ssl.SSLError) as e:
            answer = "error %s" % type(e).__name__
        with self.lock:
            self.log[did].append((addr, answer))
            key = answer.split(" ")[0]
            self.counts[key] = self.counts.get(key, 0) + 1

    def worker(self, mine):
        n = 0
        while not self.stop.is_set():
            for dev in mine:
                if self.stop.is_set():
                    break
                n += 1
                self._send(dev, n)
            self.stop.wait(0.2)


def restart_postgres(stack, rng):
    stack.stop_postgres()
    time.sleep(rng.uniform(0.5, 3))
    stack.start_postgres()


def restart_knot(stack, rng):
    assert stack.stop_process("knotd") is not None
    time.sleep(rng.uniform(0.5, 3))
    stack.start_knot()


def test_soak_two_gateways_with_restarts(tmp_path):
    rng = random.Random(SEED)
    port_b = ddnsstack.free_port()
    admin_b = ddnsstack.free_port()

    with ddnsstack.started("ddns-soak-", "soak") as stack:
        devices = [stack.provision("0a:%02x:00:50:%02x:%02x" % (os.getpid() & 0xff, i >> 8,
                                                                  i & 0xff))
                   for i in range(DEVICES)]
        conf_b = os.path.join(stack.dir, "gateway-b.conf")
        log_b = os.path.join(stack.dir, "gateway-b.log")
        with open(conf_b, "w") as f:
            f.write(stack.gateway_config_text(
                port_b, extra="\n[admin]\nlisten = 127.0.0.1:%d\n" % admin_b))

        def start_b():
            stack._launch_gateway("gateway-b", conf_b, log_b, port_b)

        def restart_gateway_b(_stack, r):
            rc = stack.stop_process("gateway-b", timeout=30)
            assert rc == 0, "gateway B exited with %r" % rc
            time.sleep(r.uniform(0.2, 2))
            start_b()

        start_b()
        try:
            run_and_check(stack, devices, port_b, admin_b, log_b, rng, restart_gateway_b)
        finally:
            stack.stop_process("gateway-b")


def run_and_check(stack, devices, port_b, admin_b, log_b, rng, restart_gateway_b):
    """Runs the load and the faults, then checks the end state."""
    soak = Soak(stack, devices, port_b, rng)
    groups = [devices[i::THREADS] for i in range(THREADS)]
    threads = [threading.Thread(target=soak.worker, args=(g,)) for g in groups]
    pid_a = stack.procs["gateway"].pid
    for t in threads:
        t.start()
    time.sleep(min(3, SECONDS / 10))
    rss_before = rss_kb(pid_a)
    # every fault at least once, each in its own slot of the run, in a
    # random order at a random moment; the long run repeats the rounds
    faults = [("PostgreSQL", restart_postgres), ("Knot DNS", restart_knot),
              ("gateway B", restart_gateway_b)]
    start = time.time()
    end = start + SECONDS
    rounds = max(1, int(SECONDS // 90))
    schedule = []
    slot = (SECONDS * 0.8) / (rounds * len(faults))
    for r in range(rounds):
        order = faults[:]
        rng.shuffle(order)
        for k, f in enumerate(order):
            at = (r * len(faults) + k) * slot + rng.uniform(0.1, 0.6) * slot
            schedule.append((at, f))
    print("soak: seed %d, %d devices, %d s, faults at %s" % (
        SEED, DEVICES, SECONDS, ", ".join("%.1f s %s" % (a, f[0]) for a, f in schedule)))
    errors = []
    try:
        for at, (name, fn) in schedule:
            time.sleep(max(0.0, start + at - time.time()))
            t0 = time.time()
            try:
                fn(stack, rng)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append("%s: %r" % (name, e))
            print("soak: %.1f s: %s restarted (%.1f s)" % (t0 - start, name, time.time() - t0))
        time.sleep(max(0.0, end - time.time()))
    finally:
        soak.stop.set()
        for t in threads:
            t.join(timeout=60)
    assert errors == [], errors
    rss_after = rss_kb(pid_a)
    print("soak: answers %s" % sorted(soak.counts.items()))
    print("soak: gateway A resident memory %d kB after warm-up, %d kB at the end"
          % (rss_before, rss_after))
    print("soak: gateway B resident memory %d kB at the end (restarted during the run)"
          % rss_kb(stack.procs["gateway-b"].pid))

    answers = [a for log in soak.log.values() for _, a in log]
    goods = sum(a.startswith("good ") for a in answers)
    assert goods > DEVICES, soak.counts
    wrong = [a for a in answers if a.split(" ")[0] in PERMANENT or
             not (a.startswith("good ") or a == "911" or a.startswith("error "))]
    assert wrong == [], wrong[:20]
    assert stack.outbox_empty(timeout=60), stack.psql("SELECT * FROM dns_outbox LIMIT 5")

    # every good answer is in the history; DNS serves what the database holds
    hist = {}
    for did, addr in stack.psql("SELECT device_id, host(new_address) FROM history "
                                "WHERE rrtype = 'A'"):
        hist.setdefault(did, set()).add(addr)
    names = {did: addr for did, addr in stack.psql("SELECT device_id, host(ipv4) FROM names")}
    for dev in devices:
        did = dev["device_id"]
        log = soak.log[did]
        good_addrs = [addr for addr, a in log if a == "good " + addr]
        missing = [a for a in good_addrs if a not in hist.get(did, set())]
        assert missing == [], (did, missing)
        if good_addrs:
            last = max(k for k, (addr, a) in enumerate(log) if a == "good " + addr)
            allowed = {log[last][0]} | {addr for addr, _ in log[last + 1:]}
            assert names[did] in allowed, (did, names[did], log[last:])
        assert stack.dig(dev["fqdn"], "A") == ([names[did]] if names.get(did) else []), did

    # nothing stuck: no connection or request open on either gateway, no
    # database session left inside a transaction
    for name, port in (("A", stack.admin_port), ("B", admin_b)):
        deadline = time.time() + 20
        while True:
            m = metrics(port)
            state = (m["ddns_connections_open"], m["ddns_connections_state"],
                     m["ddns_requests_in_flight"])
            if state == (0, 0, 0) or time.time() > deadline:
                break
            time.sleep(0.2)
        assert state == (0, 0, 0), "gateway %s: %r" % (name, state)
    stuck = stack.psql("SELECT pid, state, query FROM pg_stat_activity WHERE datname = "
                       "'ddns' AND pid <> pg_backend_pid() AND (state LIKE 'idle in "
                       "transaction%' OR (state = 'active' AND now() - query_start > "
                       "interval '5 seconds'))")
    assert stuck == [], stuck
    assert stack.procs["gateway"].poll() is None and stack.procs["gateway"].pid == pid_a
    rc = stack.stop_process("gateway-b", timeout=30)
    log = open(log_b, errors="replace").read()
    assert rc == 0, log[-3000:]
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        assert marker not in log, log[-3000:]
