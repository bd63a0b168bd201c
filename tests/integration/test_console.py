"""The web console (gateway/console/) served at /console/ on the admin
listener (gw_console): content types, caching, the Content-Security-Policy,
refusal of names outside the console's files; and the browser test
(tests/browser/console.test.mjs, headless Debian Chromium driven by
playwright-core) against the real gateway and admin API."""
import json
import os
import shutil
import socket
import subprocess

import pytest

import ddnsstack
from ddnsstack import ROOT, read_response

CONSOLE = os.path.join(ROOT, "gateway", "console")
BROWSER = os.path.join(ROOT, "tests", "browser")


def admin_request(port, method, target, headers=()):
    """One request on a plain-HTTP admin listener; (status, headers, body bytes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        head = "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n" % (method, target)
        head += "".join("%s: %s\r\n" % h for h in headers)
        s.sendall((head + "\r\n").encode())
        if method == "HEAD":
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            lines = data.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
            hdrs = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
            return int(lines[0].split(" ")[1]), hdrs, b""
        return read_response(s)


def get(stack, target, headers=(), method="GET"):
    return admin_request(stack.admin_port, method, target, headers)


def assert_security_headers(h):
    csp = h["content-security-policy"]
    for rule in ("default-src 'none'", "script-src 'self'", "style-src 'self'",
                 "connect-src 'self'", "frame-ancestors 'none'", "form-action 'none'",
                 "base-uri 'none'"):
        assert rule in csp, csp
    assert "unsafe" not in csp and "*" not in csp, csp
    assert h["x-content-type-options"] == "nosniff"
    assert h["x-frame-options"] == "DENY"
    assert h["referrer-policy"] == "no-referrer"


def test_index_page_and_headers(stack):
    status, h, body = get(stack, "/console/")
    assert status == 200, body
    assert h["content-type"] == "text/html; charset=utf-8"
    assert h["cache-control"] == "no-cache"
    assert_security_headers(h)
    assert body == open(os.path.join(CONSOLE, "index.html"), "rb").read()
    assert b'<script type="module" src="app.js">' in body
    # the same with a query string (the pages never need one, a link may carry one)
    assert get(stack, "/console/?x=1")[2] == body
    # /console without the slash moves to /console/
    status, h, _ = get(stack, "/console")
    assert (status, h["location"]) == (301, "/console/")


def test_every_console_file_is_served_with_its_type(stack):
    types = {"html": "text/html; charset=utf-8", "css": "text/css; charset=utf-8",
             "js": "text/javascript; charset=utf-8", "svg": "image/svg+xml"}
    names = sorted(os.listdir(CONSOLE))
    assert "app.js" in names and "style.css" in names
    for name in names:
        status, h, body = get(stack, "/console/" + name)
        assert status == 200, name
        assert h["content-type"] == types[name.rsplit(".", 1)[1]], name
        assert body == open(os.path.join(CONSOLE, name), "rb").read(), name
        assert_security_headers(h)


def test_etag_revalidation_and_head(stack):
    status, h, body = get(stack, "/console/app.js")
    etag = h["etag"]
    assert status == 200 and etag.startswith('"') and etag.endswith('"')
    status, h2, body2 = get(stack, "/console/app.js", [("If-None-Match", etag)])
    assert (status, body2, h2["etag"]) == (304, b"", etag)
    status, _, _ = get(stack, "/console/app.js", [("If-None-Match", '"other", W/' + etag)])
    assert status == 304
    status, _, body3 = get(stack, "/console/app.js", [("If-None-Match", '"other"')])
    assert (status, body3) == (200, body)
    status, h, _ = get(stack, "/console/app.js", method="HEAD")
    assert status == 200 and h["content-type"].startswith("text/javascript")
    assert int(h["content-length"]) == len(body)


@pytest.mark.parametrize("target", [
    "/console/../gateway.conf", "/console/..%2fgateway.conf", "/console/%2e%2e/gateway.conf",
    "/console/.hidden.js", "/console/./app.js", "/console//app.js", "/console/app.js/",
    "/console/README", "/console/app.js.orig", "/console/no-such-file.js",
    "/console/" + "a" * 65 + ".js", "/console/a/b/c/d/e.js", "/console/app%2ejs",
    "/console/app.js%00.html", "/consolex/index.html",
])
def test_names_outside_the_console_are_refused(stack, target):
    status, h, body = get(stack, target)
    assert (status, body) == (404, b"notfound\n"), target
    if target.startswith("/console/"):
        assert_security_headers(h)


def test_other_methods_are_refused(stack):
    for method in ("POST", "PUT", "DELETE"):
        status, h, body = get(stack, "/console/index.html", method=method)
        assert (status, h["allow"], body) == (405, "GET, HEAD", b"badrequest method\n")


def test_console_dir_is_configurable_and_links_are_not_followed(stack, tmp_path):
    """A gateway of its own with [admin] console_dir pointing elsewhere: it
    serves that directory's files, refuses a symbolic link to a file outside
    it, and a missing directory gives a warning and 404."""
    d = tmp_path / "console"
    d.mkdir()
    (d / "index.html").write_text("<!doctype html><title>other</title>\n")
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the console\n")
    os.symlink(str(secret), str(d / "leak.txt"))
    os.mkdir(str(d / "sub.js"))
    admin_port = ddnsstack.free_port()
    extra = "[admin]\nlisten = 127.0.0.1:%d\nconsole_dir = %s\n" % (admin_port, d)
    with stack.extra_gateway("console", extra=extra):
        status, _, body = admin_request(admin_port, "GET", "/console/")
        assert (status, body) == (200, b"<!doctype html><title>other</title>\n")
        assert admin_request(admin_port, "GET", "/console/leak.txt")[0] == 404
        assert admin_request(admin_port, "GET", "/console/sub.js")[0] == 404
        assert admin_request(admin_port, "GET", "/console/app.js")[0] == 404
    missing = tmp_path / "nowhere"
    conf = tmp_path / "check.conf"
    conf.write_text(stack.gateway_config_text(ddnsstack.free_port(), extra=(
        "[admin]\nlisten = 127.0.0.1:%d\nconsole_dir = %s\n" % (ddnsstack.free_port(), missing))))
    p = subprocess.run([os.path.join(ddnsstack.BIN, "ddns-gateway"), "-c", str(conf),
                        "--check-config"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "[admin] console_dir: %s is not a directory: /console/ answers 404" % missing \
        in p.stdout + p.stderr


# ---- the browser test --------------------------------------------------------------------

ARTIFACTS = os.path.join(ROOT, "build", "test-artifacts", "console")


def make_token(stack, scope):
    """A new admin API token of the given scope, made the way the first
    token is: `ddnsctl token create --db`; returns its text."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DDNSCTL_", "DDNS_DB"))}
    env["DDNSCTL_CONFIG"] = "/dev/null"
    p = subprocess.run([os.path.join(ddnsstack.BIN, "ddnsctl"), "token", "create", "--db",
                        stack.conninfo, "--scope", scope, "--comment", "browser test " + scope],
                       capture_output=True, text=True, timeout=30, env=env)
    assert p.returncode == 0, p.stderr
    token = p.stdout.strip()
    assert token.startswith("ddnsadm_"), p.stdout
    return token


def test_console_in_a_browser(stack, tmp_path):
    """Log in with a token, find a device by its MAC, revoke it (the gateway
    answers its next update 'disabled'), restore it (the next update is
    'good' and reaches DNS); the same pages on a phone-sized screen with a
    read-only token. Screenshots go to build/test-artifacts/console/."""
    node = shutil.which("node")
    assert node, "node is missing: run scripts/install-deps"
    assert os.path.exists(os.path.join(BROWSER, "node_modules", "playwright-core")), \
        "playwright-core is missing: run `make browser-deps` (npm ci in tests/browser)"
    assert os.path.exists("/usr/bin/chromium"), "chromium is missing: run scripts/install-deps"
    n = os.getpid() & 0xffff
    mac = "3c:5a:b4:%02x:%02x:21" % (n >> 8, n & 0xff)
    creds = stack.provision(mac, name="console-cam-%d" % n, extra=["--serial", "SNC%d" % n])
    cred_file = stack.write_credentials(creds, str(tmp_path / "device.json"))
    p = stack.client(cred_file, "--ipv4", "192.0.2.60")
    assert p.stdout.strip() == "good 192.0.2.60", p.stderr
    # a batch of 30 for the pages of the result table
    prefix = "PGC%d-" % n
    csv = "mac,serial,model\n" + "".join(
        "3c:5a:b5:%02x:%02x:%02x,%s%02d,AcmeCam-P%d\n" % (n >> 8, n & 0xff, i, prefix, i, n)
        for i in range(30))
    p = subprocess.run([os.path.join(ddnsstack.BIN, "ddns-provision"), "batch", "--csv", "-",
                        "--zone", ddnsstack.ZONE, "--key-dir", stack.key_dir, "--db",
                        stack.provision_conninfo, "--operator", "test_console"],
                       input=csv, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    cfg = {
        "paging_q": prefix,
        "url": "http://127.0.0.1:%d/console/" % stack.admin_port,
        "token": make_token(stack, "write"),
        "read_token": make_token(stack, "read"),
        "device_id": creds["device_id"],
        "mac": mac.upper().replace(":", "-"),        # typed as on a sticker
        "mac_display": mac.upper(),
        "fqdn": creds["fqdn"],
        "update": [os.path.join(ddnsstack.BIN, "ddns-client"),
                   "--server", "localhost:%d" % stack.https_port, "--ca", stack.ca_cert,
                   "--credentials", cred_file],
        "artifacts": ARTIFACTS,
    }
    p = subprocess.run([node, os.path.join(BROWSER, "console.test.mjs")], cwd=BROWSER,
                       env=dict(os.environ, CONSOLE_TEST=json.dumps(cfg)),
                       capture_output=True, text=True, timeout=400)
    print(p.stdout)
    assert p.returncode == 0 and " 0 failed" in p.stdout, p.stdout + p.stderr
    # what the browser did is in the database and in DNS
    dev = creds["device_id"]
    assert stack.psql("SELECT status FROM devices WHERE device_id = '%s'" % dev) == [["active"]]
    actions = stack.psql("SELECT action, source FROM admin_audit "
                         "WHERE device_id = '%s' ORDER BY audit_id" % dev)
    assert actions == [["revoke", "127.0.0.1"], ["restore", "127.0.0.1"]], actions
    assert stack.wait_dns(creds["fqdn"], "A", ["192.0.2.62"]) == ["192.0.2.62"]
    # the tokens never reached a log line (the console sends them in a header only)
    log = stack.gateway_log()
    assert cfg["token"] not in log and cfg["read_token"] not in log
    shots = sorted(os.listdir(ARTIFACTS))
    assert "desktop-5-revoked.png" in shots and "phone-2-device.png" in shots, shots
