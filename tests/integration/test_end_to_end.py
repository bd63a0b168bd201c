"""End to end: a provisioned device updates its name over HTTPS through the
real gateway, PostgreSQL stores it, Knot DNS serves it (docs/PROTOCOL.md).

Each refusal is checked to leave the database and DNS unchanged."""
import json
import os
import re
import subprocess
import time

import ddnsstack


def history_count(stack, device_id):
    return int(stack.psql("SELECT count(*) FROM history WHERE device_id = '%s'" % device_id)[0][0])


def outbox_count(stack):
    return int(stack.psql("SELECT count(*) FROM dns_outbox")[0][0])


signed_request = ddnsstack.Stack.signed_request     # (stack, cred_file, directory, *args)


def test_update_good_then_resolves(stack, device):
    creds, path = device
    p = stack.client(path, "--ipv4", "192.0.2.10")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "good 192.0.2.10"
    assert stack.wait_dns(creds["fqdn"], "A", ["192.0.2.10"]) == ["192.0.2.10"]
    assert stack.outbox_empty(), "outbox row not removed after Knot confirmed it"
    rows = stack.psql("SELECT rrtype, host(new_address) FROM history WHERE device_id = '%s'"
                      % creds["device_id"])
    assert rows == [["A", "192.0.2.10"]]


def test_same_address_again_is_nochg(stack, device):
    creds, path = device
    assert stack.client(path, "--ipv4", "192.0.2.20").stdout.strip() == "good 192.0.2.20"
    time.sleep(1.05)  # the replay rule allows one accepted request per second
    p = stack.client(path, "--ipv4", "192.0.2.20")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "nochg 192.0.2.20"
    assert history_count(stack, creds["device_id"]) == 1
    assert stack.wait_dns(creds["fqdn"], "A", ["192.0.2.20"]) == ["192.0.2.20"]


def test_ipv6_update_yields_aaaa(stack, device):
    creds, path = device
    p = stack.client(path, "--ipv6", "2001:DB8:0::10")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "good 2001:db8::10"
    assert stack.wait_dns(creds["fqdn"], "AAAA", ["2001:db8::10"]) == ["2001:db8::10"]
    assert stack.dig(creds["fqdn"], "A") == []


def test_both_families_in_one_request(stack, device):
    creds, path = device
    p = stack.client(path, "--ipv4", "198.51.100.7", "--ipv6", "2001:db8::7")
    assert p.stdout.strip() == "good 198.51.100.7 2001:db8::7", p.stderr
    assert stack.wait_dns(creds["fqdn"], "A", ["198.51.100.7"]) == ["198.51.100.7"]
    assert stack.wait_dns(creds["fqdn"], "AAAA", ["2001:db8::7"]) == ["2001:db8::7"]


def test_no_address_uses_connection_address(stack, device):
    creds, path = device
    p = stack.client(path)
    assert p.stdout.strip() == "good 127.0.0.1", p.stderr
    assert stack.wait_dns(creds["fqdn"], "A", ["127.0.0.1"]) == ["127.0.0.1"]


def establish(stack, creds, path, addr):
    """Gives the device a published address to compare refusals against."""
    assert stack.client(path, "--ipv4", addr).stdout.strip() == "good " + addr
    assert stack.wait_dns(creds["fqdn"], "A", [addr]) == [addr]
    assert stack.outbox_empty()
    time.sleep(1.05)
    return history_count(stack, creds["device_id"])


def assert_unchanged(stack, creds, addr, hist):
    assert history_count(stack, creds["device_id"]) == hist
    assert outbox_count(stack) == 0
    assert stack.dig(creds["fqdn"], "A") == [addr]


def test_wrong_secret_is_badauth(stack, device, tmp_path):
    creds, path = device
    hist = establish(stack, creds, path, "192.0.2.30")
    bad = dict(creds)
    other = stack.provision("02:00:00:ee:ee:01")
    bad["secret"], bad["password"] = other["secret"], other["password"]
    bad_path = stack.write_credentials(bad, str(tmp_path / "bad.json"))
    p = stack.client(bad_path, "--ipv4", "192.0.2.31")
    assert p.returncode == 1
    assert p.stdout.strip() == "badauth"
    assert_unchanged(stack, creds, "192.0.2.30", hist)


def test_tampered_parameter_is_badauth(stack, device, tmp_path):
    creds, path = device
    hist = establish(stack, creds, path, "192.0.2.40")
    raw = signed_request(stack, path, tmp_path, "--ipv4", "192.0.2.41")
    tampered = raw.replace(b"ipv4=192.0.2.41", b"ipv4=192.0.2.66")
    assert tampered != raw
    status, body = stack.https_request(tampered)
    assert (status, body) == (401, b"badauth\n")
    assert_unchanged(stack, creds, "192.0.2.40", hist)


def test_replayed_request_is_replay(stack, device, tmp_path):
    creds, path = device
    hist = establish(stack, creds, path, "192.0.2.50")
    raw = signed_request(stack, path, tmp_path, "--ipv4", "192.0.2.51")
    assert stack.https_request(raw) == (200, b"good 192.0.2.51\n")
    assert stack.wait_dns(creds["fqdn"], "A", ["192.0.2.51"]) == ["192.0.2.51"]
    assert stack.outbox_empty()
    hist += 1
    # the same bytes again, and again after another device update moved DNS on
    assert stack.https_request(raw) == (409, b"replay\n")
    assert_unchanged(stack, creds, "192.0.2.51", hist)


def test_older_timestamp_is_replay(stack, device, tmp_path):
    creds, path = device
    hist = establish(stack, creds, path, "192.0.2.55")
    p = stack.client(path, "--ipv4", "192.0.2.56", "--timestamp", str(int(time.time()) - 60))
    assert (p.returncode, p.stdout.strip()) == (1, "replay")
    assert_unchanged(stack, creds, "192.0.2.55", hist)


def test_stale_timestamp_is_badtime_with_server_time(stack, device):
    creds, path = device
    hist = establish(stack, creds, path, "192.0.2.60")
    before = int(time.time())
    p = stack.client(path, "--ipv4", "192.0.2.61", "--timestamp", str(before - 3600))
    after = int(time.time())
    assert p.returncode == 1
    m = re.fullmatch(r"badtime (\d+)", p.stdout.strip())
    assert m, p.stdout
    assert before - 1 <= int(m.group(1)) <= after + 1
    assert_unchanged(stack, creds, "192.0.2.60", hist)
    p = stack.client(path, "--ipv4", "192.0.2.61", "--timestamp", str(before + 3600))
    assert p.stdout.startswith("badtime ")
    assert_unchanged(stack, creds, "192.0.2.60", hist)


def test_unknown_device_is_badauth(stack, tmp_path):
    # valid credentials derived with the real master key, but never registered
    out = ddnsstack.run([os.path.join(ddnsstack.BIN, "ddns-provision"), "show", "--mac",
                         "02:00:00:dd:dd:01", "--key-dir", stack.key_dir])
    creds = json.loads(out.stdout)
    path = stack.write_credentials(creds, str(tmp_path / "unknown.json"))
    before = outbox_count(stack)
    p = stack.client(path, "--ipv4", "192.0.2.70")
    assert (p.returncode, p.stdout.strip()) == (1, "badauth")
    assert stack.psql("SELECT count(*) FROM devices WHERE device_id = '%s'" % creds["device_id"]) == [["0"]]
    assert outbox_count(stack) == before


def test_revoked_device_is_disabled(stack, device):
    creds, path = device
    hist = establish(stack, creds, path, "192.0.2.80")
    stack.psql("UPDATE devices SET status = 'revoked' WHERE device_id = '%s'" % creds["device_id"])
    p = stack.client(path, "--ipv4", "192.0.2.81")
    assert (p.returncode, p.stdout.strip()) == (1, "disabled")
    assert_unchanged(stack, creds, "192.0.2.80", hist)


def test_malformed_requests_are_refused_with_field(stack, device, tmp_path):
    creds, path = device
    raw = signed_request(stack, path, tmp_path, "--ipv4", "192.0.2.90")
    no_auth = re.sub(rb"Authorization: [^\r]*\r\n", b"", raw)
    assert stack.https_request(no_auth) == (400, b"badrequest authorization\n")
    status, body = stack.https_request(b"GET /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert (status, body) == (404, b"notfound\n")
    status, headers, body = stack.https_exchange(b"GET /v1/update HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (status, headers["allow"], body) == (405, "POST", b"badrequest method\n")
    for method in (b"PUT", b"DELETE", b"TRACE"):
        status, headers, body = stack.https_exchange(method + b" /v1/update HTTP/1.1\r\n"
                                                     b"Host: x\r\nContent-Length: 0\r\n\r\n")
        assert (status, headers["allow"], body) == (405, "POST", b"badrequest method\n")
    query = raw.replace(b"POST /v1/update ", b"POST /v1/update?ipv4=192.0.2.91 ", 1)
    assert stack.https_request(query) == (400, b"badrequest path\n")
    bad_body = raw.replace(b"ipv4=192.0.2.90", b"ipv4=192.0.2.9x")
    assert stack.https_request(bad_body) == (400, b"badrequest ipv4\n")


def test_outbox_keeps_changes_while_dns_is_down(stack, device):
    creds, path = device
    stack.stop_process("knotd")
    try:
        p = stack.client(path, "--ipv4", "203.0.113.5")
        assert p.stdout.strip() == "good 203.0.113.5", p.stderr
        deadline = time.time() + 10
        attempts = 0
        while time.time() < deadline and attempts == 0:
            rows = stack.psql("SELECT attempts FROM dns_outbox WHERE fqdn = '%s'" % creds["fqdn"])
            assert rows, "the change left the outbox although DNS was down"
            attempts = int(rows[0][0])
            time.sleep(0.1)
        assert attempts > 0, "the publisher never tried"
    finally:
        stack.start_knot()
    assert stack.wait_dns(creds["fqdn"], "A", ["203.0.113.5"], timeout=40) == ["203.0.113.5"]
    assert stack.outbox_empty(timeout=10)


def test_gateway_log_has_no_secrets(stack, device, tmp_path):
    creds, path = device
    raw = signed_request(stack, path, tmp_path, "--ipv4", "192.0.2.99")
    stack.https_request(raw)
    sig = re.search(rb"sig=([0-9a-f]{64})", raw).group(1).decode()
    log = stack.gateway_log()
    assert creds["device_id"] in log, "the request line should name the device"
    for secret in (creds["secret"], creds["password"], sig):
        assert secret not in log


def test_database_holds_no_secret(stack, device):
    creds, path = device
    assert stack.client(path, "--ipv4", "192.0.2.120").returncode == 0
    dump = ddnsstack.run(["pg_dump", "--data-only", stack.conninfo]).stdout
    assert creds["device_id"] in dump
    assert creds["secret"] not in dump
    assert creds["password"] not in dump
    raw_hex = __import__("base64").urlsafe_b64decode(creds["secret"] + "=").hex()
    assert raw_hex not in dump


def test_only_a_change_waits_for_the_wal_flush(stack, device):
    """ddns_apply_request commits lazily (synchronous_commit off) when the
    request changed no record, and durably when it changed one."""
    creds, path = device
    assert stack.client(path, "--ipv4", "192.0.2.121").returncode == 0
    call = ("SELECT string_agg(result, ',') FROM ddns_apply_request('{dev}', '{kid}', {gen}, "
            "{ts}, '{ip}', NULL, '127.0.0.1', NULL, false, 0); SHOW synchronous_commit")
    ts = int(stack.psql("SELECT last_ts FROM devices WHERE device_id = '%s'"
                        % creds["device_id"])[0][0]) + 1
    kid, gen = ddnsstack.key_id(creds), ddnsstack.generation(creds)
    same = call.format(dev=creds["device_id"], kid=kid, gen=gen, ts=ts, ip="192.0.2.121")
    assert stack.psql(same) == [["nochg"], ["off"]]
    changed = call.format(dev=creds["device_id"], kid=kid, gen=gen, ts=ts + 1, ip="192.0.2.122")
    assert stack.psql(changed) == [["good"], ["on"]]
    assert stack.psql("SELECT host(ipv4) FROM names WHERE device_id = '%s'"
                      % creds["device_id"]) == [["192.0.2.122"]]
    assert stack.wait_dns(creds["fqdn"], "A", ["192.0.2.122"]) == ["192.0.2.122"]


def test_the_gateway_wakes_the_publishers_after_a_change(stack, device):
    """ddns_apply_request (like ddns_apply_batch) does not NOTIFY ddns_outbox
    (the gateway's changes commit without the NOTIFY lock); the gateway
    sends the NOTIFY itself once the change committed."""
    creds, path = device
    assert stack.client(path, "--ipv4", "192.0.2.130").returncode == 0
    listener = subprocess.Popen(["psql", "-X", "-q", "-At", stack.conninfo], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        listener.stdin.write("LISTEN ddns_outbox;\nSELECT 'listening';\n")
        listener.stdin.flush()
        assert listener.stdout.readline().strip() == "listening"
        ts = int(stack.psql("SELECT last_ts FROM devices WHERE device_id = '%s'"
                            % creds["device_id"])[0][0]) + 1
        assert stack.psql("SELECT result FROM ddns_apply_request('%s', '%s', %d, %d, "
                          "'192.0.2.131', NULL, '127.0.0.1', NULL, false, 0)"
                          % (creds["device_id"], ddnsstack.key_id(creds),
                             ddnsstack.generation(creds), ts)) == [["good"]]
        time.sleep(2)   # a NOTIFY of that commit would have arrived by now (and
                        # the client's next ts is past the one used here)
        listener.stdin.write("SELECT 'quiet';\nSELECT 'still';\n")
        listener.stdin.flush()
        # a notification would be printed after the first of these
        assert [listener.stdout.readline().strip() for _ in range(2)] == ["quiet", "still"]
        assert stack.wait_dns(creds["fqdn"], "A", ["192.0.2.131"]) == ["192.0.2.131"]
        assert stack.client(path, "--ipv4", "192.0.2.132").returncode == 0
        assert stack.wait_dns(creds["fqdn"], "A", ["192.0.2.132"]) == ["192.0.2.132"]
        time.sleep(0.5)
        out, _ = listener.communicate("SELECT 'after';\n", timeout=20)
    finally:
        if listener.poll() is None:
            listener.kill()
    lines = out.splitlines()
    assert "after" in lines, out
    # the client's change: at least one notification, sent by a gateway connection
    assert any(l.startswith('Asynchronous notification "ddns_outbox"') for l in lines), out


def test_migrate_is_idempotent_and_refuses_newer_schema(stack):
    stack.psql("DROP DATABASE IF EXISTS ddns_migrate_test")
    stack.psql("CREATE DATABASE ddns_migrate_test")
    conninfo = stack.conninfo.replace("dbname=ddns", "dbname=ddns_migrate_test")
    migrate = os.path.join(ddnsstack.ROOT, "db", "migrate")
    numbers = [int(f[:4]) for f in os.listdir(os.path.join(ddnsstack.ROOT, "db", "migrations"))
               if re.match(r"\d{4}_.*\.sql$", f)]
    latest = max(numbers)
    first = ddnsstack.run([migrate, conninfo])
    assert first.stdout.endswith("%d migration(s) applied, schema version %d\n"
                                 % (len(numbers), latest))
    again = ddnsstack.run([migrate, conninfo])
    assert "0 migration(s) applied, schema version %d" % latest in again.stdout
    ddnsstack.run(["psql", "-X", "-q", conninfo, "-c",
                   "INSERT INTO schema_version (version, name) VALUES (99, '0099_future')"])
    newer = ddnsstack.run([migrate, conninfo], check=False)
    assert newer.returncode == 1
    assert "newer than the newest migration here" in newer.stderr
    stack.psql("DROP DATABASE ddns_migrate_test")


def test_the_unit_forbids_core_files():
    unit = open(os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "systemd",
                             "ddns-gateway.service")).read()
    assert re.search(r"^LimitCORE=0$", unit, re.M), "LimitCORE=0 missing from the unit"
