"""The dyndns2 endpoint GET /nic/update and the check-IP endpoints
(docs/PROTOCOL.md sections 10 and 12), through raw HTTPS requests and
curl, against the real gateway, PostgreSQL and Knot DNS.

Every answer is checked at the gateway (status and exact body), in the
database (history rows) and in DNS; every refusal is checked to change
nothing."""
import base64
import json
import os
import re
import subprocess
import time

import pytest

import ddnsstack

UA = "AcmeCam-X9/1.0.0"
ZONE = ddnsstack.ZONE
ERROR_WORDS = re.compile(r"ok|true|updated", re.I)


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def nic_update(stack, query, user=None, password=None, ua=UA, method="GET", version="1.1",
               host="localhost", port=None, auth=None, extra_headers=()):
    """Sends one /nic/update request; returns (status, body text, headers)."""
    lines = ["%s /nic/update%s HTTP/%s" % (method, "?" + query if query is not None else "",
                                           version)]
    if host is not None:
        lines.append("Host: " + host)
    if auth is None and user is not None:
        auth = basic(user, password)
    if auth is not None:
        lines.append("Authorization: " + auth)
    if ua is not None:
        lines.append("User-Agent: " + ua)
    lines += list(extra_headers)
    lines.append("Connection: close")
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode()
    status, body, headers = stack.https_request(raw, port=port, headers=True)
    return status, body.decode(), headers


def update(stack, creds, query, **kw):
    return nic_update(stack, query, creds["device_id"], creds["password"], **kw)


def history_count(stack, device_id):
    return int(stack.psql("SELECT count(*) FROM history WHERE device_id = '%s'" % device_id)[0][0])


def add_name(stack, creds, label):
    """Gives the device a second name; returns its FQDN."""
    stack.psql("INSERT INTO names (device_id, label, zone) VALUES ('%s', '%s', '%s')"
               % (creds["device_id"], label, ZONE))
    return "%s.%s" % (label, ZONE)


def assert_refusal(status, body, want):
    """An error answer: HTTP 200 (dyndns2), the exact line, and none of the
    words a lenient client takes for success."""
    assert (status, body) == (200, want + "\n")
    assert not ERROR_WORDS.search(body), body


def curl(stack, url_path, user=None, password=None, ua=UA, port=None):
    cmd = ["curl", "-sS", "--max-time", "20", "--cacert", stack.ca_cert, "-A", ua,
           "-w", "\n%{http_code}", "https://localhost:%d%s" % (port or stack.https_port, url_path)]
    if user is not None:
        cmd[1:1] = ["-u", "%s:%s" % (user, password)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    body, _, code = p.stdout.rpartition("\n")
    return int(code), body


def test_good_then_nochg_with_curl(stack, device):
    creds, _ = device
    fqdn = creds["fqdn"]
    path = "/nic/update?hostname=%s&myip=192.0.2.201" % fqdn
    assert curl(stack, path, creds["device_id"], creds["password"]) == (200, "good 192.0.2.201\n")
    assert stack.wait_dns(fqdn, "A", ["192.0.2.201"]) == ["192.0.2.201"]
    assert curl(stack, path, creds["device_id"], creds["password"]) == (200, "nochg 192.0.2.201\n")
    assert history_count(stack, creds["device_id"]) == 1


def test_http10_without_port_in_host_and_mac_forms(stack, device):
    creds, _ = device
    dev = creds["device_id"]
    fqdn = creds["fqdn"]
    status, body, _ = update(stack, creds, "hostname=%s&myip=192.0.2.202" % fqdn, version="1.0",
                             host="localhost")
    assert (status, body) == (200, "good 192.0.2.202\n")
    # the MAC in other forms names the same device; the name in any case
    hyphens = "-".join(dev[i:i + 2] for i in range(0, 12, 2)).upper()
    dotted = ".".join(dev[i:i + 4] for i in range(0, 12, 4))
    for user in (hyphens, dotted):
        status, body, _ = nic_update(stack, "hostname=%s.&myip=192.0.2.202" % fqdn.upper(), user,
                                     creds["password"], version="1.0", host=None)
        assert (status, body) == (200, "nochg 192.0.2.202\n")
    assert stack.wait_dns(fqdn, "A", ["192.0.2.202"]) == ["192.0.2.202"]


def test_ipv6_and_both_families(stack, device):
    creds, _ = device
    fqdn = creds["fqdn"]
    status, body, _ = update(stack, creds, "hostname=%s&myip=2001:DB8:0::203" % fqdn)
    assert (status, body) == (200, "good 2001:db8::203\n")
    assert stack.wait_dns(fqdn, "AAAA", ["2001:db8::203"]) == ["2001:db8::203"]
    assert stack.dig(fqdn, "A") == []
    status, body, _ = update(stack, creds, "hostname=%s&myip=192.0.2.203,2001:db8::203" % fqdn)
    assert (status, body) == (200, "good 192.0.2.203,2001:db8::203\n")
    assert stack.wait_dns(fqdn, "A", ["192.0.2.203"]) == ["192.0.2.203"]
    assert stack.wait_dns(fqdn, "AAAA", ["2001:db8::203"]) == ["2001:db8::203"]
    # an IPv4-mapped address is an IPv4 address; %2C is the comma encoded
    status, body, _ = update(stack, creds, "hostname=%s&myip=::ffff:192.0.2.204%%2C2001:db8::203"
                             % fqdn)
    assert (status, body) == (200, "good 192.0.2.204,2001:db8::203\n")
    assert stack.wait_dns(fqdn, "A", ["192.0.2.204"]) == ["192.0.2.204"]


def test_without_myip_the_connection_address(stack, device):
    creds, _ = device
    status, body, _ = update(stack, creds, "hostname=%s" % creds["fqdn"])
    assert (status, body) == (200, "good 127.0.0.1\n")
    assert stack.wait_dns(creds["fqdn"], "A", ["127.0.0.1"]) == ["127.0.0.1"]


def test_several_hosts_one_line_each_in_order(stack, device):
    creds, _ = device
    second = add_name(stack, creds, "cam2-" + creds["device_id"])
    other = stack.provision("02:00:00:ee:d2:01")
    hosts = [creds["fqdn"], "nosuchname." + ZONE, second, other["fqdn"], "localhost",
             creds["fqdn"]]
    status, body, _ = update(stack, creds, "hostname=%s&myip=198.51.100.205&wildcard=ON&mx="
                             "mail.example.com&backmx=NO&system=dyndns" % ",".join(hosts))
    assert status == 200
    assert body.splitlines() == ["good 198.51.100.205", "nohost", "good 198.51.100.205",
                                 "nohost", "notfqdn", "good 198.51.100.205"]
    for name in (creds["fqdn"], second):
        assert stack.wait_dns(name, "A", ["198.51.100.205"]) == ["198.51.100.205"]
    assert stack.dig(other["fqdn"], "A") == []
    assert history_count(stack, other["device_id"]) == 0
    # no hostname at all: every name of the device, one line
    status, body, _ = update(stack, creds, "myip=198.51.100.206")
    assert (status, body) == (200, "good 198.51.100.206\n")
    for name in (creds["fqdn"], second):
        assert stack.wait_dns(name, "A", ["198.51.100.206"]) == ["198.51.100.206"]
    status, body, _ = update(stack, creds, "myip=198.51.100.206")
    assert (status, body) == (200, "nochg 198.51.100.206\n")


def test_notfqdn_and_numhost_change_nothing(stack, device):
    creds, _ = device
    for hosts, want in (("myhost", "notfqdn"), ("", "notfqdn"), ("a..%s" % ZONE, "notfqdn"),
                        ("-a.%s" % ZONE, "notfqdn"), ("a_b.%s" % ZONE, "notfqdn")):
        status, body, _ = update(stack, creds, "hostname=%s&myip=192.0.2.207" % hosts)
        assert_refusal(status, body, want)
    many = ",".join(["h%d.%s" % (i, ZONE) for i in range(20)] + [creds["fqdn"]])
    status, body, _ = update(stack, creds, "hostname=%s&myip=192.0.2.207" % many)
    assert_refusal(status, body, "numhost")
    assert history_count(stack, creds["device_id"]) == 0
    assert stack.dig(creds["fqdn"], "A") == []


def test_offline_removes_the_records(stack, device):
    creds, _ = device
    fqdn = creds["fqdn"]
    assert update(stack, creds, "hostname=%s&myip=192.0.2.208,2001:db8::208" % fqdn)[1] == \
        "good 192.0.2.208,2001:db8::208\n"
    assert stack.wait_dns(fqdn, "AAAA", ["2001:db8::208"]) == ["2001:db8::208"]
    status, body, _ = update(stack, creds, "hostname=%s&offline=YES" % fqdn)
    assert (status, body) == (200, "good\n")
    assert stack.wait_dns(fqdn, "A", []) == []
    assert stack.wait_dns(fqdn, "AAAA", []) == []
    rows = stack.psql("SELECT rrtype, coalesce(host(new_address), '-') FROM history "
                      "WHERE device_id = '%s' ORDER BY id" % creds["device_id"])
    assert rows[-2:] == [["A", "-"], ["AAAA", "-"]]
    assert update(stack, creds, "hostname=%s&offline=YES" % fqdn)[1] == "nochg\n"
    assert update(stack, creds, "hostname=%s&offline=NO&myip=192.0.2.209" % fqdn)[1] == \
        "good 192.0.2.209\n"
    assert stack.wait_dns(fqdn, "A", ["192.0.2.209"]) == ["192.0.2.209"]


def test_unknown_device_and_wrong_secret_answer_alike(stack, device, tmp_path):
    creds, _ = device
    fqdn = creds["fqdn"]
    query = "hostname=%s&myip=192.0.2.210" % fqdn
    other = stack.provision("02:00:00:ee:d2:02")
    unregistered = json.loads(ddnsstack.run([
        os.path.join(ddnsstack.BIN, "ddns-provision"), "show", "--mac", "02:00:00:dd:d2:03",
        "--key-dir", stack.key_dir]).stdout)
    secret = creds["password"].split(".", 1)[1]
    attempts = [
        (creds["device_id"], other["password"]),                     # wrong secret
        (unregistered["device_id"], unregistered["password"]),       # unknown device
        (creds["device_id"], "k9." + secret),                        # unknown key id
        (creds["device_id"], secret),                                # no key id
        (creds["device_id"], creds["password"][:-1]),                # truncated
        ("ff-ff-ff-ff-ff-ff", creds["password"]),                    # broadcast MAC
        ("camera", creds["password"]),                               # not a MAC
    ]
    answers = set()
    for user, password in attempts:
        status, body, headers = nic_update(stack, query, user, password)
        assert_refusal(status, body, "badauth")
        answers.add((status, body, tuple(sorted(k for k in headers if k not in
                                                ("date", "x-request-id")))))
    for auth in ("Bearer abc", "Basic !!!!", "Basic " + base64.b64encode(b"nocolon").decode()):
        status, body, _ = nic_update(stack, query, auth=auth)
        assert_refusal(status, body, "badauth")
    assert len(answers) == 1, answers
    # no Authorization header: a challenge, for clients that wait for one
    status, body, headers = nic_update(stack, query)
    assert (status, body) == (401, "badauth\n")
    assert headers["www-authenticate"].startswith("Basic realm=")
    assert history_count(stack, creds["device_id"]) == 0
    assert stack.dig(fqdn, "A") == []
    # the secrets never reach the log
    log = stack.gateway_log()
    for s in (creds["password"], other["password"], secret):
        assert s not in log


def test_revoked_device_is_badauth(stack, device):
    creds, _ = device
    stack.psql("UPDATE devices SET status = 'revoked' WHERE device_id = '%s'" % creds["device_id"])
    status, body, _ = update(stack, creds, "hostname=%s&myip=192.0.2.211" % creds["fqdn"])
    assert_refusal(status, body, "badauth")
    assert history_count(stack, creds["device_id"]) == 0


def test_badagent_for_method_missing_or_refused_user_agent(stack, device):
    creds, _ = device
    query = "hostname=%s&myip=192.0.2.212" % creds["fqdn"]
    for kw in ({"method": "POST"}, {"method": "PUT"}, {"ua": None}, {"ua": ""},
               {"ua": "AcmeCam-X1/9.9.9"}, {"ua": "acmecam-x2/1.0 (build 7)"},
               {"ua": "AcmeCam-X3/2.0.9"}, {"ua": "AcmeCam-X3/beta"},
               {"ua": "AcmeCam - X3 - 2.0"}):
        status, body, _ = update(stack, creds, query, **kw)
        assert_refusal(status, body, "badagent")
    assert history_count(stack, creds["device_id"]) == 0
    for ua in ("AcmeCam-X3/2.1.0", "AcmeCam - X3 - 2.10"):
        status, body, _ = update(stack, creds, query, ua=ua)
        assert (status, body) in ((200, "good 192.0.2.212\n"), (200, "nochg 192.0.2.212\n"))
    assert history_count(stack, creds["device_id"]) == 1


def test_malformed_query_is_badrequest(stack, device):
    creds, _ = device
    fqdn = creds["fqdn"]
    for query, field in (("hostname=%s&myip=192.0.2.300" % fqdn, "myip"),
                         ("hostname=%s&myip=192.0.2.1,192.0.2.2" % fqdn, "myip"),
                         ("hostname=%s&myip=a,b,c" % fqdn, "myip"),
                         ("hostname=%s&hostname=%s" % (fqdn, fqdn), "hostname"),
                         ("hostname=%s&offline=maybe" % fqdn, "offline"),
                         ("hostname=%s%%zz" % fqdn, "query"),
                         ("hostname=%s%%00" % fqdn, "query")):
        status, body, _ = update(stack, creds, query)
        assert_refusal(status, body, "badrequest " + field)
    assert history_count(stack, creds["device_id"]) == 0


def test_checkip_text_and_html(stack):
    assert curl(stack, "/checkip") == (200, "127.0.0.1\n")
    code, body = curl(stack, "/nic/checkip")
    assert code == 200
    assert body == ("<html><head><title>Current IP Check</title></head>"
                    "<body>Current IP Address: 127.0.0.1</body></html>\n")
    status, body, headers = stack.https_request(
        b"GET /nic/checkip HTTP/1.0\r\n\r\n", headers=True)
    assert status == 200 and headers["content-type"].startswith("text/html")
    status, body, headers = stack.https_request(b"POST /checkip HTTP/1.1\r\nHost: x\r\n"
                                                b"Content-Length: 0\r\n\r\n", headers=True)
    assert (status, body) == (405, b"badrequest method\n")
    assert headers["allow"] == "GET, HEAD"


def test_not_yours_rate_limit_and_database_failure(stack, device):
    """A gateway of its own on the same database: !yours enabled, and a
    minimum change interval of one hour."""
    creds, _ = device
    fqdn = creds["fqdn"]
    other = stack.provision("02:00:00:ee:d2:04")
    with stack.extra_gateway("dyn-limited", min_change_interval=3600,
                             extra="\n[dyndns2]\nnot_yours = yes\nmax_hosts = 3\n") as port:
        status, body, _ = update(stack, creds, "hostname=%s,%s&myip=192.0.2.213"
                                 % (fqdn, other["fqdn"]), port=port)
        assert body.splitlines() == ["good 192.0.2.213", "!yours"]
        assert not ERROR_WORDS.search(body.splitlines()[1])
        many = ",".join([fqdn] * 4)
        assert_refusal(*update(stack, creds, "hostname=%s" % many, port=port)[:2], "numhost")
        # a second change within the hour: abuse, nothing changes
        status, body, _ = update(stack, creds, "hostname=%s&myip=192.0.2.214" % fqdn, port=port)
        assert_refusal(status, body, "abuse")
        # the same address again is no change: allowed
        status, body, _ = update(stack, creds, "hostname=%s&myip=192.0.2.213" % fqdn, port=port)
        assert (status, body) == (200, "nochg 192.0.2.213\n")
        # the decision is the database's: the session's gateway has no limit,
        # and a change there counts here too
        assert update(stack, creds, "hostname=%s&myip=192.0.2.215" % fqdn)[1] == \
            "good 192.0.2.215\n"
        assert_refusal(*update(stack, creds, "hostname=%s&offline=YES" % fqdn, port=port)[:2],
                       "abuse")
        assert stack.wait_dns(fqdn, "A", ["192.0.2.215"]) == ["192.0.2.215"]
        # once the interval has passed, the change is accepted
        stack.psql("UPDATE devices SET last_change = now() - interval '3601 seconds' "
                   "WHERE device_id = '%s'" % creds["device_id"])
        status, body, _ = update(stack, creds, "hostname=%s&myip=192.0.2.216" % fqdn, port=port)
        assert (status, body) == (200, "good 192.0.2.216\n")
        assert stack.wait_dns(fqdn, "A", ["192.0.2.216"]) == ["192.0.2.216"]
    # a gateway whose database is unreachable answers 911
    dead = "host=127.0.0.1 port=%d dbname=ddns user=ddns connect_timeout=2" % ddnsstack.free_port()
    with stack.extra_gateway("dyn-nodb", conninfo=dead) as port:
        status, body, _ = update(stack, creds, "hostname=%s&myip=192.0.2.217" % fqdn, port=port)
        assert_refusal(status, body, "911")
    assert stack.dig(fqdn, "A") == ["192.0.2.216"]


def test_rate_limit_is_crossed_by_waiting(stack, device):
    creds, _ = device
    fqdn = creds["fqdn"]
    with stack.extra_gateway("dyn-2s", min_change_interval=2) as port:
        assert update(stack, creds, "hostname=%s&myip=192.0.2.218" % fqdn, port=port)[1] == \
            "good 192.0.2.218\n"
        status, body, _ = update(stack, creds, "hostname=%s&myip=192.0.2.219" % fqdn, port=port)
        if body == "abuse\n":
            time.sleep(2.05)
            status, body, _ = update(stack, creds, "hostname=%s&myip=192.0.2.219" % fqdn,
                                     port=port)
        assert (status, body) == (200, "good 192.0.2.219\n")
    assert stack.wait_dns(fqdn, "A", ["192.0.2.219"]) == ["192.0.2.219"]
    assert history_count(stack, creds["device_id"]) == 2
