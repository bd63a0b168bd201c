"""Every result the gateway gives, through the firmware SDK: ddns-client
builds and signs the request with the SDK, sends it to the real gateway,
parses the answer with the SDK and asks ddns_next() what to do next. Each
test checks the exit code, the answer line on standard output and the
parsed answer and decision on standard error:

  ddns-client: answer: result=TOKEN [addr=.. detail=.. server_time=..
               clock_offset=.. retry_after=..] next=idle|retry|stop delay=N

Not covered here: ratelimit (the gateway does not emit it yet; the SDK's
handling of it is covered by the unit tests and the fuzzer), notfound
(ddns-client always uses /v1/update) and 911 (needs the database down)."""
import re
import socket
import time

ANSWER = re.compile(r"^ddns-client: answer: (.*)$", re.M)

KEEPALIVE = 86400        # DDNS_KEEPALIVE
BACKOFF_FIRST = 300      # DDNS_BACKOFF_FIRST


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
        assert abs(int(a["clock_offset"]) - skew) <= 2
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
