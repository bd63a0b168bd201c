#!/usr/bin/env python3
"""Start the whole DDNS system on loopback: PostgreSQL, Knot DNS and
ddns-gateway, in one state directory.

Used by the integration tests (tests/integration/conftest.py) and by
`make run` (scripts/run-demo). Everything listens on 127.0.0.1 only; every
process is stopped by stop(). Running as root, PostgreSQL runs as the
unprivileged 'postgres' user (initdb refuses root).

  python3 tests/integration/ddnsstack.py demo [--state-dir DIR]
"""
import argparse
import base64
import contextlib
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("DDNS_BIN", os.path.join(ROOT, "build", "bin"))
ZONE = "ddns.example.test"
TSIG_NAME = "ddns-update"


def free_port():
    """A TCP port that is free on 127.0.0.1 now (also free for UDP)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port on 127.0.0.1")


def port_in_use(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def pg_bindir():
    cands = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]))
    if not cands:
        raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql "
                           "(install the 'postgresql' package: scripts/install-deps)")
    return os.path.dirname(cands[-1])


def run(cmd, **kw):
    kw.setdefault("check", True)
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    try:
        return subprocess.run(cmd, **kw)
    except subprocess.CalledProcessError as e:
        raise RuntimeError("command failed (%d): %s\n%s%s" % (
            e.returncode, " ".join(cmd), e.stdout or "", e.stderr or "")) from None


def read_response(sock):
    """Reads one HTTP/1.1 response with a Content-Length from sock; returns
    (status, headers with lowercase names, body bytes)."""
    data = b""
    while True:
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0:
            head = data[:head_end].decode("latin-1")
            headers = {}
            for line in head.split("\r\n")[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            length = int(headers.get("content-length", "0"))
            if len(data) >= head_end + 4 + length:
                status = int(head.split(" ")[1])
                return status, headers, data[head_end + 4:head_end + 4 + length]
        chunk = sock.recv(65536)
        if not chunk:
            raise OSError("connection closed before a full response")
        data += chunk


class Stack:
    """One PostgreSQL + Knot DNS + gateway on loopback, in base_dir."""

    def __init__(self, base_dir, pg_port=None, dns_port=None, https_port=None, log=None):
        self.dir = os.path.abspath(base_dir)
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.pg_port = pg_port or free_port()
        self.dns_port = dns_port or free_port()
        self.https_port = https_port or free_port()
        self.admin_port = free_port()
        # What a test may change before start(): more listeners (after the
        # first, which is 127.0.0.1:https_port), lines of [gateway], and
        # sections appended to the file.
        self.more_listen = []
        self.gateway_extra = ""
        self.config_extra = ""
        self.tls_lines = None
        self.gateway_env = {}
        self.log = log or (lambda msg: None)
        self.procs = {}
        self.pg_data = os.path.join(self.dir, "pg", "data")
        self.pg_started = False
        self.key_dir = os.path.join(self.dir, "keys")
        self.ca_cert = os.path.join(self.dir, "tls", "ca.crt")
        self.gw_conf = os.path.join(self.dir, "gateway.conf")
        self.gw_log = os.path.join(self.dir, "gateway.log")
        self.conninfo = "host=127.0.0.1 port=%d dbname=ddns user=ddns" % self.pg_port

    # -- PostgreSQL ----------------------------------------------------------
    def _pg_user(self):
        return "postgres" if os.geteuid() == 0 else None

    def _as_pg(self, cmd):
        user = self._pg_user()
        return ["runuser", "-u", user, "--"] + cmd if user else cmd

    def start_postgres(self):
        bindir = pg_bindir()
        pgdir = os.path.dirname(self.pg_data)
        os.makedirs(pgdir, exist_ok=True)
        user = self._pg_user()
        if user:
            pw = pwd.getpwnam(user)
            os.chown(pgdir, pw.pw_uid, pw.pw_gid)
        fresh = not os.path.exists(os.path.join(self.pg_data, "PG_VERSION"))
        if fresh:
            self.log("initialising PostgreSQL cluster in %s" % self.pg_data)
            run(self._as_pg([os.path.join(bindir, "initdb"), "-D", self.pg_data, "-A", "trust",
                             "-U", "ddns", "-E", "UTF8", "--no-locale"]), cwd=pgdir)
        opts = ("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=on "
                "-c max_connections=100" % (self.pg_port, pgdir))
        run(self._as_pg([os.path.join(bindir, "pg_ctl"), "-D", self.pg_data, "-o", opts,
                         "-l", os.path.join(pgdir, "postgres.log"), "-w", "-t", "60", "start"]),
            cwd=pgdir)
        self.pg_started = True
        self.log("PostgreSQL listening on 127.0.0.1:%d" % self.pg_port)
        exists = run(["psql", "-X", "-At", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "ddns",
                      "-d", "postgres", "-c", "SELECT 1 FROM pg_database WHERE datname = 'ddns'"])
        if exists.stdout.strip() != "1":
            run(["createdb", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "ddns", "ddns"])
        out = run([os.path.join(ROOT, "db", "migrate"), self.conninfo])
        self.log(out.stdout.strip().splitlines()[-1])

    def psql(self, sql):
        """Runs one SQL statement, returns rows as lists of strings."""
        out = run(["psql", "-X", "-At", "-F", "\t", self.conninfo, "-c", sql])
        return [line.split("\t") for line in out.stdout.splitlines() if line]

    # -- Knot DNS ------------------------------------------------------------
    def start_knot(self):
        kdir = os.path.join(self.dir, "knot")
        os.makedirs(kdir, exist_ok=True)
        secret_file = os.path.join(self.dir, "tsig.secret")
        if not os.path.exists(secret_file):
            fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, (base64.b64encode(os.urandom(32)).decode() + "\n").encode())
            os.close(fd)
        with open(secret_file) as f:
            self.tsig_secret = f.read().strip()
        zone_file = os.path.join(kdir, ZONE + ".zone")
        if not os.path.exists(zone_file):
            with open(zone_file, "w") as f:
                f.write("$ORIGIN %s.\n$TTL 60\n"
                        "@ SOA ns1 hostmaster 1 3600 900 604800 60\n"
                        "@ NS ns1\nns1 A 127.0.0.1\n" % ZONE)
        conf = os.path.join(kdir, "knot.conf")
        with open(conf, "w") as f:
            f.write("""server:
    rundir: "{d}"
    listen: 127.0.0.1@{port}
    background-workers: 1
    udp-workers: 1
    tcp-workers: 1
database:
    storage: "{d}"
log:
  - target: stderr
    any: info
key:
  - id: {tsig}
    algorithm: hmac-sha256
    secret: {secret}
acl:
  - id: ddns-update
    key: {tsig}
    action: update
template:
  - id: default
    storage: "{d}"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: changes
zone:
  - domain: {zone}
    file: "{zone}.zone"
    acl: ddns-update
""".format(d=kdir, port=self.dns_port, tsig=TSIG_NAME, secret=self.tsig_secret, zone=ZONE))
        os.chmod(conf, 0o600)
        logf = open(os.path.join(kdir, "knotd.log"), "a")
        self.procs["knotd"] = subprocess.Popen(["knotd", "-c", conf], stdout=logf, stderr=logf,
                                               start_new_session=True)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.procs["knotd"].poll() is not None:
                raise RuntimeError("knotd exited; see %s/knotd.log" % kdir)
            if self.dig(ZONE, "SOA", quiet=True):
                self.log("Knot DNS serving %s on 127.0.0.1:%d" % (ZONE, self.dns_port))
                return
            time.sleep(0.1)
        raise RuntimeError("knotd did not answer for %s; see %s/knotd.log" % (ZONE, kdir))

    def dig(self, name, rrtype="A", quiet=False):
        """Asks Knot directly; returns the answer's record data, sorted."""
        try:
            out = subprocess.run(["dig", "+short", "+time=1", "+tries=1", "-p", str(self.dns_port),
                                  "@127.0.0.1", name, rrtype],
                                 capture_output=True, text=True, timeout=5)
        except subprocess.TimeoutExpired:
            return []
        if out.returncode != 0:
            if quiet:
                return []
            raise RuntimeError("dig failed: %s" % out.stderr)
        return sorted(line for line in out.stdout.splitlines() if line and not line.startswith(";"))

    def wait_dns(self, name, rrtype, want, timeout=10.0):
        """Polls Knot until the answer equals want (a sorted list); returns the last answer."""
        deadline = time.time() + timeout
        got = None
        while time.time() < deadline:
            got = self.dig(name, rrtype)
            if got == want:
                return got
            time.sleep(0.05)
        return got

    # -- keys, TLS, gateway --------------------------------------------------
    def make_keys(self, kid="k1"):
        if not os.path.exists(os.path.join(self.key_dir, kid + ".key")):
            out = run([os.path.join(BIN, "ddns-provision"), "keygen", "--kid", kid,
                       "--key-dir", self.key_dir])
            self.log(out.stdout.strip())

    def make_tls(self):
        tdir = os.path.join(self.dir, "tls")
        if os.path.exists(os.path.join(tdir, "server.crt")):
            return
        os.makedirs(tdir, exist_ok=True)
        os.chmod(tdir, 0o700)
        j = lambda n: os.path.join(tdir, n)
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-subj", "/CN=DDNS demo CA", "-days", "3650", "-keyout", j("ca.key"),
             "-out", j("ca.crt"), "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-subj", "/CN=localhost", "-keyout", j("server.key"), "-out", j("server.csr")])
        with open(j("server.ext"), "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n"
                    "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
        run(["openssl", "x509", "-req", "-in", j("server.csr"), "-CA", j("ca.crt"),
             "-CAkey", j("ca.key"), "-CAcreateserial", "-days", "825", "-extfile", j("server.ext"),
             "-out", j("server.crt")])

    def write_gateway_config(self, extra=None, tls=None):
        """Writes gateway.conf; extra defaults to self.config_extra, tls (the
        lines of [tls]) to the demo certificate."""
        extra = self.config_extra if extra is None else extra
        listen = ", ".join(["127.0.0.1:%d" % self.https_port] + list(self.more_listen))
        tls = tls or self.tls_lines or ("certificate = %s/tls/server.crt\nprivate_key = %s/tls/server.key\n"
                      % (self.dir, self.dir))
        with open(self.gw_conf, "w") as f:
            f.write("""# ddns-gateway configuration written by tests/integration/ddnsstack.py
[gateway]
listen = {listen}
clock_skew = 300
log_level = info
{gateway_extra}

[tls]
{tls}
[database]
conninfo = {conninfo}
pool_size = 4

[keys]
directory = {keys}

[admin]
listen = 127.0.0.1:{admin}

[zone {zone}]
primary = 127.0.0.1:{dns}
tsig_key_name = {tsig}
tsig_algorithm = hmac-sha256
tsig_secret_file = {d}/tsig.secret
default_ttl = 60
{extra}""".format(admin=self.admin_port, listen=listen, gateway_extra=self.gateway_extra,
                  tls=tls, d=self.dir, conninfo=self.conninfo, keys=self.key_dir,
                  zone=ZONE, dns=self.dns_port, tsig=TSIG_NAME, extra=extra))

    def start_gateway(self):
        logf = open(self.gw_log, "a")
        p = subprocess.Popen([os.path.join(BIN, "ddns-gateway"), "-c", self.gw_conf],
                             stdout=logf, stderr=logf, start_new_session=True,
                             env=dict(os.environ, **self.gateway_env))
        self.procs["gateway"] = p
        deadline = time.time() + 20
        ctx = self.tls_context()
        while time.time() < deadline:
            if p.poll() is not None:
                raise RuntimeError("ddns-gateway exited with %d; log:\n%s" % (p.returncode, self.gateway_log()))
            try:
                status, body = self.https_request(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n"
                                                  b"Connection: close\r\n\r\n", ctx=ctx)
                if status == 200:
                    self.log("ddns-gateway serving https://localhost:%d" % self.https_port)
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("ddns-gateway did not become healthy; log:\n%s" % self.gateway_log())

    def admin_get(self, path, timeout=10):
        """GET on the plain-HTTP admin listener; returns (status, headers, body text)."""
        with socket.create_connection(("127.0.0.1", self.admin_port), timeout=timeout) as s:
            s.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                       % path).encode())
            status, headers, body = read_response(s)
            return status, headers, body.decode()

    def metrics(self):
        """The admin /metrics samples as {'name{labels}': float}."""
        status, _, body = self.admin_get("/metrics")
        assert status == 200, body
        out = {}
        for line in body.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                out[key] = float(value)
        return out

    def gateway_log(self):
        try:
            with open(self.gw_log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def tls_context(self):
        ctx = ssl.create_default_context(cafile=self.ca_cert)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx

    def https_request(self, raw, ctx=None, timeout=10, **kw):
        """Sends raw request bytes over TLS; returns (status, body bytes)."""
        status, _, body = self.https_exchange(raw, ctx=ctx, timeout=timeout, **kw)
        return status, body

    def https_exchange(self, raw, ctx=None, timeout=10, host="127.0.0.1", port=None,
                       prefix=b"", session=None, info=None, source=None):
        """Sends prefix (sent in clear before TLS, e.g. a PROXY header), then
        raw request bytes over TLS; returns (status, headers with lowercase
        names, body bytes). info: a dict that receives the TLS session, whether
        it was reused, the version and the server certificate (DER)."""
        ctx = ctx or self.tls_context()
        src = (source, 0) if source else None
        with socket.create_connection((host, port or self.https_port), timeout=timeout,
                                      source_address=src) as s:
            if prefix:
                s.sendall(prefix)
            with ctx.wrap_socket(s, server_hostname="localhost", session=session) as t:
                t.sendall(raw)
                status, headers, body = read_response(t)
                if info is not None:
                    info.update(session=t.session, reused=t.session_reused,
                                version=t.version(), cert=t.getpeercert(binary_form=True))
                return status, headers, body

    # -- devices -------------------------------------------------------------
    def provision(self, mac, name=None, extra=()):
        cmd = [os.path.join(BIN, "ddns-provision"), "issue", "--mac", mac, "--zone", ZONE,
               "--key-dir", self.key_dir, "--db", self.conninfo] + list(extra)
        if name:
            cmd += ["--name", name]
        out = run(cmd)
        return json.loads(out.stdout)

    def write_credentials(self, creds, path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(creds) + "\n")
        return path

    def client(self, cred_file, *args):
        """Runs ddns-client; returns the CompletedProcess."""
        cmd = [os.path.join(BIN, "ddns-client"), "--server", "localhost:%d" % self.https_port,
               "--ca", self.ca_cert, "--credentials", cred_file] + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30)

    # -- lifecycle -----------------------------------------------------------
    def start(self):
        self.start_postgres()
        self.start_knot()
        self.make_keys()
        self.make_tls()
        self.write_gateway_config()
        self.start_gateway()

    def stop_process(self, name, timeout=10):
        """Stops a process with SIGTERM; returns its exit status (None if not running)."""
        p = self.procs.pop(name, None)
        if p is None:
            return None
        if p.poll() is not None:
            return p.returncode
        p.send_signal(signal.SIGTERM)
        try:
            return p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            return p.wait()

    def stop(self):
        """Stops everything; returns the gateway's exit status."""
        gateway_rc = self.stop_process("gateway")
        self.stop_process("knotd")
        if self.pg_started:
            subprocess.run(self._as_pg([os.path.join(pg_bindir(), "pg_ctl"), "-D", self.pg_data,
                                        "-m", "fast", "-w", "stop"]),
                           capture_output=True, cwd=os.path.dirname(self.pg_data))
            self.pg_started = False
        return gateway_rc


@contextlib.contextmanager
def started(prefix, label, configure=None):
    """A whole stack in a new temporary directory for a test fixture. On exit
    the gateway must have stopped cleanly (exit 0, no sanitizer report in its
    log, which catches test-asan findings); the directory is removed unless
    DDNS_KEEP_TMP is set."""
    import tempfile
    base = tempfile.mkdtemp(prefix=prefix)
    s = Stack(base, log=lambda m: print("[%s] %s" % (label, m)))
    if configure is not None:
        configure(s)
    try:
        s.start()
    except Exception:
        s.stop()
        raise
    yield s
    rc = s.stop()
    log = s.gateway_log()
    assert rc == 0, "ddns-gateway exited with %r; log:\n%s" % (rc, log[-4000:])
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        assert marker not in log, "sanitizer report in the gateway log:\n" + log[-4000:]
    if os.environ.get("DDNS_KEEP_TMP"):
        print("kept %s" % base)
    else:
        shutil.rmtree(base, ignore_errors=True)


def demo(args):
    state = os.path.abspath(args.state_dir)
    say = lambda msg: print("[run] " + msg, flush=True)
    ports = {"pg_port": args.pg_port, "dns_port": args.dns_port, "https_port": args.https_port}
    for what, port in ports.items():
        if port_in_use(port):
            print("[run] port %d (%s) on 127.0.0.1 is in use: stop what holds it or choose "
                  "another with the DDNS_%s variable" % (port, what, what.upper()), file=sys.stderr)
            return 1
    stack = Stack(state, log=say, **ports)
    stopping = []

    def on_signal(signum, frame):
        stopping.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    # Ctrl-C stops the demo even when started from a shell that ignores SIGINT
    # for background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        stack.start()
        creds = stack.provision(args.mac, name=args.name)
        cred_file = stack.write_credentials(creds, os.path.join(state, "demo-device.json"))
        client = os.path.join(BIN, "ddns-client")
        print("""
The DDNS backend is running (state in {state}).

  gateway     https://localhost:{https}  (CA certificate {ca})
  admin       http://127.0.0.1:{admin}/metrics  (/healthz, /readyz)
  PostgreSQL  {conninfo}
  Knot DNS    127.0.0.1 port {dns}, zone {zone}
  gateway log {gwlog}

A demo device is provisioned: {dev} as {fqdn}
(credentials in {cred}).

Send an update as the device:

  {client} --server localhost:{https} --ca {ca} \\
      --credentials {cred} --ipv4 192.0.2.10

Ask the DNS server for the name:

  dig @127.0.0.1 -p {dns} {fqdn} A +short

Press Ctrl-C to stop everything.""".format(
            state=state, https=stack.https_port, admin=stack.admin_port, ca=stack.ca_cert, conninfo=stack.conninfo,
            dns=stack.dns_port, zone=ZONE, gwlog=stack.gw_log, dev=creds["device_id"],
            fqdn=creds["fqdn"], cred=cred_file, client=client), flush=True)
        while True:
            for name, p in list(stack.procs.items()):
                if p.poll() is not None:
                    say("%s exited with status %d; stopping" % (name, p.returncode))
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("", flush=True)
        return 0
    except RuntimeError as e:
        print("[run] error: %s" % e, file=sys.stderr)
        return 1
    finally:
        say("stopping gateway, Knot DNS and PostgreSQL")
        stack.stop()
        say("stopped")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="run the whole system with a demo device until Ctrl-C")
    d.add_argument("--state-dir", default=os.environ.get("DDNS_STATE_DIR", os.path.join(ROOT, "state")))
    d.add_argument("--pg-port", type=int, default=int(os.environ.get("DDNS_PG_PORT", "55432")))
    d.add_argument("--dns-port", type=int, default=int(os.environ.get("DDNS_DNS_PORT", "55353")))
    d.add_argument("--https-port", type=int, default=int(os.environ.get("DDNS_HTTPS_PORT", "8443")))
    d.add_argument("--mac", default="02:00:5e:10:00:01", help="MAC of the demo device")
    d.add_argument("--name", default="demo-camera", help="hostname label of the demo device")
    args = ap.parse_args()
    if args.cmd == "demo":
        sys.exit(demo(args))


if __name__ == "__main__":
    main()
