"""Batched device requests (db/functions/20_update.sql, gw_db batches): requests
that wait while the worker's only database connection is busy go out as one
ddns_apply_batch() statement, and every one of them gets the answer it gets
alone: nochg, good, replay for a second copy, disabled, badauth, a dyndns2
request with and without host names, two requests of one device in order.
A batch whose statement fails runs again request by request, so that only
the failing request fails.

The gateway here has one worker with one database connection. A test holds
a row lock on one device in its own session, sends that device's request
(which then occupies the connection), sends the others (which queue), and
releases the lock: the queued requests leave in one statement, which the
gateway's batch counters show. (With [database] quiet_cache = 0: the
answers kept in memory have tests of their own in test_quiet_poll.py.)"""
import base64
import math
import os
import subprocess
import threading
import time

import pytest

import ddnsstack

WORKERS = 1


def configure(s):
    s.gateway_extra = "workers = %d\n" % WORKERS
    s.pool_size = 1
    # every request goes to the database: no answers kept in memory, whose
    # barrier statements would queue for the one connection too
    s.database_extra = "quiet_cache = 0\n"


@pytest.fixture(scope="module")
def bstack():
    with ddnsstack.started("ddns-batch-", "batch", configure=configure) as s:
        yield s


_numbers = iter(range(1, 10000))


def new_device(stack, tmp_path, addr=None):
    n = next(_numbers)
    creds = stack.provision("02:00:00:b7:%02x:%02x" % (n >> 8, n & 0xff))
    path = stack.write_credentials(creds, str(tmp_path / ("dev-%d.json" % n)))
    if addr is not None:
        assert stack.client(path, "--ipv4", addr).stdout.strip() == "good " + addr
    return creds, path


def counters(stack):
    m = stack.metrics()
    return (m["ddns_db_batches_total"], m["ddns_db_batched_requests_total"],
            m["ddns_db_batch_splits_total"])


def dyndns_raw(creds, query):
    auth = base64.b64encode(("%s:%s" % (creds["device_id"], creds["password"])).encode())
    return ("GET /nic/update?%s HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic %s\r\n"
            "User-Agent: AcmeCam-X9/1.0.0\r\nConnection: close\r\n\r\n"
            % (query, auth.decode())).encode()


def wait_for(cond, what, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def send_all_as_one_batch(stack, blocker_creds, blocker_raw, raws):
    """Sends blocker_raw while blocker's row is locked, then raws (which wait
    for the connection), then releases the lock. Returns the (status, body)
    answers of blocker_raw and of raws, in order."""
    session = subprocess.Popen(["psql", "-X", "-q", "-At", stack.conninfo], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    answers = [None] * (len(raws) + 1)

    def send(i, raw):
        answers[i] = stack.https_request(raw, timeout=60)

    threads = []
    try:
        session.stdin.write("BEGIN;\nSELECT 1 FROM devices WHERE device_id = '%s' FOR UPDATE;\n"
                            % blocker_creds["device_id"])
        session.stdin.flush()
        assert session.stdout.readline().strip() == "1"
        threads.append(threading.Thread(target=send, args=(0, blocker_raw)))
        threads[0].start()
        wait_for(lambda: stack.psql("SELECT count(*) FROM pg_stat_activity WHERE "
                                    "application_name = 'ddns-gateway' AND wait_event_type = 'Lock'")
                 == [["1"]], "the blocked request")
        for i, raw in enumerate(raws, 1):
            t = threading.Thread(target=send, args=(i, raw))
            t.start()
            threads.append(t)
            # one at a time: the batch holds them in this order
            wait_for(lambda: stack.metrics()["ddns_db_pool_queued"] == i,
                     "%d queued requests" % i)
        session.stdin.write("COMMIT;\n")
        session.stdin.flush()
        for t in threads:
            t.join(60)
    finally:
        session.communicate("", timeout=20)
    return answers


def names_ipv4(stack, creds):
    return [r[0] for r in stack.psql("SELECT host(ipv4) FROM names WHERE device_id = '%s' "
                                     "ORDER BY name_id" % creds["device_id"])]


def test_waiting_requests_leave_in_one_statement_with_their_own_answers(bstack, tmp_path):
    s = bstack
    blocker, bpath = new_device(s, tmp_path, "192.0.2.1")
    same, same_path = new_device(s, tmp_path, "192.0.2.10")
    moving, moving_path = new_device(s, tmp_path, "192.0.2.20")
    copied, copied_path = new_device(s, tmp_path, "192.0.2.30")
    twice, twice_path = new_device(s, tmp_path, "192.0.2.40")
    revoked, revoked_path = new_device(s, tmp_path, "192.0.2.50")
    dyn_all, _ = new_device(s, tmp_path, "192.0.2.60")
    dyn_host, _ = new_device(s, tmp_path, "192.0.2.70")
    dyn_named, _ = new_device(s, tmp_path, "192.0.2.90")
    dyn_mixed, _ = new_device(s, tmp_path, "192.0.2.94")
    dual, dual_path = new_device(s, tmp_path)
    assert s.client(dual_path, "--ipv4", "192.0.2.80", "--ipv6", "2001:db8::80").returncode == 0
    # credentials that verify (the real master key) of a device never registered
    out = ddnsstack.run([os.path.join(ddnsstack.BIN, "ddns-provision"), "show", "--mac",
                         "02:00:00:b7:ff:01", "--key-dir", s.key_dir])
    unknown_path = str(tmp_path / "unknown.json")
    with open(unknown_path, "w") as f:
        f.write(out.stdout)
    s.psql("UPDATE devices SET status = 'revoked' WHERE device_id = '%s'" % revoked["device_id"])
    assert s.outbox_empty(20)
    time.sleep(1.05)    # the next signed timestamps are past those above

    def signed(path, *args):
        return s.signed_request(path, tmp_path, *args)

    copy = signed(copied_path, "--ipv4", "192.0.2.31")
    first = signed(twice_path, "--ipv4", "192.0.2.41")
    time.sleep(1.05)    # a later timestamp for the device's second request
    second = signed(twice_path, "--ipv4", "192.0.2.42")
    want = [
        (signed(same_path, "--ipv4", "192.0.2.10"), (200, b"nochg 192.0.2.10\n")),
        (signed(moving_path, "--ipv4", "192.0.2.21"), (200, b"good 192.0.2.21\n")),
        (copy, None),
        (copy, None),
        (first, (200, b"good 192.0.2.41\n")),
        (second, (200, b"good 192.0.2.42\n")),
        (signed(revoked_path, "--ipv4", "192.0.2.51"), (403, b"disabled\n")),
        (signed(unknown_path, "--ipv4", "192.0.2.99"), (401, b"badauth\n")),
        (dyndns_raw(dyn_all, "myip=192.0.2.61"), (200, b"good 192.0.2.61\n")),
        (dyndns_raw(dyn_host, "hostname=%s&myip=192.0.2.70" % dyn_host["fqdn"]),
         (200, b"nochg 192.0.2.70\n")),
        (dyndns_raw(dyn_named, "hostname=%s&myip=192.0.2.91" % dyn_named["fqdn"]),
         (200, b"good 192.0.2.91\n")),
        # one own name and another device's: that one is refused, alone
        (dyndns_raw(dyn_mixed, "hostname=%s,%s&myip=192.0.2.95"
                    % (dyn_mixed["fqdn"], same["fqdn"])),
         (200, b"good 192.0.2.95\nnohost\n")),
        (signed(dual_path, "--ipv4", "192.0.2.80", "--ipv6", "2001:db8::81"),
         (200, b"good 192.0.2.80 2001:db8::81\n")),
    ]
    before = counters(s)
    answers = send_all_as_one_batch(s, blocker, signed(bpath, "--ipv4", "192.0.2.1"),
                                    [raw for raw, _ in want])
    after = counters(s)
    assert answers[0] == (200, b"nochg 192.0.2.1\n")
    got = answers[1:]
    for i, (_, expected) in enumerate(want):
        if expected is not None:
            assert got[i] == expected, (i, got[i])
    # the two copies of one request: exactly one accepted
    assert sorted([got[2], got[3]]) == [(200, b"good 192.0.2.31\n"), (409, b"replay\n")]
    # the blocked request alone, then every other one in one statement
    assert (after[0] - before[0], after[1] - before[1], after[2] - before[2]) == \
        (2, len(want) + 1, 0)

    # what the database and DNS hold is what the answers said
    assert names_ipv4(s, moving) == ["192.0.2.21"]
    assert names_ipv4(s, copied) == ["192.0.2.31"]
    assert names_ipv4(s, twice) == ["192.0.2.42"]
    assert names_ipv4(s, revoked) == ["192.0.2.50"]
    assert names_ipv4(s, dyn_all) == ["192.0.2.61"]
    assert names_ipv4(s, dyn_named) == ["192.0.2.91"]
    assert names_ipv4(s, dyn_mixed) == ["192.0.2.95"]
    assert names_ipv4(s, same) == ["192.0.2.10"]
    assert s.psql("SELECT rrtype, host(old_address), host(new_address) FROM history "
                  "WHERE device_id = '%s' ORDER BY id" % twice["device_id"]) == \
        [["A", "", "192.0.2.40"], ["A", "192.0.2.40", "192.0.2.41"],
         ["A", "192.0.2.41", "192.0.2.42"]]
    assert s.psql("SELECT rrtype, host(old_address), host(new_address) FROM history "
                  "WHERE device_id = '%s' ORDER BY id" % dual["device_id"])[-1] == \
        ["AAAA", "2001:db8::80", "2001:db8::81"]
    assert s.psql("SELECT last_result, fail_count, user_agent IS NOT NULL FROM devices "
                  "WHERE device_id IN ('%s', '%s') ORDER BY device_id = '%s'"
                  % (same["device_id"], moving["device_id"], moving["device_id"])) == \
        [["nochg", "0", "t"], ["good", "0", "t"]]
    for creds, rr, addr in ((moving, "A", "192.0.2.21"), (copied, "A", "192.0.2.31"),
                            (twice, "A", "192.0.2.42"), (dyn_all, "A", "192.0.2.61"),
                            (dyn_named, "A", "192.0.2.91"), (dyn_mixed, "A", "192.0.2.95"),
                            (dual, "AAAA", "2001:db8::81"), (revoked, "A", "192.0.2.50")):
        assert s.wait_dns(creds["fqdn"], rr, [addr]) == [addr], creds["fqdn"]


def test_a_failing_batch_runs_again_request_by_request(bstack, tmp_path):
    s = bstack
    blocker, bpath = new_device(s, tmp_path, "192.0.2.101")
    devs = [new_device(s, tmp_path, "192.0.2.%d" % (110 + i)) for i in range(4)]
    poisoned = devs[2][0]["device_id"]
    s.psql("CREATE FUNCTION batch_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ "
           "BEGIN RAISE EXCEPTION 'refused by the test'; END $$")
    s.psql("CREATE TRIGGER batch_test_refuse BEFORE UPDATE ON devices FOR EACH ROW "
           "WHEN (NEW.device_id = '%s') EXECUTE FUNCTION batch_test_refuse()" % poisoned)
    try:
        time.sleep(1.05)
        raws = [s.signed_request(p, tmp_path, "--ipv4", "192.0.2.%d" % (120 + i))
                for i, (_, p) in enumerate(devs)]
        before = counters(s)
        answers = send_all_as_one_batch(s, blocker, s.signed_request(bpath, tmp_path),
                                        raws)
        after = counters(s)
    finally:
        s.psql("DROP TRIGGER batch_test_refuse ON devices")
        s.psql("DROP FUNCTION batch_test_refuse()")
    assert answers[0][0] == 200
    for i, (creds, _) in enumerate(devs):
        if creds["device_id"] == poisoned:
            assert answers[i + 1] == (503, b"911\n")
            assert names_ipv4(s, creds) == ["192.0.2.%d" % (110 + i)]
        else:
            assert answers[i + 1] == (200, ("good 192.0.2.%d\n" % (120 + i)).encode())
            assert names_ipv4(s, creds) == ["192.0.2.%d" % (120 + i)]
    # the blocked one, the batch of four that failed, then four alone
    assert (after[0] - before[0], after[1] - before[1], after[2] - before[2]) == (6, 9, 1)
    assert "batch failed" in s.gateway_log()


def test_batch_commit_mode(bstack, tmp_path):
    """A batch that changes nothing commits lazily; one change makes the
    whole batch durable."""
    s = bstack
    a, _ = new_device(s, tmp_path, "192.0.2.130")
    b, _ = new_device(s, tmp_path, "192.0.2.131")
    ts = int(time.time()) + 10

    def batch(addr_b):
        return s.psql(
            "SELECT string_agg(result, ',' ORDER BY item) FROM ddns_apply_batch("
            "ARRAY['{a}', '{b}'], ARRAY['{ka}', '{kb}'], ARRAY[{ga}, {gb}], "
            "ARRAY[{ts}, {ts}]::bigint[], "
            "ARRAY['192.0.2.130', '{ab}']::inet[], ARRAY[NULL, NULL]::inet[], "
            "ARRAY['127.0.0.1', '127.0.0.1']::inet[], ARRAY[NULL, NULL]::text[], "
            "ARRAY[false, false], ARRAY[0, 0], ARRAY['t/1', 't/1'], ARRAY[NULL, NULL]::text[]); "
            "SHOW synchronous_commit".format(a=a["device_id"], b=b["device_id"],
                                             ka=ddnsstack.key_id(a), kb=ddnsstack.key_id(b),
                                             ga=ddnsstack.generation(a),
                                             gb=ddnsstack.generation(b), ts=ts, ab=addr_b))

    assert batch("192.0.2.131") == [["nochg,nochg"], ["off"]]
    ts += 1
    assert batch("192.0.2.132") == [["nochg,good"], ["on"]]


def test_a_batch_answers_and_writes_exactly_what_single_requests_do(bstack):
    """ddns_apply_batch() against ddns_apply_request() on twin fleets: the
    same requests (nochg, changes of either family or both, named hosts, a
    name of another device, offline, replays, a device twice, a revoked
    device, a wrong key id, a wrong generation, the rate limit) give the same answer rows and
    leave the same devices, names, history and outbox rows. The twins live
    in a zone no gateway publishes, so the outbox rows stay to be compared."""
    import random
    s = bstack
    rnd = random.Random(20261121)
    n = 60
    zone = "twin.example"

    def dev(t, i):
        return "%s%010x" % (t, i)

    def fq(t, i, j):
        return "%s-%d-%d.%s" % (t, i, j, zone)

    kinds = [rnd.choice(["nochg", "v4", "v6", "both", "named", "foreign", "offline", "replay",
                         "twice", "kid", "limit", "gen"]) for i in range(n)]
    rows = []
    for t in ("aa", "bb"):
        for i in range(n):
            status = "revoked" if i % 17 == 5 else "active"
            recent = "now() - interval '10 s'" if i % 11 == 3 or kinds[i] == "limit" else "NULL"
            rows.append("INSERT INTO devices (device_id, kid, generation, status, last_ts, "
                        "last_change) VALUES ('%s', 'k1', %d, '%s', 1000, %s);"
                        % (dev(t, i), i % 3, status, recent))
            for j in range(1 + i % 2):
                rows.append("INSERT INTO names (device_id, label, zone, ipv4, ipv6) VALUES "
                            "('%s', '%s-%d-%d', '%s', '192.0.2.%d', %s);"
                            % (dev(t, i), t, i, j, zone, i % 200,
                               "'2001:db8::%x'" % i if i % 3 == 0 else "NULL"))
    s.psql("BEGIN; " + " ".join(rows) + " COMMIT;")

    reqs = []       # (i, ts, ipv4, ipv6, fqdn indexes or None, offline, kid, interval, gen)
    for i in range(n):
        kind = kinds[i]
        ts, kid, interval, names, offline, gen = 2000 + i, "k1", 0, None, False, i % 3
        v4, v6 = "192.0.2.%d" % (i % 200), None
        if kind == "v4":
            v4 = "198.51.100.%d" % i
        elif kind == "v6":
            v4, v6 = None, "2001:db8:1::%x" % i
        elif kind == "both":
            v4, v6 = "198.51.100.%d" % i, "2001:db8:2::%x" % i
        elif kind == "named":
            names, v4 = [1 + i % 2 - 1], "198.51.100.%d" % i
        elif kind == "foreign":
            names, v4 = [0, ("other", (i + 1) % n, 0), ("missing",)], "198.51.100.%d" % i
        elif kind == "offline":
            offline = True
        elif kind == "replay":
            ts = 999
        elif kind == "kid":
            kid = "k9"
        elif kind == "limit":
            interval, v4 = 3600, "198.51.100.%d" % i
        elif kind == "gen":
            gen = (i + 1) % 3       # another generation's secret
        reqs.append((i, ts, v4, v6, names, offline, kid, interval, gen))
        if kind == "twice":
            reqs.append((i, ts, "203.0.113.%d" % i, None, None, False, "k1", 0, i % 3))  # a replay
            reqs.append((i, ts + 5, "203.0.113.%d" % i, None, None, False, "k1", 0, i % 3))
    rnd.shuffle(reqs)

    def fqdn_list(t, r):
        i, names = r[0], r[4]
        if names is None:
            return None
        out = []
        for x in names:
            if not isinstance(x, tuple):
                out.append(fq(t, i, x))
            elif x[0] == "other":
                out.append(fq(t, x[1], x[2]))
            else:
                out.append("missing-%d.%s" % (i, zone))
        return "{%s}" % ",".join(out)

    def lit(v):
        return "NULL" if v is None else "'%s'" % v

    def args(t, r):
        i, ts, v4, v6, _, offline, kid, interval, gen = r
        return [lit(dev(t, i)), lit(kid), str(gen), str(ts), lit(v4), lit(v6), "'127.0.0.1'",
                lit(fqdn_list(t, r)), "true" if offline else "false", str(interval),
                "'twin/1.0'", "'1.0'"]

    # twin aa: one batch
    started = time.monotonic()
    cols = list(zip(*[args("aa", r) for r in reqs]))
    types = ["text", "text", "integer", "bigint", "inet", "inet", "inet", "text", "boolean",
             "integer", "text", "text"]
    batch = s.psql("SELECT item, ord, result, retry_after FROM ddns_apply_batch(%s) "
                   "ORDER BY item, ord NULLS FIRST"
                   % ", ".join("ARRAY[%s]::%s[]" % (", ".join(c), ty)
                               for c, ty in zip(cols, types)))
    got_a = {}
    for item, ord_, result, retry in batch:
        got_a.setdefault(int(item), []).append((ord_, result, retry))
    # twin bb: one request at a time, each in its own transaction
    got_b, gap = {}, {}
    for k, r in enumerate(reqs, 1):
        got_b[k] = [tuple(x) for x in s.psql(
            "SELECT ord, result, retry_after FROM ddns_apply_request(%s)" % ", ".join(args("bb", r)))]
        # the most seconds that can lie between the batch's now() and this request's
        gap[k] = math.ceil(time.monotonic() - started) + 1

    def close(a, b, gap):
        # retry_after counts down from now(): the later single request may see a
        # smaller figure, by at most the time between the two calls, never a larger one
        if a[:2] != b[:2] or (a[2] == "") != (b[2] == ""):
            return False
        return a[2] == b[2] or 0 <= int(a[2]) - int(b[2]) <= gap

    for k in range(1, len(reqs) + 1):
        assert len(got_a[k]) == len(got_b[k]) and \
            all(close(a, b, gap[k]) for a, b in zip(got_a[k], got_b[k])), \
            (reqs[k - 1], got_a[k], got_b[k], gap[k])
    answers = {x[1] for v in got_a.values() for x in v}
    assert {"good", "nochg", "replay", "disabled", "unknown", "ratelimit", "nohost",
            "foreign"} <= answers, answers

    def state(t):
        other = "bb" if t == "aa" else "aa"
        norm = lambda v: v.replace(t + "-", "X-").replace(t, "XX").replace(other + "-", "Y-")
        q = [
            "SELECT right(device_id, 10), status, last_ts, last_change IS NULL, last_result, "
            "fail_count, user_agent, firmware, host(last_source) FROM devices "
            "WHERE device_id LIKE '%s%%' ORDER BY 1" % t,
            "SELECT label, host(ipv4), host(ipv6) FROM names WHERE zone = '%s' AND label LIKE "
            "'%s-%%' ORDER BY name_id" % (zone, t),
            "SELECT right(device_id, 10), fqdn, rrtype, host(old_address), host(new_address) "
            "FROM history WHERE device_id LIKE '%s%%' ORDER BY device_id, id" % t,
            "SELECT fqdn, rrtype, host(address), ttl FROM dns_outbox WHERE zone = '%s' AND "
            "fqdn LIKE '%s-%%' ORDER BY fqdn, id" % (zone, t),
        ]
        return [[[norm(c) for c in row] for row in s.psql(x)] for x in q]

    a, b = state("aa"), state("bb")
    for what, x, y in zip(("devices", "names", "history", "outbox"), a, b):
        assert x == y, what
    assert len(a[2]) > 10 and len(a[3]) > 10
    s.psql("DELETE FROM dns_outbox WHERE zone = '%s'" % zone)
