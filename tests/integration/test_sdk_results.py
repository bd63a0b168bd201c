"""Every result the gateway gives, through the firmware SDK: ddns-client
builds and signs the request with the SDK, sends it to the real gateway,
parses the answer with the SDK and asks ddns_next() what to do next. Each
test checks the exit code, the answer line on standard output and the
parsed answer and decision on standard error:

  ddns-client: answer: result=TOKEN [addr=.. detail=.. server_time=..
               clock_offset=.. retry_after=..] next=idle|retry|stop delay=N

ratelimit and 911 come from gateways of their own on the same database
(one with a minimum change interval, one whose database is unreachable).
badagent is checked on the raw answer and through the SDK.
notfound is not reachable with ddns-client (it always uses /v1/update); it
is covered in test_end_to_end.py."""
import os
import re
import socket
import stat
import time

import ddnsstack

ANSWER = re.compile(r"^ddns-client: answer: (.*)$", re.M)

KEEPALIVE = 86400        # ddns_options_default().keepalive
BACKOFF_FIRST = 300      # ddns_options_default().backoff_first


def parsed(p):
    """The answer line of ddns-client's standard error as a dict."""
    m = ANSWER.search(p.stderr)
    assert m, p.stderr
    fields = {}
    for word in m.group(1).split():
        key, _, value = word.partition("=")
        fields.setdefault(key, []).append(value)
    return {k: v if k == "addr" else v[0] for k, v in fields.items()}


def test_good_then_nochg(stack, device):
    creds, path = device
    p = stack.client(path, "--ipv4", "192.0.2.150", "--ipv6", "2001:db8::150")
    assert (p.returncode, p.stdout) == (0, "good 192.0.2.150 2001:db8::150\n"), p.stderr
    a = parsed(p)
    assert a["result"] == "good"
    assert a["addr"] == ["192.0.2.150", "2001:db8::150"]
    assert a["next"] == "idle"
    assert KEEPALIVE <= int(a["delay"]) < KEEPALIVE * 3 // 2

    time.sleep(1.05)  # one accepted update per second (replay rule)
    p = stack.client(path, "--ipv4", "192.0.2.150", "--ipv6", "2001:db8::150")
    assert (p.returncode, p.stdout) == (0, "nochg 192.0.2.150 2001:db8::150\n"), p.stderr
    a = parsed(p)
    assert (a["result"], a["addr"], a["next"]) == ("nochg", ["192.0.2.150", "2001:db8::150"],
                                                  "idle")


def test_good_with_the_connection_address(stack, device):
    creds, path = device
    p = stack.client(path)
    assert (p.returncode, p.stdout) == (0, "good 127.0.0.1\n"), p.stderr
    a = parsed(p)
    assert (a["result"], a["addr"], a["next"]) == ("good", ["127.0.0.1"], "idle")


def test_state_file_keeps_the_learnt_address(stack, device, tmp_path):
    """--state keeps the address the SDK learnt from the answer
    (ddns_state_t, given to the request as req.state): one line, mode
    0600, and the next request without an address sends it as peer,
    alone. Invalid uses are refused before anything is sent."""
    creds, path = device
    state = tmp_path / "peer"
    p = stack.client(path, "--state", str(state))
    assert (p.returncode, p.stdout) == (0, "good 127.0.0.1\n"), p.stderr
    assert state.read_text() == "127.0.0.1\n"
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o600
    raw = stack.signed_request(path, tmp_path, "--state", str(state))
    assert raw.endswith(b"\r\nContent-Length: 14\r\n\r\npeer=127.0.0.1"), raw
    # an address of the command line is sent instead, peer never beside it
    raw = stack.signed_request(path, tmp_path, "--state", str(state), "--ipv4", "192.0.2.149")
    assert raw.endswith(b"\r\n\r\nipv4=192.0.2.149"), raw
    # --peer names the address itself
    raw = stack.signed_request(path, tmp_path, "--peer", "2001:db8::149")
    assert raw.endswith(b"\r\n\r\npeer=2001:db8::149"), raw

    for args, message in [(["--peer", "192.0.2.149", "--ipv4", "192.0.2.149"],
                           "--peer is sent alone"),
                          (["--peer", "192.0.2"], "--peer/--state: the address to send as peer"),
                          (["--peer", ""], "--peer: expected an IPv4 or IPv6 address")]:
        p = stack.client(path, *args)
        assert (p.returncode, p.stdout) == (2, ""), p.stderr
        assert message in p.stderr
        assert ANSWER.search(p.stderr) is None
    state.write_text("not an address\n")
    p = stack.client(path, "--state", str(state))
    assert (p.returncode, p.stdout) == (2, ""), p.stderr
    assert "not one line with an IPv4 or IPv6 address" in p.stderr
    assert state.read_text() == "not an address\n"


def test_badrequest_stops(stack, device):
    creds, path = device
    # Characters the SDK's builder lets through, a syntax the gateway refuses.
    p = stack.client(path, "--ipv4", "192.0.2.300", "--no-syntax-check")
    assert (p.returncode, p.stdout) == (1, "badrequest ipv4\n"), p.stderr
    a = parsed(p)
    assert (a["result"], a["detail"], a["next"], a["delay"]) == ("badrequest", "ipv4", "stop",
                                                                "0")
    # Without --no-syntax-check the SDK's full check refuses it on the device.
    p = stack.client(path, "--ipv4", "192.0.2.300")
    assert p.returncode == 2 and p.stdout == ""
    assert "--ipv4: invalid IPv4 address" in p.stderr
    assert ANSWER.search(p.stderr) is None


def test_badauth_stops(stack, device, tmp_path):
    creds, path = device
    bad = dict(creds)
    other = stack.provision("02:00:00:ee:ee:51")
    bad["secret"], bad["password"] = other["secret"], other["password"]
    bad_path = stack.write_credentials(bad, str(tmp_path / "bad.json"))
    p = stack.client(bad_path, "--ipv4", "192.0.2.151")
    assert (p.returncode, p.stdout) == (1, "badauth\n"), p.stderr
    a = parsed(p)
    assert (a["result"], a["next"], a["delay"]) == ("badauth", "stop", "0")


def test_badtime_corrects_the_clock(stack, device):
    creds, path = device
    for skew in (3600, -3600):
        signed = int(time.time()) - skew
        before = int(time.time())
        p = stack.client(path, "--ipv4", "192.0.2.152", "--timestamp", str(signed))
        after = int(time.time())
        assert p.returncode == 1, p.stderr
        m = re.fullmatch(r"badtime (\d+)\n", p.stdout)
        assert m, p.stdout
        server_time = int(m.group(1))
        assert before - 1 <= server_time <= after + 1
        a = parsed(p)
        assert a["result"] == "badtime"
        assert int(a["server_time"]) == server_time
        # The offset learnt is the gateway's clock minus the one signed with.
        assert int(a["clock_offset"]) == server_time - signed
        # ... which is the skew, give or take the seconds the exchange took
        assert -1 <= int(a["clock_offset"]) - skew <= after - (signed + skew) + 1
        assert a["next"] == "retry" and 4 <= int(a["delay"]) <= 5


def test_disabled_stops(stack, device):
    creds, path = device
    assert stack.client(path, "--ipv4", "192.0.2.153").returncode == 0
    stack.psql("UPDATE devices SET status = 'revoked' WHERE device_id = '%s'" % creds["device_id"])
    time.sleep(1.05)
    p = stack.client(path, "--ipv4", "192.0.2.154")
    assert (p.returncode, p.stdout) == (1, "disabled\n"), p.stderr
    a = parsed(p)
    assert (a["result"], a["next"], a["delay"]) == ("disabled", "stop", "0")


def test_replay_backs_off(stack, device):
    creds, path = device
    assert stack.client(path, "--ipv4", "192.0.2.155").returncode == 0
    p = stack.client(path, "--ipv4", "192.0.2.156", "--timestamp", str(int(time.time()) - 60))
    assert (p.returncode, p.stdout) == (1, "replay\n"), p.stderr
    a = parsed(p)
    assert a["result"] == "replay" and a["next"] == "retry"
    assert BACKOFF_FIRST <= int(a["delay"]) < BACKOFF_FIRST * 3 // 2


def test_no_answer_backs_off(stack, device):
    creds, path = device
    # A port nobody listens on: no answer at all.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = stack.client(path, "--ipv4", "192.0.2.157", "--server", "localhost:%d" % port,
                     "--timeout", "5")
    assert p.returncode == 3 and p.stdout == ""
    a = parsed(p)
    assert a["result"] == "none" and a["next"] == "retry"
    assert BACKOFF_FIRST <= int(a["delay"]) < BACKOFF_FIRST * 3 // 2


def test_ratelimit_waits_and_then_is_accepted(stack, device):
    """A gateway with min_change_interval = 2: a second change at once is
    refused with ratelimit and Retry-After; after that many seconds it is
    accepted. nochg does not count. The limit is decided in the database, so
    a change made through the session's gateway (no limit) counts too."""
    creds, path = device
    t = int(time.time())
    with stack.extra_gateway("sdk-2s", min_change_interval=2) as port:
        p = stack.client(path, "--ipv4", "192.0.2.160", "--timestamp", str(t), port=port)
        assert (p.returncode, p.stdout) == (0, "good 192.0.2.160\n"), p.stderr
        p = stack.client(path, "--ipv4", "192.0.2.160", "--timestamp", str(t + 1), port=port)
        assert (p.returncode, p.stdout) == (0, "nochg 192.0.2.160\n"), p.stderr
        p = stack.client(path, "--ipv4", "192.0.2.161", "--timestamp", str(t + 2), port=port)
        if p.stdout.startswith("ratelimit "):
            wait = int(p.stdout.split()[1])
            assert p.returncode == 1 and 1 <= wait <= 2, p.stdout
            a = parsed(p)
            assert (a["result"], a["retry_after"], a["next"]) == ("ratelimit", str(wait), "retry")
            assert int(a["delay"]) >= wait
            time.sleep(wait)
        p = stack.client(path, "--ipv4", "192.0.2.161", "--timestamp", str(t + 3), port=port)
        assert (p.returncode, p.stdout) == (0, "good 192.0.2.161\n"), p.stderr
    assert stack.wait_dns(creds["fqdn"], "A", ["192.0.2.161"]) == ["192.0.2.161"]


def test_ratelimit_holds_across_gateways_and_consumes_the_timestamp(stack, device, tmp_path):
    creds, path = device
    t = int(time.time())
    with stack.extra_gateway("sdk-1h", min_change_interval=3600) as port:
        # a change through the session's gateway (no limit of its own) ...
        p = stack.client(path, "--ipv4", "192.0.2.162", "--timestamp", str(t))
        assert (p.returncode, p.stdout) == (0, "good 192.0.2.162\n"), p.stderr
        # ... is the last change the limited gateway sees
        out = tmp_path / "req.bin"
        p = stack.client(path, "--ipv4", "192.0.2.163", "--timestamp", str(t + 1),
                         "--request-out", str(out))
        assert p.returncode == 0, p.stderr
        raw = out.read_bytes()
        status, body, headers = stack.https_request(raw, port=port, headers=True)
        m = re.fullmatch(rb"ratelimit (\d+)\n", body)
        assert status == 429 and m, (status, body)
        assert 3590 <= int(m.group(1)) <= 3600
        assert headers["retry-after"] == m.group(1).decode()
        p = stack.client(path, "--ipv4", "192.0.2.163", "--timestamp", str(t + 2), port=port)
        assert p.returncode == 1 and p.stdout.startswith("ratelimit "), p.stdout
        a = parsed(p)
        assert a["result"] == "ratelimit" and a["next"] == "retry"
        assert 3590 <= int(a["retry_after"]) <= 3600
        # the refused request used up its timestamp: once the interval has
        # passed, the same bytes are a replay
        stack.psql("UPDATE devices SET last_change = now() - interval '3601 seconds' "
                   "WHERE device_id = '%s'" % creds["device_id"])
        assert stack.https_request(raw, port=port) == (409, b"replay\n")
        p = stack.client(path, "--ipv4", "192.0.2.163", "--timestamp", str(t + 3), port=port)
        assert (p.returncode, p.stdout) == (0, "good 192.0.2.163\n"), p.stderr
    assert stack.wait_dns(creds["fqdn"], "A", ["192.0.2.163"]) == ["192.0.2.163"]
    rows = stack.psql("SELECT host(new_address) FROM history WHERE device_id = '%s' ORDER BY id"
                      % creds["device_id"])
    assert rows == [["192.0.2.162"], ["192.0.2.163"]]


def test_badagent_for_blocked_or_old_firmware(stack, device, tmp_path):
    """The session's gateway blocks AcmeCam-X1 and AcmeCam-X2 and wants
    AcmeCam-X3 at 2.1.0 or newer. The User-Agent is not signed, so the test
    rewrites it in requests ddns-client signed."""
    creds, path = device
    t = int(time.time())

    def signed(ts, ua):
        out = tmp_path / ("req-%d.bin" % ts)
        p = stack.client(path, "--ipv4", "192.0.2.164", "--timestamp", str(ts),
                         "--request-out", str(out))
        assert p.returncode == 0, p.stderr
        raw = out.read_bytes()
        assert re.search(rb"User-Agent: ddns-client/[^\r]*\r\n", raw)
        return re.sub(rb"User-Agent: [^\r]*", b"User-Agent: " + ua.encode(), raw)

    for i, ua in enumerate(("AcmeCam-X1/3.0.0", "acmecam-x2/1.0 (rev B)", "AcmeCam-X3/2.0.99",
                            "AcmeCam-X3/v2")):
        assert stack.https_request(signed(t + i, ua)) == (403, b"badagent\n"), ua
    # refused before the clock and the signature are looked at
    raw = signed(t - 3600, "AcmeCam-X1/3.0.0")
    assert stack.https_request(raw) == (403, b"badagent\n")
    assert stack.psql("SELECT count(*) FROM history WHERE device_id = '%s'"
                      % creds["device_id"]) == [["0"]]
    assert stack.https_request(signed(t + 10, "AcmeCam-X3/2.1.0 (rev C)")) == \
        (200, b"good 192.0.2.164\n")
    # ddns-client's own User-Agent, refused by a gateway that wants a newer
    # one: the SDK parses badagent and says to stop until a firmware update
    with stack.extra_gateway("sdk-policy", minimum="ddns-client/99.0") as port:
        p = stack.client(path, "--ipv4", "192.0.2.164", port=port)
        assert (p.returncode, p.stdout) == (1, "badagent\n"), (p.returncode, p.stdout, p.stderr)
        assert "update the firmware" in p.stderr, p.stderr
        a = parsed(p)
        assert (a["result"], a["next"], a["delay"]) == ("badagent", "stop", "0")
        log = open(os.path.join(stack.dir, "gateway-sdk-policy.log")).read()
        assert "status=403 result=badagent" in log


def signed_bytes(stack, path, tmp_path):
    """The exact bytes of a request ddns-client signs."""
    out = tmp_path / "req-911.bin"
    p = stack.client(path, "--ipv4", "192.0.2.166", "--request-out", str(out))
    assert p.returncode == 0, p.stderr
    return out.read_bytes()


def test_911_when_the_database_is_unreachable(stack, device, tmp_path):
    creds, path = device
    dead = "host=127.0.0.1 port=%d dbname=ddns user=ddns connect_timeout=2" % ddnsstack.free_port()
    with stack.extra_gateway("sdk-nodb", conninfo=dead) as port:
        p = stack.client(path, "--ipv4", "192.0.2.165", port=port)
        assert (p.returncode, p.stdout) == (1, "911\n"), p.stderr
        a = parsed(p)
        assert (a["result"], a["next"]) == ("911", "retry")
        assert int(a["delay"]) >= BACKOFF_FIRST
        status, body, headers = stack.https_request(signed_bytes(stack, path, tmp_path),
                                                    port=port, headers=True)
        assert (status, body, headers["retry-after"]) == (503, b"911\n", "30")
    assert stack.dig(creds["fqdn"], "A") == []
