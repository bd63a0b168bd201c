"""The gateway's processes: the master keys live in the key process, the
zones' TSIG secrets in the publisher process, and neither ever in a process
that holds the HTTPS listening socket (docs/SECURITY.md, "Processes")."""
import base64
import glob
import os
import re
import signal
import time

import ddnsstack
from test_dyndns2 import nic_update

# Mappings larger than this are not read (AddressSanitizer's shadow memory
# is terabytes of address space); the keys are in small mappings.
_MAX_REGION = 256 << 20


def _children(pid):
    out = []
    for task in glob.glob("/proc/%d/task/*/children" % pid):
        with open(task) as f:
            out += [int(x) for x in f.read().split()]
    return out


def _comm(pid):
    with open("/proc/%d/comm" % pid) as f:
        return f.read().strip()


def _child(gateway_pid, comm):
    kids = [c for c in _children(gateway_pid) if _comm(c) == comm]
    assert len(kids) == 1, "%s processes of %d: %r" % (comm, gateway_pid, kids)
    return kids[0]


def _key_process(gateway_pid):
    return _child(gateway_pid, "ddns-keys")


def _publisher_process(gateway_pid):
    return _child(gateway_pid, "ddns-publish")


def _tsig_secret(stack):
    """The TSIG secret as its file's base64 text and as raw bytes."""
    with open(os.path.join(stack.dir, "tsig.secret")) as f:
        text = f.read().strip()
    return [text.encode(), base64.b64decode(text)]


def _master_keys(key_dir):
    """The raw bytes of every master key of key_dir."""
    keys = []
    for path in glob.glob(os.path.join(key_dir, "*.key")):
        with open(path) as f:
            m = re.search(r"^key\s*=\s*([0-9a-f]{64})\s*$", f.read(), re.M)
        assert m, path
        keys.append(bytes.fromhex(m.group(1)))
    assert keys
    return keys


def _listening_inodes(port):
    """The socket inodes listening on TCP port (IPv4 and IPv6)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                    inodes.add(fields[9])
    assert inodes, "nothing listens on port %d" % port
    return inodes


def _holders(inodes):
    """Every process with a descriptor on one of the socket inodes."""
    want = {"socket:[%s]" % i for i in inodes}
    pids = set()
    for fd in glob.glob("/proc/[0-9]*/fd/*"):
        try:
            if os.readlink(fd) in want:
                pids.add(int(fd.split("/")[2]))
        except OSError:
            pass
    return pids


def _memory_has(pid, needles):
    """The needles found anywhere in the readable memory of pid, read through
    /proc/PID/mem (root may read a process that is not dumpable)."""
    found = set()
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if "r" not in fields[1] or hi - lo > _MAX_REGION or line.rstrip().endswith("[vvar]"):
                continue
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except (OSError, ValueError, OverflowError):
                continue
            for n in needles:
                if n in data:
                    found.add(n)
    return found


def _needles(keys):
    out = []
    for k in keys:
        out += [k, k.hex().encode(), k.hex().upper().encode()]
    return out


def test_no_process_with_the_https_socket_holds_a_master_key(stack, device):
    """After signed and dyndns2 updates have been verified and published, no
    process that holds the HTTPS listening socket has any master key in its
    memory, as raw bytes or as hex text, nor the zone's TSIG secret, as raw
    bytes or as base64 text; the key process and the publisher process,
    which do not hold the socket, have them (the scan finds what is
    there)."""
    creds, path = device
    assert stack.client(path, "--ipv4", "192.0.2.70").returncode == 0
    status, body, _ = nic_update(stack, "hostname=%s&myip=192.0.2.71" % creds["fqdn"],
                                 creds["device_id"], creds["password"])
    assert (status, body) == (200, "good 192.0.2.71\n"), body
    stack.wait_dns(creds["fqdn"], "A", "192.0.2.71")
    keys = _master_keys(stack.key_dir)
    tsig = _tsig_secret(stack)
    gateway = stack.procs["gateway"].pid
    keyproc, publisher = _key_process(gateway), _publisher_process(gateway)
    holders = _holders(_listening_inodes(stack.https_port))
    assert gateway in holders
    assert keyproc not in holders, "the key process holds the HTTPS socket"
    assert publisher not in holders, "the publisher process holds the HTTPS socket"
    for pid in holders:
        assert _memory_has(pid, _needles(keys) + tsig) == set(), \
            "a master key or the TSIG secret in the memory of process %d (%s)" % (pid, _comm(pid))
    assert set(keys) <= _memory_has(keyproc, keys), "the scan does not find the keys"
    assert _memory_has(publisher, tsig), "the scan does not find the TSIG secret"
    assert _memory_has(keyproc, tsig) == set(), "the TSIG secret in the key process"


def _vmflags(pid):
    out = []
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            if line.startswith("VmFlags:"):
                out.append(set(line.split()[1:]))
    return out


def test_the_key_process_keeps_its_keys_out_of_core_dumps(stack):
    """The key process keeps the keys in pages a core dump leaves out
    (MADV_DONTDUMP: 'dd') and that are locked in RAM ('lo'); it has no core
    file size and nothing it could run gains privileges."""
    pid = _key_process(stack.procs["gateway"].pid)
    flags = _vmflags(pid)
    assert any("dd" in f for f in flags), "no mapping left out of core dumps"
    if not os.environ.get("DDNS_SANITIZED"):    # AddressSanitizer makes mlock a no-op
        assert any("dd" in f and "lo" in f for f in flags), "the key pages are not locked"
    with open("/proc/%d/limits" % pid) as f:
        core = [l for l in f if l.startswith("Max core file size")][0].split()
    assert core[4] == "0", core
    with open("/proc/%d/status" % pid) as f:
        status = dict(l.split(":", 1) for l in f if ":" in l)
    assert status["NoNewPrivs"].strip() == "1"


def test_a_reload_reaches_the_key_process(stack, device, tmp_path):
    """SIGHUP: the key process loads the key directory again; a device of a
    key added since verifies, and the log names the key count."""
    stack.make_keys("k7reload")
    try:
        creds = stack.provision("02:00:00:77:00:01", extra=("--kid", "k7reload"))
        cred_file = stack.write_credentials(creds, str(tmp_path / "k7.json"))
        before = stack.gateway_log()
        os.kill(stack.procs["gateway"].pid, signal.SIGHUP)
        deadline = time.time() + 10
        while time.time() < deadline and "reloaded" not in stack.gateway_log()[len(before):]:
            time.sleep(0.1)
        assert re.search(r"reloaded .*, (\d+) master key\(s\)",
                         stack.gateway_log()[len(before):])
        p = stack.client(cred_file, "--ipv4", "192.0.2.72")
        assert p.returncode == 0, p.stdout + p.stderr
    finally:
        os.unlink(os.path.join(stack.key_dir, "k7reload.key"))
        os.kill(stack.procs["gateway"].pid, signal.SIGHUP)


def test_a_reload_with_a_broken_key_keeps_the_running_keys(stack, device):
    """A key file the key process refuses makes the whole reload refused; the
    devices keep updating with the keys already loaded."""
    creds, path = device
    bad = os.path.join(stack.key_dir, "zz.key")
    with open(bad, "w") as f:
        f.write("kid = zz\nkey = nothex\n")
    os.chmod(bad, 0o600)
    try:
        before = stack.gateway_log()
        os.kill(stack.procs["gateway"].pid, signal.SIGHUP)
        deadline = time.time() + 10
        while time.time() < deadline and "reload refused" not in stack.gateway_log()[len(before):]:
            time.sleep(0.1)
        log = stack.gateway_log()[len(before):]
        assert "reload refused" in log and "zz.key" in log, log
        p = stack.client(path, "--ipv4", "192.0.2.73")
        assert p.returncode == 0, p.stdout + p.stderr
    finally:
        os.unlink(bad)


def _kill_child_of_new_gateway(stack, tmp_path, which):
    port = ddnsstack.free_port()
    conf = str(tmp_path / "gw.conf")
    log_path = str(tmp_path / "gw.log")
    with open(conf, "w") as f:
        f.write(stack.gateway_config_text(port))
    stack._launch_gateway("gateway-kill", conf, log_path, port)
    p = stack.procs.pop("gateway-kill")
    try:
        os.kill(which(p.pid), signal.SIGKILL)
        rc = p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return rc, open(log_path).read()


def test_the_gateway_stops_when_the_key_process_dies(stack, tmp_path):
    """Without its key process no update can be verified: the gateway says so
    and exits with status 3 instead of answering every device 911 forever."""
    rc, log = _kill_child_of_new_gateway(stack, tmp_path, _key_process)
    assert rc == 3, log
    assert "the key process ended: stopping" in log, log


def test_the_gateway_stops_when_the_publisher_process_dies(stack, tmp_path):
    """Without its publisher no change reaches the DNS: the gateway stops
    with status 3 (its service manager starts it again)."""
    rc, log = _kill_child_of_new_gateway(stack, tmp_path, _publisher_process)
    assert rc == 3, log
    assert "the publisher process ended: stopping" in log, log


def test_publisher_counters_reach_the_gateways_metrics(stack, device):
    """The publisher process counts into the gateway's /metrics (shared
    counters) and its health is the gateway's /readyz."""
    creds, path = device
    before = stack.metrics().get('ddns_publish_batches_total{result="ok"}', 0)
    assert stack.client(path, "--ipv4", "192.0.2.74").returncode == 0
    stack.wait_dns(creds["fqdn"], "A", "192.0.2.74")
    deadline = time.time() + 10
    while time.time() < deadline and \
            stack.metrics().get('ddns_publish_batches_total{result="ok"}', 0) <= before:
        time.sleep(0.1)
    assert stack.metrics().get('ddns_publish_batches_total{result="ok"}', 0) > before
    assert stack.metrics().get("ddns_publisher_healthy") == 1
    status, _, body = stack.admin_get("/readyz")
    assert status == 200, body


def _uid(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    raise AssertionError("no Uid in /proc/%d/status" % pid)


def test_started_as_root_the_gateway_becomes_its_user(stack, device, tmp_path):
    """Started as root with [gateway] user, the process that parses requests
    runs as that user (real, effective and saved uid) once its listeners are
    bound, and keeps serving; the key and publisher processes keep root to
    read the key directory and the TSIG secret files."""
    import pwd
    if os.geteuid() != 0:
        import pytest
        pytest.skip("needs root: the test starts the gateway as root")
    nobody = pwd.getpwnam("nobody").pw_uid
    creds, path = device
    port = ddnsstack.free_port()
    conf = str(tmp_path / "gw.conf")
    text = stack.gateway_config_text(port).replace("[gateway]\n", "[gateway]\nuser = nobody\n", 1)
    with open(conf, "w") as f:
        f.write(text)
    stack._launch_gateway("gateway-user", conf, str(tmp_path / "gw.log"), port)
    try:
        pid = stack.procs["gateway-user"].pid
        assert _uid(pid) == [nobody] * 4
        assert _uid(_key_process(pid))[:3] == [0, 0, 0]
        assert _uid(_publisher_process(pid))[:3] == [0, 0, 0]
        p = stack.client(path, "--ipv4", "192.0.2.75", port=port)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "running as user nobody" in open(str(tmp_path / "gw.log")).read()
    finally:
        assert stack.stop_process("gateway-user") == 0
