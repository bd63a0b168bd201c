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
import random
import re
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
# What the stack's zone allows beyond globally reachable addresses: the
# documentation ranges of the tests and the demo, loopback (an update
# without an address publishes the connection's, 127.0.0.1 or ::1 here),
# and the load generator's ranges (bench/loadgen: 198.18.0.0/15, then
# 10.0.0.0/8 for nochg, 100.64.0.0/10 for change).
ZONE_ALLOW = ("192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32, 3fff::/20, "
              "127.0.0.0/8, ::1, 198.18.0.0/15, 10.0.0.0/8, 100.64.0.0/10")


def _own_environment():
    """What the user's shell may set that would send the stack's own
    loopback traffic elsewhere or change it: the daemons of Debian's
    packages live in /usr/sbin, which an ordinary user's PATH may lack; a
    proxy variable would route the clients' requests to 127.0.0.1 through
    a proxy; libpq's PG* variables (PGSSLMODE=require, PGSERVICE, ...) would
    change every connection to the stack's own PostgreSQL, which has no TLS."""
    path = os.environ.get("PATH", "/usr/bin:/bin").split(":")
    for d in ("/usr/sbin", "/sbin"):
        if d not in path:
            path.append(d)
    os.environ["PATH"] = ":".join(path)
    for var in ("no_proxy", "NO_PROXY"):
        have = [h for h in os.environ.get(var, "").split(",") if h]
        os.environ[var] = ",".join(have + [h for h in ("127.0.0.1", "localhost", "::1")
                                           if h not in have])
    for var in list(os.environ):
        if var.startswith("PG"):
            del os.environ[var]


_own_environment()


def raise_fd_limit(want=65536):
    """Raises this process's file descriptor limit (inherited by the
    servers and clients it starts) towards want: the soft limit up to the
    hard one, and the hard one too where the process may (root). Returns
    the soft limit now in force."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            with open("/proc/sys/fs/nr_open") as f:
                want = min(want, int(f.read()))
        except (OSError, ValueError):
            pass
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return want
        except (OSError, ValueError):
            pass
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return soft


def ephemeral_range():
    """The kernel's range of ports for sockets bound to port 0 (lo, hi)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_port():
    """A port free on 127.0.0.1 now for both TCP and UDP, outside the
    kernel's ephemeral range. A server's port must never be one the kernel
    may give a client of its own: dig's UDP sockets set SO_REUSEPORT, as
    Knot's and named's listening sockets do, so a dig whose source port is
    the DNS server's port shares it and can read its own query back as the
    answer (an empty NOERROR with "query response not set")."""
    lo, hi = ephemeral_range()
    spans = [(p, q) for p, q in ((10000, lo - 1), (hi + 1, 65535)) if q - p >= 1000]
    rnd = random.SystemRandom()
    for _ in range(200):
        if spans:
            p, q = rnd.choice(spans)
            port = rnd.randint(p, q)
        else:   # the ephemeral range takes every port: the kernel picks one
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", port))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port on 127.0.0.1")


def port_in_use(port, udp=False):
    """True if port on 127.0.0.1 is taken for TCP (and, with udp, for UDP)."""
    kinds = [socket.SOCK_STREAM] + ([socket.SOCK_DGRAM] if udp else [])
    for kind in kinds:
        with socket.socket(socket.AF_INET, kind) as s:
            if kind == socket.SOCK_STREAM:
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


def key_id(creds):
    """The key id of a credentials dict, whose kid is the key reference the
    device sends ("k1", or "k1/3" from generation 1 on)."""
    return creds["kid"].split("/", 1)[0]


def generation(creds):
    """The secret generation of a credentials dict (0 without a "/")."""
    return int(creds["kid"].split("/", 1)[1]) if "/" in creds["kid"] else 0


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


def stop_proc(procs, name, timeout):
    """Stops procs[name] with SIGTERM (SIGKILL after timeout seconds) and
    forgets it; returns its exit status, None if there is no such process."""
    p = procs.pop(name, None)
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


def admin_get(port, path, timeout=10):
    """GET on a plain-HTTP admin listener; returns (status, headers, body text)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                   % path).encode())
        status, headers, body = read_response(s)
        return status, headers, body.decode()


def admin_metrics(port):
    """The /metrics samples of an admin listener as {'name{labels}': float}."""
    status, _, body = admin_get(port, "/metrics")
    assert status == 200, body
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


# The login users of the programs' roles, as an operator makes them
# (docs/OPERATIONS.md, "Database roles"); the harness trusts loopback, so
# no password.
ROLE_LOGINS_SQL = """DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['gateway', 'provision', 'readonly'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ddns_' || r || '_login') THEN
            EXECUTE format('CREATE ROLE %I LOGIN IN ROLE %I', 'ddns_' || r || '_login',
                           'ddns_' || r);
        END IF;
    END LOOP;
END $$"""


class Stack:
    """One PostgreSQL + Knot DNS + gateway on loopback, in base_dir."""

    def __init__(self, base_dir, pg_port=None, dns_port=None, https_port=None, log=None,
                 dns_server="knot"):
        self.dir = os.path.abspath(base_dir)
        self.dns_server = dns_server   # "knot" (knotd) or "bind" (named)
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
        self.pool_size = 4
        self.database_extra = ""
        self.keys_extra = ""            # more lines of [keys]
        # more lines of [admin]; tests send wrong admin tokens from
        # 127.0.0.1 on purpose, so the admin API's limiter is off unless a
        # test sets it
        self.admin_extra = "auth_fail_limit = 0\n"
        self.config_extra = ""
        self.tls_lines = None
        # [zone] allow_addresses: the addresses the tests, the demo and the
        # load generator publish lie outside the default address policy
        # (docs/SECURITY.md); "" keeps the zone strict.
        self.zone_allow = ZONE_ALLOW
        self.keys_pkcs11 = None     # a token's URI for [keys] pkcs11 instead of the key directory
        self.gateway_env = {}
        # The zone's own hosts (label: IPv4 address) in the zone file; the DNS
        # server refuses every change to them made with the gateway's key.
        self.zone_hosts = {"ns1": "127.0.0.1"}
        self.log = log or (lambda msg: None)
        self.procs = {}
        self.pg_data = os.path.join(self.dir, "pg", "data")
        self.pg_started = False
        self.key_dir = os.path.join(self.dir, "keys")
        self.ca_cert = os.path.join(self.dir, "tls", "ca.crt")
        self.gw_conf = os.path.join(self.dir, "gateway.conf")
        self.gw_log = os.path.join(self.dir, "gateway.log")
        # The owner (migrations, and the tests' own looks at the tables), and
        # the login users of the programs, members of the roles db/migrate
        # makes (docs/OPERATIONS.md, "Database roles").
        self.conninfo = "host=127.0.0.1 port=%d dbname=ddns user=ddns" % self.pg_port
        self.gateway_conninfo = self.role_conninfo("gateway")
        self.provision_conninfo = self.role_conninfo("provision")
        self.readonly_conninfo = self.role_conninfo("readonly")

    def role_conninfo(self, role):
        """The conninfo of the login user of a program's role (gateway,
        provision, readonly), made by start_postgres."""
        return "host=127.0.0.1 port=%d dbname=ddns user=ddns_%s_login" % (self.pg_port, role)

    # -- PostgreSQL ----------------------------------------------------------
    def _pg_user(self):
        return "postgres" if os.geteuid() == 0 else None

    def _as_pg(self, cmd):
        user = self._pg_user()
        return ["runuser", "-u", user, "--"] + cmd if user else cmd

    def pg_home_dir(self):
        """Where the cluster lives when the 'postgres' user cannot reach the
        state directory (a checkout in root's 0700 home): a directory of
        that user's home named after the state directory."""
        import hashlib
        pw = pwd.getpwnam(self._pg_user())
        return os.path.join(pw.pw_dir, "ddns-state-" +
                            hashlib.sha256(self.dir.encode()).hexdigest()[:12])

    def start_postgres(self):
        bindir = pg_bindir()
        pgdir = os.path.dirname(self.pg_data)
        user = self._pg_user()
        if user:
            try:
                pw = pwd.getpwnam(user)
            except KeyError:
                raise RuntimeError("running as root, PostgreSQL runs as the user 'postgres', "
                                   "which does not exist: install the 'postgresql' package "
                                   "(scripts/install-deps) or run as an ordinary user") from None
            if not os.path.lexists(pgdir) and run(
                    ["runuser", "-u", user, "--", "test", "-x", self.dir], check=False).returncode:
                home = self.pg_home_dir()
                os.makedirs(home, exist_ok=True)
                os.symlink(home, pgdir)
                self.log("PostgreSQL runs as '%s', which cannot reach %s (a parent directory is "
                         "closed to others): its cluster is in %s, linked from %s"
                         % (user, self.dir, home, pgdir))
            if os.path.islink(pgdir) and not os.path.exists(pgdir):
                os.makedirs(os.readlink(pgdir))   # its target was removed: a new cluster
            os.makedirs(pgdir, exist_ok=True)
            os.chown(pgdir, pw.pw_uid, pw.pw_gid)
        else:
            os.makedirs(pgdir, exist_ok=True)
        # PostgreSQL is given the real path: the link may be on a path it cannot walk.
        pgdir = os.path.realpath(pgdir)
        self.pg_data = os.path.join(pgdir, "data")
        version_file = os.path.join(self.pg_data, "PG_VERSION")
        if os.path.exists(version_file):
            with open(version_file) as f:
                have = f.read().strip()
            mine = os.path.basename(os.path.dirname(bindir))
            if have != mine:
                raise RuntimeError(
                    "%s holds a PostgreSQL %s cluster and this machine runs PostgreSQL %s: move "
                    "%s away (or choose another state directory) to start afresh, or upgrade "
                    "the cluster with pg_upgrade" % (self.pg_data, have, mine, self.dir))
        else:
            self.log("initialising PostgreSQL cluster in %s" % self.pg_data)
            run(self._as_pg([os.path.join(bindir, "initdb"), "-D", self.pg_data, "-A", "trust",
                             "-U", "ddns", "-E", "UTF8", "--no-locale"]), cwd=pgdir)
        # The Unix socket (clients here use TCP) must fit in sun_path's 108
        # bytes: a deep state directory gets a short one in /tmp instead.
        sock_dir = pgdir
        if len(os.path.join(pgdir, ".s.PGSQL.%d.lock" % self.pg_port)) > 100:
            import tempfile
            sock_dir = self.pg_sock_tmp = tempfile.mkdtemp(prefix="ddns-pg-")
            os.chmod(sock_dir, 0o755)
            if user:
                os.chown(sock_dir, pw.pw_uid, pw.pw_gid)
        opts = ("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=on "
                "-c max_connections=100" % (self.pg_port, sock_dir))
        run(self._as_pg([os.path.join(bindir, "pg_ctl"), "-D", self.pg_data, "-o", opts,
                         "-l", os.path.join(pgdir, "postgres.log"), "-w", "-t", "60", "start"]),
            cwd=pgdir)
        self.pg_started = True
        self.log("PostgreSQL listening on 127.0.0.1:%d" % self.pg_port)
        exists = run(["psql", "-X", "-At", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "ddns",
                      "-d", "postgres", "-c", "SELECT 1 FROM pg_database WHERE datname = 'ddns'"])
        if exists.stdout.strip() != "1":
            run(["createdb", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "ddns", "ddns"])
        out = run([os.path.join(ROOT, "db", "migrate"), self.conninfo], check=False)
        if out.returncode != 0 and "newer than the newest migration" in out.stderr:
            raise RuntimeError(
                "%s\nThe database in %s was written by a newer version of this project. Run that "
                "version, or move %s away (or choose another state directory) to start from a "
                "fresh state." % (out.stderr.strip(), self.pg_data, self.dir))
        if out.returncode != 0:
            raise RuntimeError("db/migrate failed (%d):\n%s%s" % (out.returncode, out.stdout,
                                                                   out.stderr))
        self.log(out.stdout.strip().splitlines()[-1])
        self.psql(ROLE_LOGINS_SQL)

    def stop_postgres(self):
        """Stops PostgreSQL (fast shutdown: open sessions are cut)."""
        run(self._as_pg([os.path.join(pg_bindir(), "pg_ctl"), "-D", self.pg_data,
                         "-m", "fast", "-w", "stop"]), cwd=os.path.dirname(self.pg_data))
        self.pg_started = False
        if getattr(self, "pg_sock_tmp", None):
            shutil.rmtree(self.pg_sock_tmp, ignore_errors=True)
            self.pg_sock_tmp = None

    def outbox_empty(self, timeout=10):
        """Waits until the DNS outbox is empty; True if it became so."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.psql("SELECT count(*) FROM dns_outbox") == [["0"]]:
                return True
            time.sleep(0.05)
        return False

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
        self._zone_file(os.path.join(kdir, ZONE + ".zone"))
        conf = os.path.join(kdir, "knot.conf")
        # knotd binds its control socket (unused here) in rundir; a deep
        # state directory gets a short rundir in /tmp, as sun_path holds
        # 108 bytes.
        rundir = kdir
        if len(os.path.join(kdir, "knot.sock")) > 100:
            import tempfile
            rundir = self.knot_rundir_tmp = tempfile.mkdtemp(prefix="ddns-knot-")
        with open(conf, "w") as f:
            f.write("""server:
    rundir: "{rundir}"
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
  - id: ddns-reserved
    key: {tsig}
    action: update
    update-owner: name
    update-owner-match: equal
    update-owner-name: [{hosts}]
    deny: on
  - id: ddns-update
    key: {tsig}
    action: update
    update-type: [A, AAAA]
    update-owner: zone
    update-owner-match: sub
  - id: ddns-transfer
    key: {tsig}
    action: transfer
template:
  - id: default
    storage: "{d}"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: changes
zone:
  - domain: {zone}
    file: "{zone}.zone"
    acl: [ddns-reserved, ddns-update, ddns-transfer]
""".format(d=kdir, rundir=rundir, port=self.dns_port, tsig=TSIG_NAME, secret=self.tsig_secret,
           zone=ZONE, hosts=", ".join(sorted(self.zone_hosts))))
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

    def _zone_file(self, path):
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write("$ORIGIN %s.\n$TTL 60\n"
                        "@ SOA ns1 hostmaster 1 3600 900 604800 60\n"
                        "@ NS ns1\n" % ZONE)
                f.write("".join("%s A %s\n" % h for h in sorted(self.zone_hosts.items())))

    @staticmethod
    def named_confined():
        """The reason BIND cannot run on the harness's files here, or None.
        Debian's bind9 ships an AppArmor profile that keeps named to
        /etc/bind and /var/cache/bind; where AppArmor enforces it (many
        Debian and Ubuntu hosts, not containers), named cannot read a
        configuration in a temporary directory."""
        try:
            with open("/sys/kernel/security/apparmor/profiles") as f:
                profiles = f.read().splitlines()
        except OSError:
            return None
        for line in profiles:
            if re.match(r"^(/usr/sbin/named|named) \(enforce\)", line):
                return ("AppArmor enforces the profile '%s' on named, which keeps it to /etc/bind "
                        "and /var/cache/bind: it cannot read the test's configuration (aa-complain "
                        "/usr/sbin/named lets it)" % line.split(" (")[0])
        return None

    def start_bind(self):
        """BIND 9 (named) as the zone's primary: the configuration
        docs/DNS-SERVERS.md shows, on loopback."""
        bdir = os.path.join(self.dir, "bind")
        os.makedirs(bdir, exist_ok=True)
        if not hasattr(self, "tsig_secret"):
            self.tsig_secret = base64.b64encode(os.urandom(32)).decode()
            fd = os.open(os.path.join(self.dir, "tsig.secret"),
                         os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.write(fd, (self.tsig_secret + "\n").encode())
            os.close(fd)
        self._zone_file(os.path.join(bdir, ZONE + ".zone"))
        conf = os.path.join(bdir, "named.conf")
        with open(conf, "w") as f:
            f.write("""options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
}};
controls {{ }};
key "{tsig}" {{
    algorithm hmac-sha256;
    secret "{secret}";
}};
zone "{zone}" {{
    type primary;
    file "{zone}.zone";
    update-policy {{
        deny {tsig} name {zone}. ANY;
{deny}        grant {tsig} subdomain {zone}. A AAAA;
    }};
    allow-transfer {{ key "{tsig}"; }};
}};
""".format(d=bdir, port=self.dns_port, tsig=TSIG_NAME, secret=self.tsig_secret, zone=ZONE,
           deny="".join("        deny %s name %s.%s. ANY;\n" % (TSIG_NAME, h, ZONE)
                        for h in sorted(self.zone_hosts))))
        os.chmod(conf, 0o600)
        logf = open(os.path.join(bdir, "named.log"), "a")
        self.procs["named"] = subprocess.Popen(["named", "-g", "-4", "-c", conf], stdout=logf,
                                               stderr=logf, start_new_session=True)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.procs["named"].poll() is not None:
                raise RuntimeError("named exited; see %s/named.log" % bdir)
            if self.dig(ZONE, "SOA", quiet=True):
                self.log("BIND 9 serving %s on 127.0.0.1:%d" % (ZONE, self.dns_port))
                return
            time.sleep(0.1)
        raise RuntimeError("named did not answer for %s; see %s/named.log" % (ZONE, bdir))

    def start_dns(self):
        if self.dns_server == "bind":
            self.start_bind()
        else:
            self.start_knot()

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
    def make_keys(self, kid=None):
        """Creates the master key kid unless it exists. Without kid: k1 when
        the key directory holds no key at all (keys added or retired since
        are the directory's own business; a retired k1 is not made again,
        the new key gets keygen's dated id instead)."""
        keygen = [os.path.join(BIN, "ddns-provision"), "keygen", "--key-dir", self.key_dir]
        if kid is not None:
            if os.path.exists(os.path.join(self.key_dir, kid + ".key")):
                return
            keygen += ["--kid", kid]
        else:
            if glob.glob(os.path.join(self.key_dir, "*.key")):
                return
            if not os.path.exists(os.path.join(self.key_dir, "retired", "k1.key")):
                keygen += ["--kid", "k1"]
        self.log(run(keygen).stdout.strip())

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

    # The tests update devices several times a second, so the session's
    # gateway has no rate limit; tests of the limit start a gateway of their
    # own (extra_gateway) on the same database. The firmware rules name
    # models no client of the tests sends.
    GATEWAY_DEFAULTS = """
[limits]
min_change_interval = {interval}
{limits}
[firmware]
blocked_models = {blocked}
minimum_versions = {minimum}
signed_only_models = {signed_only}
"""
    FIRMWARE_BLOCKED = "AcmeCam-X1, AcmeCam-X2"
    FIRMWARE_MINIMUM = "AcmeCam-X3/2.1.0"
    FIRMWARE_SIGNED_ONLY = "AcmeCam-S1"

    # Many tests send wrong credentials from 127.0.0.1 on purpose, so the
    # failed-authentication limiter is off unless a test's extra sections
    # set it (test_hardening crosses it); and many send bursts of one
    # device's requests, so the device budget is off too unless set
    # (test_budget crosses it).
    LIMIT_DEFAULTS = {"auth_fail_limit": "0", "device_rate": "0"}

    def _default_limits(self, extra):
        return "".join("%s = %s\n" % (k, v) for k, v in self.LIMIT_DEFAULTS.items()
                       if not re.search(r"^%s\s*=" % k, extra or "", re.M))

    def gateway_config_text(self, https_port, conninfo=None, min_change_interval=0, extra=None,
                            blocked=FIRMWARE_BLOCKED, minimum=FIRMWARE_MINIMUM, tls=None,
                            main=False, keys_extra=None, signed_only=FIRMWARE_SIGNED_ONLY):
        """The configuration of the stack's gateway (main: its listeners,
        [gateway] lines, [admin] listener and sections of more_listen,
        gateway_extra, admin_port and config_extra) or of another gateway
        on https_port. extra: more sections, after the defaults ([limits],
        [firmware]); for the main gateway it defaults to config_extra.
        keys_extra: more lines of [keys] (default: self.keys_extra)."""
        keys_extra = self.keys_extra if keys_extra is None else keys_extra
        if main:
            extra = self.config_extra if extra is None else extra
            listen = ", ".join(["127.0.0.1:%d" % https_port] + list(self.more_listen))
            admin = "[admin]\nlisten = 127.0.0.1:%d\nconsole_dir = %s\n%s\n" % (
                self.admin_port, os.path.join(ROOT, "gateway", "console"), self.admin_extra)
            gateway_extra = self.gateway_extra
            if not re.search(r"^workers\s*=", gateway_extra, re.M):
                # several event loops everywhere, whatever the machine's CPUs
                gateway_extra = "workers = 2\n" + gateway_extra
        else:
            extra = extra or ""
            listen = "127.0.0.1:%d" % https_port
            admin = gateway_extra = ""
        tls = tls or self.tls_lines or ("certificate = %s/tls/server.crt\nprivate_key = %s/tls/server.key\n"
                                        % (self.dir, self.dir))
        return """# ddns-gateway configuration written by tests/integration/ddnsstack.py
[gateway]
listen = {listen}
clock_skew = 300
log_level = info
{gateway_extra}

[tls]
{tls}
[database]
conninfo = {conninfo}
pool_size = {pool_size}
{database_extra}
[keys]
{keys}
{keys_extra}
{admin}[zone {zone}]
primary = 127.0.0.1:{dns}
tsig_key_name = {tsig}
tsig_algorithm = hmac-sha256
tsig_secret_file = {d}/tsig.secret
default_ttl = 60
{allow}{defaults}{extra}""".format(listen=listen, gateway_extra=gateway_extra, tls=tls, admin=admin,
                           database_extra=self.database_extra, pool_size=self.pool_size,
                           d=self.dir, conninfo=conninfo or self.gateway_conninfo,
                           keys=("pkcs11 = %s" % self.keys_pkcs11 if self.keys_pkcs11
                                 else "directory = %s" % self.key_dir),
                           allow=("allow_addresses = %s\n" % self.zone_allow
                                  if self.zone_allow else ""),
                           keys_extra=keys_extra, zone=ZONE, dns=self.dns_port, tsig=TSIG_NAME,
                           defaults=self.GATEWAY_DEFAULTS.format(
                               interval=min_change_interval, blocked=blocked, minimum=minimum,
                               signed_only=signed_only,
                               limits=self._default_limits(extra)),
                           extra=extra)

    def write_gateway_config(self, extra=None, min_change_interval=0, tls=None):
        """Writes gateway.conf; extra defaults to self.config_extra, tls (the
        lines of [tls]) to the demo certificate."""
        with open(self.gw_conf, "w") as f:
            f.write(self.gateway_config_text(self.https_port, min_change_interval=min_change_interval,
                                             extra=extra, tls=tls, main=True))

    def _launch_gateway(self, name, conf, log_path, port):
        logf = open(log_path, "a")
        p = subprocess.Popen([os.path.join(BIN, "ddns-gateway"), "-c", conf],
                             stdout=logf, stderr=logf, start_new_session=True,
                             env=dict(os.environ, **self.gateway_env))
        self.procs[name] = p
        deadline = time.time() + 20
        ctx = self.tls_context()
        read_log = lambda: open(log_path, errors="replace").read()
        while time.time() < deadline:
            if p.poll() is not None:
                raise RuntimeError("ddns-gateway exited with %d; log:\n%s" % (p.returncode, read_log()))
            try:
                status, body = self.https_request(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n"
                                                  b"Connection: close\r\n\r\n", ctx=ctx, port=port)
                if status == 200:
                    self.log("ddns-gateway serving https://localhost:%d" % port)
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("ddns-gateway did not become healthy; log:\n%s" % read_log())

    def start_gateway(self):
        self._launch_gateway("gateway", self.gw_conf, self.gw_log, self.https_port)

    def sighup(self, timeout=20):
        """Sends SIGHUP to the gateway; returns once it logged the reload."""
        n = self.gateway_log().count("reloaded %s" % self.gw_conf)
        self.procs["gateway"].send_signal(signal.SIGHUP)
        deadline = time.time() + timeout
        while self.gateway_log().count("reloaded %s" % self.gw_conf) == n:
            assert time.time() < deadline, self.gateway_log()[-3000:]
            time.sleep(0.1)

    @contextlib.contextmanager
    def extra_gateway(self, name, min_change_interval=0, conninfo=None, extra="", **firmware):
        """Another gateway on the same database, Knot DNS and keys, with its
        own configuration; yields its HTTPS port. On exit it must stop
        cleanly (exit 0, no sanitizer report)."""
        port = free_port()
        conf = os.path.join(self.dir, "gateway-%s.conf" % name)
        log_path = os.path.join(self.dir, "gateway-%s.log" % name)
        with open(conf, "w") as f:
            f.write(self.gateway_config_text(port, conninfo=conninfo,
                                             min_change_interval=min_change_interval, extra=extra,
                                             **firmware))
        self._launch_gateway("gateway-" + name, conf, log_path, port)
        try:
            yield port
        finally:
            rc = self.stop_process("gateway-" + name)
            log = open(log_path, errors="replace").read()
            assert rc == 0, "ddns-gateway %s exited with %r; log:\n%s" % (name, rc, log[-4000:])
            for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                assert marker not in log, "sanitizer report in the gateway log:\n" + log[-4000:]

    def admin_get(self, path, timeout=10):
        """GET on the plain-HTTP admin listener; returns (status, headers, body text)."""
        return admin_get(self.admin_port, path, timeout)

    def metrics(self):
        """The admin /metrics samples as {'name{labels}': float}."""
        return admin_metrics(self.admin_port)

    def signed_request(self, cred_file, directory, *args):
        """The exact bytes of a request the SDK signs, written by ddns-client
        into directory without sending it."""
        out = os.path.join(str(directory), "req-%d.bin" % time.monotonic_ns())
        p = self.client(cred_file, "--request-out", out, *args)
        assert p.returncode == 0, p.stderr
        with open(out, "rb") as f:
            return f.read()

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

    def https_request(self, raw, ctx=None, timeout=10, headers=False, **kw):
        """Sends raw request bytes over TLS; returns (status, body bytes), or
        (status, body bytes, {lowercase header name: value}) with headers."""
        status, hdrs, body = self.https_exchange(raw, ctx=ctx, timeout=timeout, **kw)
        return (status, body, hdrs) if headers else (status, body)

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
               "--key-dir", self.key_dir, "--db", self.provision_conninfo,
               "--operator", "ddnsstack"] + list(extra)
        if name:
            cmd += ["--name", name]
        out = run(cmd)
        return json.loads(out.stdout)

    def provision_fleet(self, directory, mac_format, n):
        """n devices whose MACs are mac_format % (this process id's low byte,
        i + 1), each with a credentials file in directory; returns
        [(credentials, file)]."""
        out = []
        for i in range(n):
            creds = self.provision(mac_format % (os.getpid() & 0xff, i + 1))
            out.append((creds, self.write_credentials(creds, os.path.join(str(directory),
                                                                          "d%d.json" % i))))
        return out

    def write_credentials(self, creds, path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(creds) + "\n")
        return path

    def client(self, cred_file, *args, port=None):
        """Runs ddns-client; returns the CompletedProcess."""
        cmd = [os.path.join(BIN, "ddns-client"), "--server", "localhost:%d" % (port or self.https_port),
               "--ca", self.ca_cert, "--credentials", cred_file] + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30)

    # -- lifecycle -----------------------------------------------------------
    def start(self):
        self.start_postgres()
        self.start_dns()
        self.make_keys()
        self.make_tls()
        self.write_gateway_config()
        self.start_gateway()

    def stop_process(self, name, timeout=10):
        """Stops a process with SIGTERM; returns its exit status (None if not running)."""
        return stop_proc(self.procs, name, timeout)

    def stop(self):
        """Stops everything; returns the gateway's exit status."""
        gateway_rc = self.stop_process("gateway")
        self.stop_process("knotd")
        if getattr(self, "knot_rundir_tmp", None):
            shutil.rmtree(self.knot_rundir_tmp, ignore_errors=True)
        self.stop_process("named")
        if self.pg_started:
            try:
                self.stop_postgres()
            except RuntimeError:
                pass
        return gateway_rc


@contextlib.contextmanager
def started(prefix, label, configure=None, **kw):
    """A whole stack in a new temporary directory for a test fixture. On exit
    the gateway must have stopped cleanly (exit 0, no sanitizer report in its
    log, which catches test-asan findings); the directory is removed unless
    DDNS_KEEP_TMP is set."""
    import tempfile
    base = tempfile.mkdtemp(prefix=prefix)
    s = Stack(base, log=lambda m: print("[%s] %s" % (label, m)), **kw)
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


# -- the scale-out topology of docker/compose.yml, on loopback ----------------

DOCKER = os.path.join(ROOT, "docker")


def render_docker_file(name, replace):
    """The text of docker/NAME with every (old, new) pair of replace applied
    in order (all occurrences). Each old text must occur: when a file of
    docker/ changes in a way the tests no longer match, this fails instead
    of silently testing something else."""
    with open(os.path.join(DOCKER, name)) as f:
        text = f.read()
    for old, new in replace:
        if old not in text:
            raise RuntimeError("docker/%s no longer contains %r" % (name, old))
        text = text.replace(old, new)
    return text


def wait_port(port, proc=None, what="process", timeout=20, host="127.0.0.1"):
    """Waits until host:port accepts TCP connections."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("%s exited with %d" % (what, proc.returncode))
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("%s does not accept connections on %s:%d" % (what, host, port))


class Cluster:
    """The topology of docker/compose.yml on loopback, run from the files of
    docker/ with the container addresses, ports and paths replaced by
    loopback ones: PostgreSQL (the stack's), docker/init-state for keys,
    secrets and certificates, a Knot DNS primary and a secondary following
    it by NOTIFY/IXFR (docker/knot/), two gateways
    (docker/gateway/gateway.conf) and HAProxy with PROXY protocol v2 in
    front of them (docker/haproxy/haproxy.cfg, the very file).

    After start() the stack's https_port is HAProxy's, its dns_port the
    primary's, and its key directory and CA those of the cluster, so its
    helpers (provision, client, https_exchange, psql, dig) work through the
    balancer."""

    GATEWAYS = 2

    def __init__(self, stack):
        self.stack = stack
        self.state = os.path.join(stack.dir, "state")
        self.front_port = free_port()
        self.primary_port = free_port()
        self.secondary_port = free_port()
        self.gw_ports = [free_port() for _ in range(self.GATEWAYS)]
        self.admin_ports = [free_port() for _ in range(self.GATEWAYS)]
        self.stats_socket = os.path.join(stack.dir, "haproxy.sock")
        self.procs = {}
        self.logs = {}

    def _spawn(self, name, cmd, env=None):
        path = os.path.join(self.stack.dir, name + ".log")
        logf = open(path, "a")
        self.logs[name] = path
        self.procs[name] = subprocess.Popen(cmd, stdout=logf, stderr=logf, start_new_session=True,
                                            env=dict(os.environ, **(env or {})))
        return self.procs[name]

    def log_text(self, name):
        try:
            with open(self.logs[name], errors="replace") as f:
                return f.read()
        except (KeyError, OSError):
            return ""

    # -- pieces ----------------------------------------------------------------
    def init_state(self):
        out = run([os.path.join(DOCKER, "init-state"), self.state],
                  env=dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""),
                           DDNS_TLS_NAMES="localhost,127.0.0.1"))
        self.stack.log(out.stdout.strip().splitlines()[-1])
        self.stack.key_dir = os.path.join(self.state, "keys")
        self.stack.ca_cert = os.path.join(self.state, "tls", "ca.crt")

    def knot_config(self, role):
        kdir = os.path.join(self.stack.dir, "knot-" + role)
        os.makedirs(os.path.join(kdir, "run"), exist_ok=True)
        common = [('"/run/knot"', '"%s/run"' % kdir),
                  ("0.0.0.0@53", "127.0.0.1@%d" % (self.primary_port if role == "primary"
                                                  else self.secondary_port)),
                  ("/var/lib/ddns/", self.state + "/")]
        if role == "primary":
            replace = common + [("172.30.53.12@53", "127.0.0.1@%d" % self.secondary_port),
                                ("/etc/knot/zones/", DOCKER + "/knot/")]
        else:
            replace = common + [("172.30.53.11@53", "127.0.0.1@%d" % self.primary_port)]
        replace.append(("/var/lib/knot", kdir))
        return kdir, render_docker_file("knot/%s.conf" % role, replace)

    def start_knot(self, role):
        kdir, text = self.knot_config(role)
        conf = os.path.join(kdir, "knot.conf")
        with open(conf, "w") as f:
            f.write(text)
        os.chmod(conf, 0o600)
        p = self._spawn("knot-" + role, ["knotd", "-c", conf])
        port = self.primary_port if role == "primary" else self.secondary_port
        deadline = time.time() + 20
        while time.time() < deadline:
            if p.poll() is not None:
                raise RuntimeError("knotd (%s) exited; log:\n%s" % (role, self.log_text("knot-" + role)))
            if self.dig_at(port, ZONE, "SOA"):
                self.stack.log("Knot DNS %s serving %s on 127.0.0.1:%d" % (role, ZONE, port))
                return
            time.sleep(0.1)
        raise RuntimeError("knotd (%s) does not serve %s; log:\n%s"
                           % (role, ZONE, self.log_text("knot-" + role)))

    def dig_at(self, port, name, rrtype="A"):
        """Asks the DNS server on 127.0.0.1:port; the answer's data, sorted."""
        try:
            out = subprocess.run(["dig", "+short", "+time=1", "+tries=1", "-p", str(port),
                                  "@127.0.0.1", name, rrtype],
                                 capture_output=True, text=True, timeout=5)
        except subprocess.TimeoutExpired:
            return []
        return sorted(l for l in out.stdout.splitlines() if l and not l.startswith(";"))

    def wait_secondary(self, name, rrtype, want, timeout=10.0):
        """Polls the secondary until it answers want; returns the last answer."""
        deadline = time.time() + timeout
        got = None
        while time.time() < deadline:
            got = self.dig_at(self.secondary_port, name, rrtype)
            if got == want:
                return got
            time.sleep(0.05)
        return got

    def gateway_config(self, i, conninfo=None, publisher_conninfo=None):
        direct = self.stack.gateway_conninfo
        return render_docker_file("gateway/gateway.conf", [
            ("workers = 0", "workers = 2"),
            ("0.0.0.0:8443", "127.0.0.1:%d" % self.gw_ports[i]),
            ("trusted = 172.30.53.20", "trusted = 127.0.0.1"),
            ("0.0.0.0:9100", "127.0.0.1:%d" % self.admin_ports[i]),
            ("conninfo = hostaddr=172.30.53.10 port=5432 dbname=ddns user=ddns_gateway_login",
             "conninfo = %s\npublisher_conninfo = %s" % (conninfo or direct,
                                                          publisher_conninfo or direct)),
            ("/var/lib/ddns/", self.state + "/"),
            ("172.30.53.11:53", "127.0.0.1:%d" % self.primary_port),
            # the tests change a device's address every second
            ("min_change_interval = 60", "min_change_interval = 0"),
            # and publish the addresses the other tests do (loopback through
            # HAProxy's PROXY header, the load generator's ranges)
            ("allow_addresses = 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32",
             "allow_addresses = " + ZONE_ALLOW),
        ])

    def start_gateway(self, i, **conninfo):
        """Starts gateway i (0 or 1) and waits for its admin /healthz.
        conninfo: conninfo and publisher_conninfo (default: PostgreSQL)."""
        name = "gateway%d" % (i + 1)
        conf = os.path.join(self.stack.dir, name + ".conf")
        with open(conf, "w") as f:
            f.write(self.gateway_config(i, **conninfo))
        p = self._spawn(name, [os.path.join(BIN, "ddns-gateway"), "-c", conf])
        deadline = time.time() + 20
        while time.time() < deadline:
            if p.poll() is not None:
                raise RuntimeError("%s exited with %d; log:\n%s" % (name, p.returncode,
                                                                    self.log_text(name)))
            try:
                if self.admin_get(i, "/healthz")[0] == 200:
                    self.stack.log("%s serving 127.0.0.1:%d (PROXY v2 only)"
                                   % (name, self.gw_ports[i]))
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("%s did not become healthy; log:\n%s" % (name, self.log_text(name)))

    def admin_get(self, i, path):
        status, _, body = admin_get(self.admin_ports[i], path)
        return status, body

    def haproxy_env(self):
        return {"DDNS_HTTPS_BIND": "127.0.0.1:%d" % self.front_port,
                "DDNS_GW1": "127.0.0.1:%d" % self.gw_ports[0],
                "DDNS_GW2": "127.0.0.1:%d" % self.gw_ports[1],
                "DDNS_GW1_ADMIN_PORT": str(self.admin_ports[0]),
                "DDNS_GW2_ADMIN_PORT": str(self.admin_ports[1]),
                "DDNS_HAPROXY_STATS": self.stats_socket,
                "DDNS_HAPROXY_MAXCONN": "1000"}

    def start_haproxy(self):
        cfg = os.path.join(DOCKER, "haproxy", "haproxy.cfg")
        p = self._spawn("haproxy", ["haproxy", "-db", "-f", cfg], env=self.haproxy_env())
        try:
            wait_port(self.front_port, p, "haproxy")
        except RuntimeError as e:
            raise RuntimeError("%s; log:\n%s" % (e, self.log_text("haproxy"))) from None
        self.wait_servers({"gw1": "UP", "gw2": "UP"})
        self.stack.log("HAProxy on 127.0.0.1:%d in front of both gateways" % self.front_port)

    def haproxy_command(self, command):
        """One command on HAProxy's admin socket; returns its answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(self.stats_socket)
            s.sendall(command.encode() + b"\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return data.decode()
                data += chunk

    def server_states(self):
        """{server name: status} of the gateways' backend, from 'show stat'."""
        lines = self.haproxy_command("show stat").splitlines()
        head = lines[0].lstrip("# ").split(",")
        out = {}
        for line in lines[1:]:
            row = dict(zip(head, line.split(",")))
            if row.get("pxname") == "ddns_gateways" and row.get("svname") not in ("BACKEND", None):
                out[row["svname"]] = row["status"].split(" ")[0]
        return out

    def wait_servers(self, want, timeout=20):
        deadline = time.time() + timeout
        got = None
        while time.time() < deadline:
            if self.procs["haproxy"].poll() is not None:
                raise RuntimeError("haproxy exited; log:\n" + self.log_text("haproxy"))
            try:
                got = self.server_states()
            except OSError:
                got = None
            if got == want:
                return got
            time.sleep(0.1)
        raise RuntimeError("HAProxy servers %r, not %r; log:\n%s"
                           % (got, want, self.log_text("haproxy")[-3000:]))

    def gateway_requests(self, i):
        """The access-log lines (JSON) of gateway i."""
        out = []
        for line in self.log_text("gateway%d" % (i + 1)).splitlines():
            try:
                o = json.loads(line)
            except ValueError:
                continue
            if o.get("event") == "request":
                out.append(o)
        return out

    def start_pgbouncer(self):
        """PgBouncer in transaction mode in front of PostgreSQL, from
        deploy/pgbouncer/pgbouncer.ini (loopback, trust); returns its port.
        Runs as the PostgreSQL user: PgBouncer refuses root."""
        pdir = os.path.join(self.stack.dir, "pgbouncer")
        os.makedirs(pdir, exist_ok=True)
        self.pgbouncer_port = free_port()
        with open(os.path.join(ROOT, "deploy", "pgbouncer", "pgbouncer.ini")) as f:
            text = f.read()
        for old, new in [("host=10.0.0.10 port=5432", "host=127.0.0.1 port=%d" % self.stack.pg_port),
                         ("listen_addr = 10.0.0.11", "listen_addr = 127.0.0.1"),
                         ("listen_port = 6432", "listen_port = %d" % self.pgbouncer_port),
                         ("auth_type = scram-sha-256", "auth_type = trust"),
                         ("/etc/pgbouncer/userlist.txt", pdir + "/userlist.txt"),
                         ("/var/log/postgresql/pgbouncer.log", pdir + "/pgbouncer.log"),
                         ("/run/postgresql/pgbouncer.pid", pdir + "/pgbouncer.pid")]:
            if old not in text:
                raise RuntimeError("deploy/pgbouncer/pgbouncer.ini no longer contains %r" % old)
            text = text.replace(old, new)
        ini = os.path.join(pdir, "pgbouncer.ini")
        with open(ini, "w") as f:
            f.write(text)
        with open(os.path.join(pdir, "userlist.txt"), "w") as f:
            f.write('"ddns" ""\n"postgres" ""\n"ddns_gateway_login" ""\n'
                    '"ddns_provision_login" ""\n')
        user = self.stack._pg_user()
        if user:
            pw = pwd.getpwnam(user)
            for name in [pdir] + [os.path.join(pdir, n) for n in os.listdir(pdir)]:
                os.chown(name, pw.pw_uid, pw.pw_gid)
        p = self._spawn("pgbouncer", self.stack._as_pg(["pgbouncer", ini]))
        try:
            wait_port(self.pgbouncer_port, p, "pgbouncer")
        except RuntimeError as e:
            raise RuntimeError("%s; log:\n%s" % (e, self.log_text("pgbouncer"))) from None
        self.stack.log("PgBouncer (transaction mode) on 127.0.0.1:%d" % self.pgbouncer_port)
        return self.pgbouncer_port

    def pgbouncer_show(self, what):
        """Rows of PgBouncer's admin console command SHOW what, as dicts."""
        out = run(["psql", "-X", "-A", "-F", "\t", "-h", "127.0.0.1", "-p", str(self.pgbouncer_port),
                   "-U", "postgres", "-d", "pgbouncer", "-c", "SHOW %s" % what])
        lines = [l for l in out.stdout.splitlines() if l and not l.startswith("(")]
        head = lines[0].split("\t")
        return [dict(zip(head, l.split("\t"))) for l in lines[1:]]

    def kill_gateway(self, i):
        """SIGKILL for gateway i; returns once it is gone."""
        p = self.procs.pop("gateway%d" % (i + 1))
        p.send_signal(signal.SIGKILL)
        p.wait()

    # -- lifecycle -------------------------------------------------------------
    def start(self):
        st = self.stack
        st.start_postgres()
        self.init_state()
        self.start_knot("primary")
        self.start_knot("secondary")
        st.dns_port = self.primary_port
        for i in range(self.GATEWAYS):
            self.start_gateway(i)
        self.start_haproxy()
        st.https_port = self.front_port

    def stop_process(self, name, timeout=15):
        return stop_proc(self.procs, name, timeout)

    def stop(self):
        """Stops everything; returns {gateway name: exit status} of the
        gateways still running."""
        self.stop_process("haproxy")
        rcs = {}
        for name in [n for n in self.procs if n.startswith("gateway")]:
            rcs[name] = self.stop_process(name)
        for name in list(self.procs):
            self.stop_process(name)
        self.stack.stop()
        return rcs


@contextlib.contextmanager
def cluster_started(prefix, label):
    """A Cluster in a new temporary directory for a test fixture. On exit
    every gateway still running must stop cleanly (exit 0, no sanitizer
    report in its log)."""
    import tempfile
    base = tempfile.mkdtemp(prefix=prefix)
    s = Stack(base, log=lambda m: print("[%s] %s" % (label, m)))
    c = Cluster(s)
    try:
        c.start()
    except Exception:
        c.stop()
        raise
    yield c
    rcs = c.stop()
    for name, rc in rcs.items():
        log = c.log_text(name)
        assert rc == 0, "%s exited with %r; log:\n%s" % (name, rc, log[-4000:])
    for name in c.logs:
        if name.startswith("gateway"):
            log = c.log_text(name)
            for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                assert marker not in log, "sanitizer report in %s's log:\n%s" % (name, log[-4000:])
    if os.environ.get("DDNS_KEEP_TMP"):
        print("kept %s" % base)
    else:
        shutil.rmtree(base, ignore_errors=True)


DEMO_OPERATOR = "make run"
# make run's default ports; the DNS port stays outside the kernel's
# ephemeral range (see free_port).
DEMO_PORTS = {"pg_port": 55432, "dns_port": 15353, "https_port": 8443}
LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def demo_leftovers(state):
    """The processes of an earlier demo on this state directory that outlived
    it (killed with SIGKILL, or its terminal closed): [(pid, what)], the
    gateway first and PostgreSQL last. Found by their command lines, which
    name the state directory's files; empty where /proc cannot be read. A
    gateway's key and publisher processes ("ddns-keys", "ddns-publish", same
    command line) are not listed: they leave with their gateway."""
    marks = [(os.path.join(state, "gateway.conf"), "ddns-gateway"),
             (os.path.join(state, "knot", "knot.conf"), "Knot DNS"),
             (os.path.join(state, "pg", "data"), "PostgreSQL"),
             (os.path.join(os.path.realpath(os.path.join(state, "pg")), "data"), "PostgreSQL")]
    found = []
    try:
        pids = [int(d) for d in os.listdir("/proc") if d.isdigit()]
    except OSError:
        return found
    for pid in pids:
        if pid == os.getpid():
            continue
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0")]
            with open("/proc/%d/comm" % pid) as f:
                if f.read().strip() in ("ddns-keys", "ddns-publish"):
                    continue
        except OSError:
            continue
        for rank, (path, what) in enumerate(marks):
            if path in argv:
                found.append((rank, pid, what))
                break
    return [(pid, what) for _, pid, what in sorted(found)]


def demo_stop_leftovers(state, say):
    """Stops what demo_leftovers() finds (PostgreSQL with a fast shutdown)."""
    for pid, what in demo_leftovers(state):
        say("%s (pid %d) of an earlier run on %s is still running: stopping it" % (what, pid, state))
        try:
            os.kill(pid, signal.SIGINT if what == "PostgreSQL" else signal.SIGTERM)
        except OSError:
            continue
        deadline = time.time() + 30
        while os.path.exists("/proc/%d" % pid) and time.time() < deadline:
            time.sleep(0.1)
        if os.path.exists("/proc/%d" % pid):
            os.kill(pid, signal.SIGKILL)


def demo_device(stack, mac, label, say):
    """The demo device as `make run` needs it: registered, active, under a
    key id whose key file the gateway has, named label in the zone. Whatever
    was done to it since the last run (renamed, reissued, revoked, removed,
    its key retired) is repaired through ddns-provision and said; returns
    its credentials."""
    prov = os.path.join(BIN, "ddns-provision")
    keys = ["--key-dir", stack.key_dir]
    db = ["--db", stack.provision_conninfo, "--operator", DEMO_OPERATOR]
    dev = re.sub(r"[^0-9a-f]", "", mac.lower())   # checked by ddns-provision below
    fqdn = lambda lbl: "%s.%s" % (lbl, ZONE)

    def owner(lbl):
        rows = stack.psql("SELECT device_id FROM names WHERE label = '%s' AND zone = '%s'"
                          % (lbl, ZONE))
        return rows[0][0] if rows else None

    def issue(name=None, kid=None):
        cmd = [prov, "issue", "--mac", mac, "--zone", ZONE] + keys + db
        cmd += ["--name", name] if name else []
        cmd += ["--kid", kid] if kid else []
        return json.loads(run(cmd).stdout)

    if not LABEL_RE.match(label):
        raise RuntimeError("--name '%s' is not a hostname label (a-z, 0-9 and '-', at most 63)"
                           % label)
    if len(dev) != 12:
        raise RuntimeError("--mac '%s' is not a MAC address" % mac)
    rows = stack.psql("SELECT kid, status FROM devices WHERE device_id = '%s'" % dev)
    if not rows:
        taken = owner(label)
        if taken:
            say("the name %s belongs to device %s: the demo device gets a random name"
                % (fqdn(label), taken))
        creds = issue(None if taken else label)
        say("registered the demo device %s as %s" % (creds["device_id"], creds["fqdn"]))
        return creds
    kid, status = rows[0]
    have = sorted(os.path.basename(k)[:-4] for k in glob.glob(os.path.join(stack.key_dir, "*.key")))
    if kid not in have:
        creds = json.loads(run([prov, "reissue", "--mac", mac] + keys + db).stdout)
        kid = key_id(creds)
        say("the demo device's key id '%s' has no key file in %s (retired or removed): "
            "reissued it under '%s'" % (rows[0][0], stack.key_dir, kid))
    labels = [r[0] for r in stack.psql(
        "SELECT label FROM names WHERE device_id = '%s' AND zone = '%s' ORDER BY name_id"
        % (dev, ZONE))]
    if label not in labels:
        taken = owner(label)
        if taken:
            say("the name %s now belongs to device %s: the demo device keeps %s"
                % (fqdn(label), taken, ", ".join(map(fqdn, labels)) or "no name"))
        elif not labels:
            # The admin API's rule for a new name (admin_name), as ddnsctl add-name.
            stack.psql("SELECT status FROM admin_name(NULL, '%s', 'local', '%s', NULL, '%s', '%s')"
                       % (DEMO_OPERATOR, dev, label, ZONE))
            say("the demo device had no name in %s: gave it %s" % (ZONE, fqdn(label)))
        elif len(labels) == 1:
            # The admin API's rename (admin_name): the name only, the secret stays.
            stack.psql("SELECT status FROM admin_name(NULL, '%s', 'local', '%s', '%s', '%s', "
                       "'%s')" % (DEMO_OPERATOR, dev, fqdn(labels[0]), label, ZONE))
            say("the demo device was renamed %s since the last run: renamed it back to %s"
                % (fqdn(labels[0]), fqdn(label)))
        else:
            say("the demo device has the names %s: keeping them"
                % ", ".join(map(fqdn, labels)))
    if status != "active":
        run([prov, "restore", "--mac", mac, "--db", stack.provision_conninfo, "--operator", DEMO_OPERATOR])
        say("the demo device was revoked: restored it (its name gets an address again with "
            "its next update)")
    return issue(kid=kid)


def demo(args):
    state = os.path.abspath(args.state_dir)
    say = lambda msg: print("[run] " + msg, flush=True)
    demo_stop_leftovers(state, say)
    # A port given (option or DDNS_* variable) must be free; a default one
    # that something else holds is replaced by a free one, and said.
    ports = {}
    for what, default in DEMO_PORTS.items():
        var = "DDNS_" + what.upper()
        port = getattr(args, what)
        if port is None and os.environ.get(var):
            try:
                port = int(os.environ[var])
            except ValueError:
                print("[run] %s is '%s', not a port number" % (var, os.environ[var]), file=sys.stderr)
                return 1
        if port is not None and port_in_use(port, udp=(what == "dns_port")):
            print("[run] port %d (%s) on 127.0.0.1 is in use: stop what holds it or choose "
                  "another with the %s variable" % (port, what, var), file=sys.stderr)
            return 1
        if port is None:
            port = default
            if port_in_use(port, udp=(what == "dns_port")):
                port = free_port()
                say("port %d (%s) on 127.0.0.1 is in use: using %d instead (%s chooses one)"
                    % (default, what, port, var))
        ports[what] = port
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
        creds = demo_device(stack, args.mac, args.name, say)
        cred_file = stack.write_credentials(creds, os.path.join(state, "demo-device.json"))
        client = os.path.join(BIN, "ddns-client")
        print("""
The DDNS backend is running (state in {state}).

  gateway     https://localhost:{https}  (CA certificate {ca})
  admin       http://127.0.0.1:{admin}/metrics  (/healthz, /readyz)
  console     http://127.0.0.1:{admin}/console/  (a token to log in with:
              {bin}/ddnsctl token create --db "{conninfo}" --scope write)
  PostgreSQL  {conninfo}  (the owner; the gateway logs in as
              ddns_gateway_login, ddns-provision as ddns_provision_login)
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
            state=state, https=stack.https_port, admin=stack.admin_port, bin=BIN, ca=stack.ca_cert, conninfo=stack.conninfo,
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
    d.add_argument("--pg-port", type=int, help="PostgreSQL's port [env DDNS_PG_PORT, 55432]")
    d.add_argument("--dns-port", type=int, help="Knot DNS's port [env DDNS_DNS_PORT, 15353]")
    d.add_argument("--https-port", type=int, help="the gateway's port [env DDNS_HTTPS_PORT, 8443]")
    d.add_argument("--mac", default="02:00:5e:10:00:01", help="MAC of the demo device")
    d.add_argument("--name", default="demo-camera", help="hostname label of the demo device")
    args = ap.parse_args()
    if args.cmd == "demo":
        sys.exit(demo(args))


if __name__ == "__main__":
    main()
