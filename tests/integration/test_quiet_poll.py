"""A poll that changes nothing costs the database nothing (docs/PROTOCOL.md
section 5.1): a signed request whose addresses the names already hold is
answered nochg without a write, and every case of the replay argument of
that section has its test here.

"Without a write" is read from PostgreSQL itself: the xmin of the device's
row and of its names' rows (the transaction that wrote each row version)
does not move, and no history row appears. Each test uses new
devices on a stack of its own whose gateway writes "last seen" only once an
hour ([database] seen_interval = 3600, so that nothing else writes the rows
while a test looks) and requires a named address from the model
AcmeCam-P1 ([firmware] address_required_models)."""
import itertools
import os
import re
import time

import pytest

import attack
import ddnsstack

_macs = itertools.count(1)
WINDOW = 300   # the harness's [gateway] clock_skew


@pytest.fixture(scope="module")
def qstack():
    def configure(s):
        s.config_extra = ("[database]\nseen_interval = 3600\n"
                          "[firmware]\naddress_required_models = AcmeCam-P1\n")
    with ddnsstack.started("ddns-quiet-", "quiet poll stack", configure=configure) as s:
        yield s


def new_device(stack):
    n = next(_macs)
    mac = "0a:%02x:00:c2:%02x:%02x" % (os.getpid() & 0xff, n >> 8, n & 0xff)
    return stack.provision(mac)


_signed = {}


def signed(creds, body, ts=None, **kw):
    """attack.signed_update with this device's own increasing timestamps,
    never more than 1 s ahead of the clock (a poll signed further ahead is
    recorded, section 5.1): a device's second request within a second waits
    for the clock."""
    dev = creds["device_id"]
    if ts is None:
        ts = max(int(time.time()), _signed.get(dev, 0) + 1)
        while ts > int(time.time()) + 1:
            time.sleep(0.05)
    _signed[dev] = max(_signed.get(dev, 0), ts)
    return attack.signed_update(creds, body, ts=ts, **kw)


def versions(stack, creds):
    """The row versions of the device and its names, and its history count
    (every change adds history and outbox rows in one statement): equal
    before and after only if nothing was written."""
    dev = creds["device_id"]
    return (stack.psql("SELECT xmin::text, last_ts FROM devices WHERE device_id = '%s'" % dev)[0],
            stack.psql("SELECT string_agg(xmin::text, ',' ORDER BY name_id) FROM names "
                       "WHERE device_id = '%s'" % dev)[0],
            stack.psql("SELECT count(*) FROM history WHERE device_id = '%s'" % dev)[0])


def names_hold(stack, creds):
    return stack.psql("SELECT coalesce(host(ipv4), '-'), coalesce(host(ipv6), '-') FROM names "
                      "WHERE device_id = '%s'" % creds["device_id"])[0]


def send(stack, raw, port=None, source=None):
    status, _, body = stack.https_exchange(raw, port=port, source=source)
    return status, body


def settled(stack, creds, addr, port=None, ts=None):
    """The device's names hold addr and its last answer is nochg: the next
    nochg poll is one that writes nothing. ts: the first of the two
    timestamps (default: now)."""
    body = ("ipv4=%s" % addr).encode()
    first = send(stack, signed(creds, body, ts=ts), port)
    assert first in ((200, b"good %s\n" % addr.encode()), (200, b"nochg %s\n" % addr.encode()))
    assert send(stack, signed(creds, body, ts=ts and ts + 1), port) == \
        (200, b"nochg %s\n" % addr.encode())


def test_a_poll_that_changes_nothing_writes_nothing(qstack):
    creds = new_device(qstack)
    settled(qstack, creds, "192.0.2.71")
    before = versions(qstack, creds)
    unwritten = qstack.metrics().get("ddns_nochg_unwritten_total", 0)
    seen_before = qstack.psql("SELECT extract(epoch FROM last_seen) FROM devices "
                              "WHERE device_id = '%s'" % creds["device_id"])[0][0]
    t0 = time.time()
    for _ in range(3):
        assert send(qstack, signed(creds, b"ipv4=192.0.2.71")) == \
            (200, b"nochg 192.0.2.71\n")
    assert versions(qstack, creds) == before
    m = qstack.metrics()
    assert m["ddns_nochg_unwritten_total"] == unwritten + 3
    # this gateway writes last seen once an hour: the device waits for it
    assert m["ddns_seen_pending"] >= 1
    # what the write recorded follows within [database] seen_interval
    with qstack.extra_gateway("quiet-seen", extra="[database]\nseen_interval = 1\n") as port:
        assert send(qstack, signed(creds, b"ipv4=192.0.2.71"), port,
                    source="127.0.0.5") == (200, b"nochg 192.0.2.71\n")
        deadline = time.time() + 10
        while True:
            row = qstack.psql("SELECT extract(epoch FROM last_seen), host(last_source), "
                              "seen_day = current_date FROM devices "
                              "WHERE device_id = '%s'" % creds["device_id"])[0]
            if float(row[0]) > float(seen_before) or time.time() > deadline:
                break
            time.sleep(0.2)
    assert float(row[0]) >= t0 - 1 and float(row[0]) > float(seen_before), row
    assert row[1:] == ["127.0.0.5", "t"]
    # only last_seen moved: the replay marker and the names did not
    after = versions(qstack, creds)
    assert after[0][1] == before[0][1] and after[1:] == before[1:]


def test_the_first_poll_after_a_change_is_recorded(qstack):
    """last_result says nochg again after a change: that one poll writes."""
    creds = new_device(qstack)
    settled(qstack, creds, "192.0.2.72")
    assert send(qstack, signed(creds, b"ipv4=192.0.2.73")) == \
        (200, b"good 192.0.2.73\n")
    before = versions(qstack, creds)
    assert send(qstack, signed(creds, b"ipv4=192.0.2.73"))[0] == 200
    assert versions(qstack, creds)[0] != before[0]
    assert qstack.psql("SELECT last_result FROM devices WHERE device_id = '%s'"
                       % creds["device_id"])[0] == ["nochg"]


def test_copy_before_and_after_a_change(qstack):
    """Case 1, 2 and 4: a copy of an unwritten nochg changes nothing while
    the names hold its address (the gateway that answered it remembers its
    timestamp and says replay; another gateway says nochg again, writing
    nothing), and is a replay everywhere once a newer change is
    recorded."""
    creds = new_device(qstack)
    settled(qstack, creds, "192.0.2.74")
    poll = signed(creds, b"ipv4=192.0.2.74")
    assert send(qstack, poll) == (200, b"nochg 192.0.2.74\n")
    before = versions(qstack, creds)
    with qstack.extra_gateway("quiet-copy") as other:
        assert send(qstack, poll) == (409, b"replay\n")
        assert send(qstack, poll, other) == (200, b"nochg 192.0.2.74\n")
        assert versions(qstack, creds) == before
        assert send(qstack, signed(creds, b"ipv4=192.0.2.75")) == \
            (200, b"good 192.0.2.75\n")
        for port in (None, other):
            assert send(qstack, poll, port) == (409, b"replay\n")
    assert names_hold(qstack, creds) == ["192.0.2.75", "-"]
    qstack.wait_dns(creds["fqdn"], "A", "192.0.2.75")


def test_flapping_across_two_gateways(qstack):
    """Case 3 and 4: X on one gateway, Y on another, X again; every earlier
    request copied to either gateway is a replay or a harmless nochg."""
    creds = new_device(qstack)
    with qstack.extra_gateway("quiet-b") as port_b:
        ports = [None, port_b]
        sent = []
        for i, addr in enumerate(["192.0.2.76", "192.0.2.77", "192.0.2.76"]):
            raw = signed(creds, ("ipv4=%s" % addr).encode())
            assert send(qstack, raw, ports[i % 2]) == (200, b"good %s\n" % addr.encode())
            sent.append(raw)
        # the names hold X; a nochg for X on gateway B, recorded, then one not
        for _ in range(2):
            raw = signed(creds, b"ipv4=192.0.2.76")
            assert send(qstack, raw, port_b) == (200, b"nochg 192.0.2.76\n")
        before = versions(qstack, creds)
        for port in ports:
            for old in sent:
                assert send(qstack, old, port) == (409, b"replay\n")
        # the last nochg: B remembers it, the first gateway answers nochg
        assert send(qstack, raw, port_b) == (409, b"replay\n")
        assert send(qstack, raw) == (200, b"nochg 192.0.2.76\n")
        assert versions(qstack, creds) == before
        assert names_hold(qstack, creds) == ["192.0.2.76", "-"]
        qstack.wait_dns(creds["fqdn"], "A", "192.0.2.76")


def test_clock_window_edges(qstack):
    """Case 6: a nochg signed near the window's lower edge writes nothing;
    one signed ahead of the server's clock is recorded (its timestamp
    written), so a copy of either is a replay after a change with a newer
    timestamp; outside the window it is badtime."""
    creds = new_device(qstack)
    now = int(time.time())
    settled(qstack, creds, "192.0.2.78", ts=now - WINDOW + 10)
    behind = signed(creds, b"ipv4=192.0.2.78", ts=now - WINDOW + 20)
    ahead = signed(creds, b"ipv4=192.0.2.78", ts=now + WINDOW - 20)
    before = versions(qstack, creds)
    # the older one first: the marker (not written) is still below both
    assert send(qstack, behind) == (200, b"nochg 192.0.2.78\n")
    assert versions(qstack, creds) == before
    assert send(qstack, ahead) == (200, b"nochg 192.0.2.78\n")
    assert versions(qstack, creds)[0][1] == str(now + WINDOW - 20)
    change = signed(creds, b"ipv4=192.0.2.79", ts=now + WINDOW - 10)
    assert send(qstack, change) == (200, b"good 192.0.2.79\n")
    with qstack.extra_gateway("quiet-edges") as other:
        for port in (None, other):
            assert send(qstack, ahead, port) == (409, b"replay\n")
            assert send(qstack, behind, port) == (409, b"replay\n")
    outside = signed(creds, b"ipv4=192.0.2.78", ts=now + WINDOW + 60)
    status, body = send(qstack, outside)
    assert status == 401 and body.startswith(b"badtime ")
    assert names_hold(qstack, creds) == ["192.0.2.79", "-"]


def test_peer_is_the_connection_or_moved(qstack):
    """Case 5: a device behind NAT signs the address it was told; from
    another address the request changes nothing and tells it where it comes
    from; signed again with that address, its name follows."""
    creds = new_device(qstack)
    assert send(qstack, signed(creds, b"peer=127.0.0.1")) == \
        (200, b"good 127.0.0.1\n")
    assert send(qstack, signed(creds, b"peer=127.0.0.1")) == \
        (200, b"nochg 127.0.0.1\n")
    before = versions(qstack, creds)
    assert send(qstack, signed(creds, b"peer=127.0.0.1")) == \
        (200, b"nochg 127.0.0.1\n")
    assert versions(qstack, creds) == before
    # the public address moved to 127.0.0.2; the device still signs the old
    moved = signed(creds, b"peer=127.0.0.1")
    assert send(qstack, moved, source="127.0.0.2") == (409, b"moved 127.0.0.2\n")
    assert versions(qstack, creds) == before
    follow = signed(creds, b"peer=127.0.0.2")
    assert send(qstack, follow, source="127.0.0.2") == (200, b"good 127.0.0.2\n")
    qstack.wait_dns(creds["fqdn"], "A", "127.0.0.2")
    # a copy sent from elsewhere changes nothing: one sent after the
    # device's own is a replay, one that arrives first is "moved"
    after = versions(qstack, creds)
    assert send(qstack, follow, source="127.0.0.3") == (409, b"replay\n")
    intercepted = signed(creds, b"peer=127.0.0.2")
    assert send(qstack, intercepted, source="127.0.0.3") == (409, b"moved 127.0.0.3\n")
    assert versions(qstack, creds) == after
    assert send(qstack, intercepted, source="127.0.0.2") == (200, b"nochg 127.0.0.2\n")
    assert names_hold(qstack, creds) == ["127.0.0.2", "-"]


@pytest.mark.parametrize("body,field", [
    (b"peer=127.0.0.1&ipv4=192.0.2.80", b"peer"),
    (b"ipv6=2001:db8::80&peer=127.0.0.1", b"peer"),
    (b"peer=127.0.0", b"peer"),
    (b"peer=::ffff:127.0.0.1", b"peer"),
    (b"peer=127.0.0.1&peer=127.0.0.1", b"peer"),
])
def test_peer_syntax(qstack, body, field):
    creds = new_device(qstack)
    assert send(qstack, signed(creds, body)) == (400, b"badrequest " + field + b"\n")


def test_address_required_model(qstack):
    """An address-less request of a model that must name its address is
    answered moved and writes nothing; the same device signing peer= is
    accepted; other models keep the address-less request."""
    creds = new_device(qstack)
    settled(qstack, creds, "192.0.2.81")
    before = versions(qstack, creds)
    raw = signed(creds, b"", ua="AcmeCam-P1/1.0.0")
    assert send(qstack, raw) == (409, b"moved 127.0.0.1\n")
    assert versions(qstack, creds) == before
    assert send(qstack, signed(creds, b"peer=127.0.0.1", ua="AcmeCam-P1/1.0.0")) \
        == (200, b"good 127.0.0.1\n")
    other = new_device(qstack)
    assert send(qstack, signed(other, b"", ua="AcmeCam-X9/1.0.0")) == \
        (200, b"good 127.0.0.1\n")


def test_address_less_request_is_still_written(qstack):
    """The request of devices in the field: its address is not under its
    signature, so even a nochg records its timestamp."""
    creds = new_device(qstack)
    for _ in range(2):
        assert send(qstack, signed(creds, b""))[0] == 200
    before = versions(qstack, creds)
    raw = signed(creds, b"")
    assert send(qstack, raw) == (200, b"nochg 127.0.0.1\n")
    assert versions(qstack, creds)[0][1] == str(int(re.search(rb"ts=(\d+)", raw).group(1)))
    assert versions(qstack, creds)[0] != before[0]


def test_dyndns2_nochg_writes_nothing_and_a_change_raises_the_marker(qstack):
    creds = new_device(qstack)
    auth = attack.basic(creds["device_id"], creds["password"])

    def nic(addr):
        status, _, body = qstack.https_exchange(
            attack.nic_raw("hostname=%s&myip=%s" % (creds["fqdn"], addr), auth=auth))
        return status, body

    settled(qstack, creds, "192.0.2.82")
    before = versions(qstack, creds)
    for _ in range(2):
        assert nic("192.0.2.82") == (200, b"nochg 192.0.2.82\n")
    assert versions(qstack, creds) == before
    # a signed poll from before a dyndns2 change cannot bring X back: the
    # change raises the marker to every timestamp a poll written nothing for
    # can carry (at most 1 s ahead of the server)
    poll = signed(creds, b"ipv4=192.0.2.82")
    assert send(qstack, poll) == (200, b"nochg 192.0.2.82\n")
    assert versions(qstack, creds) == before
    t0 = int(time.time())
    assert nic("192.0.2.83") == (200, b"good 192.0.2.83\n")
    last_ts = int(versions(qstack, creds)[0][1])
    assert t0 + 1 <= last_ts <= int(time.time()) + 1
    with qstack.extra_gateway("quiet-dyn") as other:
        for port in (None, other):
            assert send(qstack, poll, port) == (409, b"replay\n")
    assert names_hold(qstack, creds) == ["192.0.2.83", "-"]


def test_last_seen_is_written_when_the_gateway_stops(qstack):
    """A gateway stopping writes what it noted, without waiting for the
    interval."""
    creds = new_device(qstack)
    with qstack.extra_gateway("quiet-stop", extra="[database]\nseen_interval = 3600\n") as port:
        settled(qstack, creds, "192.0.2.84", port)
        time.sleep(1.1)
        t0 = time.time()
        assert send(qstack, signed(creds, b"ipv4=192.0.2.84"), port) == \
            (200, b"nochg 192.0.2.84\n")
        seen = qstack.psql("SELECT extract(epoch FROM last_seen) FROM devices "
                           "WHERE device_id = '%s'" % creds["device_id"])[0][0]
        assert float(seen) < t0
    seen = qstack.psql("SELECT extract(epoch FROM last_seen) FROM devices "
                       "WHERE device_id = '%s'" % creds["device_id"])[0][0]
    assert float(seen) >= t0 - 0.01


def test_sdk_follows_the_connection_address(qstack, tmp_path):
    """The SDK's dance, through ddns-client and its --state file (the SDK's
    ddns_state_t): the first run is address-less and learns the address,
    the next polls sign it as peer= and write nothing, and when the
    learnt address is not where the requests come from, the answer
    "moved" makes the SDK sign the new address at once: the name follows
    in the same run, with nothing of the caller's."""
    creds = new_device(qstack)
    path = qstack.write_credentials(creds, str(tmp_path / "dev.json"))
    state = tmp_path / "peer"
    p = qstack.client(path, "--state", str(state))
    assert (p.returncode, p.stdout) == (0, "good 127.0.0.1\n"), p.stderr
    assert state.read_text() == "127.0.0.1\n"
    for _ in range(2):      # the first after a change is recorded, then none
        time.sleep(1.1)
        before = versions(qstack, creds)
        p = qstack.client(path, "--state", str(state))
        assert (p.returncode, p.stdout) == (0, "nochg 127.0.0.1\n"), p.stderr
    assert versions(qstack, creds) == before
    # the device's public address was 198.51.100.7 as far as it knows
    state.write_text("198.51.100.7\n")
    time.sleep(1.1)
    p = qstack.client(path, "--state", str(state))
    assert (p.returncode, p.stdout) == (0, "moved 127.0.0.1\nnochg 127.0.0.1\n"), p.stderr
    answers = re.findall(r"answer: result=(\w+) addr=(\S+)", p.stderr)
    assert answers == [("moved", "127.0.0.1"), ("nochg", "127.0.0.1")], p.stderr
    assert state.read_text() == "127.0.0.1\n"
    assert versions(qstack, creds) == before


def test_sdk_meets_an_address_required_model(qstack, tmp_path):
    """A model switched to address_required_models: the SDK's first,
    address-less request is answered moved and the SDK signs the address
    it was told at once."""
    creds = new_device(qstack)
    path = qstack.write_credentials(creds, str(tmp_path / "dev.json"))
    state = tmp_path / "peer"
    # ddns-client's User-Agent names the model "ddns-client"
    with qstack.extra_gateway("quiet-model", extra="[firmware]\n"
                              "address_required_models = ddns-client\n") as port:
        p = qstack.client(path, "--state", str(state), port=port)
    assert (p.returncode, p.stdout) == (0, "moved 127.0.0.1\ngood 127.0.0.1\n"), p.stderr
    answers = re.findall(r"answer: result=(\w+) addr=(\S+)", p.stderr)
    assert answers == [("moved", "127.0.0.1"), ("good", "127.0.0.1")], p.stderr
    assert state.read_text() == "127.0.0.1\n"


def test_address_required_through_the_admin_api(qstack, tmp_path):
    """The operators' policy switches a model too (PUT /api/v1/policy,
    ddnsctl policy set --address-required), and every worker follows it
    within seconds; the answer and the SDK's dance are the same."""
    from test_admin_api import api, ctl, make_token, wait_for
    wtok = make_token(qstack, "write", "quiet poll")
    creds = new_device(qstack)
    p = ctl(qstack, "policy", "set", "--address-required", "AcmeCam-P7", token=wtok, check=0)
    assert p.returncode == 0, p.stderr
    assert "address-required models, address-less updates answered moved (database): " \
           "acmecam-p7" in p.stdout
    st, j = api(qstack, "GET", "/api/v1/policy", token=wtok)
    assert st == 200 and j["address_required_models"] == ["acmecam-p7"], j
    assert j["config"]["address_required_models"] == "AcmeCam-P1"
    assert wait_for(lambda: send(qstack, signed(creds, b"", ua="AcmeCam-P7/3.3.0")) ==
                    (409, b"moved 127.0.0.1\n"))
    # good, or nochg when an address-less request of the wait above was
    # accepted before the workers switched
    assert send(qstack, signed(creds, b"peer=127.0.0.1", ua="AcmeCam-P7/3.3.0")) in \
        ((200, b"good 127.0.0.1\n"), (200, b"nochg 127.0.0.1\n"))
    # clearing the policy takes the model out again
    p = ctl(qstack, "policy", "set", "--clear", token=wtok, check=0)
    assert p.returncode == 0, p.stderr
    assert wait_for(lambda: send(qstack, signed(creds, b"", ua="AcmeCam-P7/3.3.0"))[0] == 200)
    assert qstack.psql("SELECT (admin_policy_set(NULL, 't', 'database', '{}', '{}', '{}', '{}', "
                       "'{acmecam-p8}')).body->'address_required_models'") == \
        [['["acmecam-p8"]']]
    # the form of the release before keeps the address-required models
    assert qstack.psql("SELECT (admin_policy_set(NULL, 't', 'database', '{acmecam-b9}', '{}', "
                       "'{}', '{}')).body->'address_required_models'") == [['["acmecam-p8"]']]
    ctl(qstack, "policy", "set", "--clear", token=wtok, check=0)


# -- the answers kept in memory (gw_quiet, [database] quiet_cache) ----------

def hits(stack, port=None):
    m = stack.metrics() if port is None else ddnsstack.admin_metrics(port)
    return m.get("ddns_quiet_hits_total", 0)


def warm(stack, creds, addr, ts):
    """Settles the device at addr with timestamps from ts on and polls until
    the gateway answers from memory; returns the next timestamp to use.
    (An answer is kept only once a barrier newer than the device's last
    change has completed: within about a second.)"""
    settled(stack, creds, addr, ts=ts)
    ts += 2
    before = hits(stack)
    deadline = time.time() + 15
    while hits(stack) == before:
        assert time.time() < deadline, "no poll was answered from memory"
        assert send(stack, signed(creds, ("ipv4=%s" % addr).encode(), ts=ts)) == \
            (200, b"nochg %s\n" % addr.encode())
        ts += 1
        time.sleep(0.1)
    return ts


def test_polls_are_answered_from_memory_without_a_read(qstack):
    """Once the database has answered a poll quietly, the same poll is
    answered after a barrier (one read of the devices changed since the
    previous one), not by a read of the device's rows: the hit counter
    counts every one, and nothing is written."""
    creds = new_device(qstack)
    ts = warm(qstack, creds, "192.0.2.90", int(time.time()) - 250)
    before, h, b = versions(qstack, creds), hits(qstack), \
        qstack.metrics()["ddns_quiet_barriers_total"]
    for i in range(5):
        assert send(qstack, signed(creds, b"ipv4=192.0.2.90", ts=ts + i)) == \
            (200, b"nochg 192.0.2.90\n")
    m = qstack.metrics()
    assert m["ddns_quiet_hits_total"] == h + 5
    assert m["ddns_quiet_barriers_total"] >= b + 5     # each waited for one of its own
    assert m["ddns_quiet_entries"] >= 1
    assert versions(qstack, creds) == before
    # a copy of an older poll is not answered from memory: it is a replay
    # for the gateway that saw the newer one, and the database decides
    # the rest (here: older than nothing written, so nochg again)
    assert send(qstack, signed(creds, b"ipv4=192.0.2.90", ts=ts + 4)) == (409, b"replay\n")


@pytest.mark.parametrize("how", ["other gateway", "operator", "revoke", "key change"])
def test_a_change_anywhere_is_seen_before_the_next_answer(qstack, how):
    """The cache never answers nochg for what the database no longer holds:
    the device's names or its credential changed by another gateway, by an
    operator's SQL or by a revocation, and the very next poll to the warm
    gateway gets the database's answer, twenty times in a row."""
    creds = new_device(qstack)
    dev = creds["device_id"]
    ts = warm(qstack, creds, "192.0.2.91", int(time.time()) - 280)
    with qstack.extra_gateway("quiet-cache-b") as other:
        for i in range(20):
            ts += 2
            x = b"ipv4=192.0.2.91"
            if how == "other gateway":
                assert send(qstack, signed(creds, b"ipv4=192.0.2.92", ts=ts), other) == \
                    (200, b"good 192.0.2.92\n")
                assert send(qstack, signed(creds, x, ts=ts + 1)) == \
                    (200, b"good 192.0.2.91\n")
            elif how == "operator":
                qstack.psql("UPDATE names SET ipv4 = '192.0.2.93' WHERE device_id = '%s'" % dev)
                assert send(qstack, signed(creds, x, ts=ts + 1)) == \
                    (200, b"good 192.0.2.91\n")
            elif how == "revoke":
                qstack.psql("UPDATE devices SET status = 'revoked' WHERE device_id = '%s'" % dev)
                status, body = send(qstack, signed(creds, x, ts=ts + 1))
                assert status != 200 and not body.startswith(b"nochg"), (status, body)
                qstack.psql("UPDATE devices SET status = 'active' WHERE device_id = '%s'" % dev)
            else:
                qstack.psql("UPDATE devices SET generation = generation + 1 "
                            "WHERE device_id = '%s'" % dev)
                status, body = send(qstack, signed(creds, x, ts=ts + 1))
                assert status != 200 and not body.startswith(b"nochg"), (status, body)
                qstack.psql("UPDATE devices SET generation = generation - 1 "
                            "WHERE device_id = '%s'" % dev)
            # settle again, and let the gateway keep the answer again
            for k in range(2, 40):
                h = hits(qstack)
                assert send(qstack, signed(creds, x, ts=ts + k)) == \
                    (200, b"nochg 192.0.2.91\n") or k < 4
                if hits(qstack) > h:
                    break
                time.sleep(0.05)
            else:
                pytest.fail("no answer from memory after the change")
            ts += k
    assert names_hold(qstack, creds) == ["192.0.2.91", "-"]


def read_after_flush(stack, creds, flushes, ts):
    """Waits until the gateway dropped every kept answer (its flush counter
    moved past flushes); the device's next poll is then the database's."""
    deadline = time.time() + 10
    while stack.metrics()["ddns_quiet_flushes_total"] == flushes:
        assert time.time() < deadline
        time.sleep(0.2)
    h = hits(stack)
    assert send(stack, signed(creds, b"ipv4=192.0.2.94", ts=ts)) == (200, b"nochg 192.0.2.94\n")
    assert hits(stack) == h


def test_barriers_that_cannot_know_drop_everything(qstack):
    """A barrier older than the pruned change log, and a provisioning batch
    (more than 100 names in one statement), drop every kept answer: the
    next poll is answered by the database (correctly), and kept again."""
    creds = new_device(qstack)
    ts = warm(qstack, creds, "192.0.2.94", int(time.time()) - 200)
    f0 = qstack.metrics()["ddns_quiet_flushes_total"]
    # as if the rows up to this transaction had been pruned: the barrier
    # snapshot the gateway holds is older
    qstack.psql("UPDATE ddns_change_horizon "
                "SET pruned = (pg_current_xact_id()::text::bigint + 1)::text::xid8")
    read_after_flush(qstack, creds, f0, ts)
    ts = warm(qstack, creds, "192.0.2.94", ts + 1)
    f1 = qstack.metrics()["ddns_quiet_flushes_total"]
    qstack.psql(
        "WITH d AS (INSERT INTO devices (device_id, kid) "
        "SELECT lpad(to_hex(x), 12, 'f'), 'bulk' FROM generate_series(1, 101) x RETURNING device_id) "
        "INSERT INTO names (device_id, label, zone) SELECT device_id, 'bulk' || device_id, "
        "'bulk.example' FROM d")
    read_after_flush(qstack, creds, f1, ts)


def test_a_failing_barrier_sends_the_polls_to_the_database(qstack):
    """While the barrier statement fails, polls are answered by the
    database (correctly: a change made meanwhile is seen), nothing is
    dropped wholesale, and once it works again the next barrier reads from
    the snapshot before the failures, so the change is not missed."""
    creds = new_device(qstack)
    dev = creds["device_id"]
    ts = warm(qstack, creds, "192.0.2.98", int(time.time()) - 120)
    f0, h0 = qstack.metrics()["ddns_quiet_flushes_total"], hits(qstack)
    qstack.psql("ALTER FUNCTION ddns_changes_since(pg_snapshot) RENAME TO ddns_changes_gone")
    try:
        assert send(qstack, signed(creds, b"ipv4=192.0.2.98", ts=ts)) == \
            (200, b"nochg 192.0.2.98\n")
        qstack.psql("UPDATE names SET ipv4 = '192.0.2.99' WHERE device_id = '%s'" % dev)
        assert send(qstack, signed(creds, b"ipv4=192.0.2.98", ts=ts + 1)) == \
            (200, b"good 192.0.2.98\n")
        qstack.psql("UPDATE names SET ipv4 = '192.0.2.99' WHERE device_id = '%s'" % dev)
        m = qstack.metrics()
        assert m["ddns_quiet_hits_total"] == h0
        assert m["ddns_quiet_flushes_total"] == f0
    finally:
        qstack.psql("ALTER FUNCTION ddns_changes_gone(pg_snapshot) RENAME TO ddns_changes_since")
    # the answer kept from before the failures must not survive the change
    assert send(qstack, signed(creds, b"ipv4=192.0.2.98", ts=ts + 2)) == \
        (200, b"good 192.0.2.98\n")
    log = open(os.path.join(qstack.dir, "gateway.log"), errors="replace").read()
    assert "quiet cache: barrier failed" in log


def test_the_change_log_is_pruned_with_a_horizon(qstack):
    """ddns_changes_prune() deletes only rows older than what it keeps, and
    raises the horizon to the oldest transaction of a mark at least that
    old, so a reader whose snapshot is older knows it missed some."""
    qstack.psql("SELECT ddns_changes_prune('0 s')")
    time.sleep(1.1)
    creds = new_device(qstack)
    settled(qstack, creds, "192.0.2.95", ts=int(time.time()) - 100)
    assert int(qstack.psql("SELECT count(*) FROM ddns_changes WHERE device_id = '%s'"
                           % creds["device_id"])[0][0]) >= 2
    # a change writes the device and its name: one row for the transaction
    assert qstack.psql("SELECT count(*) = count(DISTINCT xid) FROM ddns_changes "
                       "WHERE device_id = '%s'" % creds["device_id"]) == [["t"]]
    # an operator's edit of a name alone is logged by the name
    qstack.psql("UPDATE names SET ipv4 = '192.0.2.97' WHERE device_id = '%s'" % creds["device_id"])
    snap = qstack.psql("SELECT pg_current_snapshot()")[0][0]
    qstack.psql("UPDATE names SET ipv4 = '192.0.2.95' WHERE device_id = '%s'" % creds["device_id"])
    words = qstack.psql("SELECT ddns_changes_since('%s')" % snap)[0][0].split()
    assert words[2] == "t" and creds["device_id"] in words[3::2], words
    assert qstack.psql("SELECT ddns_changes_prune('1 hour')") == [["0"]]
    assert int(qstack.psql("SELECT count(*) FROM ddns_changes WHERE device_id = '%s'"
                           % creds["device_id"])[0][0]) >= 2
    qstack.psql("SELECT ddns_changes_prune('0 s')")
    time.sleep(1.1)
    qstack.psql("SELECT ddns_changes_prune('0 s')")
    assert qstack.psql("SELECT count(*) FROM ddns_changes WHERE device_id = '%s'"
                       % creds["device_id"]) == [["0"]]
    snap = qstack.psql("SELECT pg_current_snapshot()")[0][0]
    # snapshot, clock, complete, then the changes
    assert qstack.psql("SELECT ddns_changes_since('%s')" % snap)[0][0].split()[2] == "t"
    assert qstack.psql("SELECT ddns_changes_since('1:1:')")[0][0].split()[2] == "f"
    assert qstack.psql("SELECT ddns_changes_since(NULL)")[0][0].split()[2] == "f"


def test_no_cache_reads_every_poll(qstack):
    """[database] quiet_cache = 0: every poll is the database's read (still
    written nothing), none is answered from memory."""
    creds = new_device(qstack)
    admin = ddnsstack.free_port()
    with qstack.extra_gateway("quiet-off", extra="[database]\nquiet_cache = 0\n"
                              "seen_interval = 3600\n[admin]\nlisten = 127.0.0.1:%d\n"
                              % admin) as port:
        ts = int(time.time()) - 150
        settled(qstack, creds, "192.0.2.96", port, ts=ts)
        before = versions(qstack, creds)
        for i in range(5):
            assert send(qstack, signed(creds, b"ipv4=192.0.2.96", ts=ts + 2 + i), port) == \
                (200, b"nochg 192.0.2.96\n")
            time.sleep(0.3)
        assert versions(qstack, creds) == before
        m = ddnsstack.admin_metrics(admin)
        assert m["ddns_nochg_unwritten_total"] == 5
        assert m["ddns_quiet_hits_total"] == 0 and m["ddns_quiet_barriers_total"] == 0
        assert m["ddns_quiet_entries"] == 0
