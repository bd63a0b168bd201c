"""What a new user meets first: the two README commands on any machine.

- `make` reads no pkg-config before `make deps` has installed the packages
  (a fresh machine printed pkg-config errors before the install).
- `.ci/run` starts with exactly the README's test command.
- The SDK's 32-bit example runs natively, under qemu-i386, or is skipped
  with its reason recorded for test-unit's summary; never a silent pass.
- `make run` (scripts/run-demo) starts again whatever was done to its state
  in between: the demo device renamed, reissued, revoked, its key retired,
  removed from the database, its name taken by another device, the demo
  killed with SIGKILL; a newer schema stops it with the fix named.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

import ddnsstack

ROOT = ddnsstack.ROOT
BIN = ddnsstack.BIN
PROV = os.path.join(BIN, "ddns-provision")
SDK = os.path.join(ROOT, "firmware-sdk")


# -- the Makefile and CI -------------------------------------------------------

# A make started here is a user's top-level make, not part of the make that
# runs the tests.
MAKE_ENV = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}

def test_make_reads_no_pkg_config_before_the_install(tmp_path):
    """The packages are installed by the first recipe that runs; a make that
    only parses the Makefile must not call pkg-config (on a fresh machine it
    is missing, or knows none of the libraries yet)."""
    calls = tmp_path / "calls"
    pkg = tmp_path / "pkg-config"
    pkg.write_text("#!/bin/sh\necho \"$@\" >> %s\nexec pkg-config \"$@\"\n" % calls)
    pkg.chmod(0o755)
    # deps runs scripts/install-deps, which finds every package present.
    out = subprocess.run(["make", "--no-print-directory", "-C", ROOT, "PKG=%s" % pkg,
                          "BUILD=%s" % (tmp_path / "build"), "deps"],
                         capture_output=True, text=True, timeout=120, env=MAKE_ENV)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "install-deps: all packages present" in out.stdout
    assert not calls.exists(), "pkg-config called while parsing: " + calls.read_text()
    # The same make does call it once a recipe needs it (the check sees calls).
    out = subprocess.run(["make", "--no-print-directory", "-C", ROOT, "PKG=%s" % pkg,
                          "BUILD=%s" % (tmp_path / "build"),
                          str(tmp_path / "build" / "sdk" / "tools" / "ddns-client" / "ddns_client.o")],
                         capture_output=True, text=True, timeout=120, env=MAKE_ENV)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "--cflags openssl jansson" in calls.read_text()


def test_sanitized_programs_run_without_aslr_where_the_kernel_randomises_more():
    """With vm.mmap_rnd_bits above 28 the sanitizers' runtimes of Debian 12
    fail about one start in four; make then runs every sanitized program
    under setarch -R. (The kernel's own value is left alone: the variable
    stands in for it.)"""
    arch = os.uname().machine
    def dry(bits, goal):
        out = subprocess.run(["make", "-n", "--no-print-directory", "-C", ROOT,
                              "MMAP_RND_BITS=%d" % bits, goal],
                             capture_output=True, text=True, timeout=120, env=MAKE_ENV)
        assert out.returncode == 0, out.stderr
        return out.stdout
    high = dry(32, "test-unit")
    assert "note: vm.mmap_rnd_bits is 32: sanitized programs run under 'setarch %s -R'" % arch \
        in high
    assert "if setarch %s -R $f -runs=" % arch in high        # the fuzz smoke runs
    assert "if setarch %s -R $t; then" % arch in high         # the unit test programs
    assert "setarch" not in dry(28, "test-unit")
    asan = [line for line in dry(32, "test-asan").splitlines() if "pytest" in line]
    assert asan and all("setarch %s -R /usr/bin/python3 -m pytest" % arch in line
                        for line in asan), asan


def test_ci_starts_with_the_readme_test_command():
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        commands = [line.strip() for line in f
                    if line.strip() and not line.startswith("#")
                    and not line.startswith(("set ", "cd "))]
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    block = re.search(r"```sh\n(.*?)```", readme, re.S).group(1)
    test_cmd = [line.split("#")[0].strip() for line in block.splitlines()
                if line.startswith("make test")][0]
    assert commands[0] == test_cmd == "make test", commands


# -- the SDK's 32-bit example ----------------------------------------------------

RUN32 = os.path.join(SDK, "tools", "run-32bit")
EX = os.path.join(SDK, "examples")


def run32(tmp_path, env=None, cc="cc"):
    skip_file = tmp_path / "skips" / "sdk-example-32"
    srcs = [os.path.join(EX, "example_loop.c"), os.path.join(EX, "fake_platform.c")] + \
        sorted(os.path.join(SDK, "src", f) for f in os.listdir(os.path.join(SDK, "src"))
               if f.endswith(".c"))
    flags = "-std=c99 -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Werror -O2 " \
            "-I%s -I%s" % (os.path.join(SDK, "include"), EX)
    out = subprocess.run([RUN32, str(skip_file), str(tmp_path / "out"), cc, flags, "--"] + srcs,
                         capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, **(env or {})))
    return out, skip_file


def can_build_32bit():
    probe = subprocess.run(["cc", "-m32", "-static", "-x", "c", "-", "-o", os.devnull],
                           input="int main(void) { return 0; }\n", capture_output=True, text=True)
    return probe.returncode == 0


def test_32bit_example_under_qemu(tmp_path):
    """The way taken on a kernel without IA32 emulation, forced here."""
    if not can_build_32bit():
        pytest.skip("cc cannot build a static 32-bit x86 program on this machine")
    out, skip_file = run32(tmp_path, env={"DDNS_RUN32": "qemu"})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "sdk-example-32: running under qemu-i386" in out.stdout
    assert "8 exchanges as expected" in out.stdout + out.stderr
    assert not skip_file.exists()
    # It is really a 32-bit x86 program.
    with open(tmp_path / "out" / "sdk-example-32", "rb") as f:
        head = f.read(20)
    assert head[:4] == b"\x7fELF" and head[4] == 1 and head[18] == 3   # ELFCLASS32, EM_386


def test_32bit_example_chooses_a_way_and_says_which(tmp_path):
    if not can_build_32bit():
        pytest.skip("cc cannot build a static 32-bit x86 program on this machine")
    out, skip_file = run32(tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"sdk-example-32: running (natively|under qemu-i386)", out.stdout), out.stdout
    assert "8 exchanges as expected" in out.stdout + out.stderr
    assert not skip_file.exists()


def test_32bit_example_skip_is_recorded_never_silent(tmp_path):
    """A kernel that cannot run the program and no emulator: the probe is
    made unrunnable as such a kernel finds it (ENOEXEC: its ELF header names
    a machine no one here runs), and qemu-i386 is kept off PATH."""
    if not can_build_32bit():
        pytest.skip("cc cannot build a static 32-bit x86 program on this machine")
    wrapper = tmp_path / "cc-foreign-probe"
    wrapper.write_text("""#!/bin/sh
cc "$@" || exit $?
out=""; prev=""
for a in "$@"; do [ "$prev" = "-o" ] && out=$a; prev=$a; done
case "$out" in
    */probe-32) printf '\\377\\377' | dd of="$out" bs=1 seek=18 conv=notrunc 2>/dev/null ;;
esac
""")
    wrapper.chmod(0o755)
    # PATH: what the script and the compiler run, but no qemu-i386.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("cc", "as", "ld", "dd", "head", "mkdir", "rm", "dirname", "sed", "cat"):
        os.symlink(shutil.which(tool), bindir / tool)
    os.symlink("/usr/bin/python3", bindir / "python3")
    env = {"PATH": str(bindir)}
    assert shutil.which("qemu-i386", path=env["PATH"]) is None
    out, skip_file = run32(tmp_path, env=env, cc=str(wrapper))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "sdk-example-32: SKIPPED: this kernel runs no 32-bit x86 program" in out.stdout
    assert "qemu-i386 (package qemu-user) is not installed" in skip_file.read_text()
    # Asked for the native way, the same machine fails loudly instead.
    out, _ = run32(tmp_path, env=dict(env, DDNS_RUN32="native"), cc=str(wrapper))
    assert out.returncode != 0
    assert "this kernel runs no 32-bit x86 program" in out.stdout


# -- make run's demo -------------------------------------------------------------

class Demo:
    """scripts/run-demo on a state directory and free ports, as make run
    starts it after its build."""

    def __init__(self, state):
        self.state = str(state)
        self.ports = {"DDNS_HTTPS_PORT": ddnsstack.free_port(),
                      "DDNS_DNS_PORT": ddnsstack.free_port(),
                      "DDNS_PG_PORT": ddnsstack.free_port()}
        self.conninfo = "host=127.0.0.1 port=%d dbname=ddns user=ddns" % self.ports["DDNS_PG_PORT"]
        self.keys = os.path.join(self.state, "keys")
        self.proc = None
        self.out = ""
        self.last_second = 0

    def start(self, unset=()):
        self.log = open(os.path.join(os.path.dirname(self.state), "demo.log"), "w+")
        env = dict(os.environ, DDNS_STATE_DIR=self.state,
                   **{k: str(v) for k, v in self.ports.items()})
        for var in unset:
            env.pop(var, None)
        self.proc = subprocess.Popen([os.path.join(ROOT, "scripts", "run-demo")], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while time.time() < deadline:
            self.log.seek(0)
            self.out = self.log.read()
            if "Press Ctrl-C" in self.out or self.proc.poll() is not None:
                break
            time.sleep(0.2)
        return self.out

    def said(self):
        return [line[len("[run] "):] for line in self.out.splitlines() if line.startswith("[run] ")]

    def creds(self):
        with open(os.path.join(self.state, "demo-device.json")) as f:
            return json.load(f)

    def update(self, address):
        """The update the demo prints, sent as printed; returns the answer.
        A demo restarts within a second, and a device's timestamps (whole
        seconds) must grow: each update waits for a second of its own."""
        while int(time.time()) <= self.last_second:
            time.sleep(0.05)
        self.last_second = int(time.time())
        m = re.search(r"\n  (\S+/ddns-client .*?--ipv4 192\.0\.2\.10)\n", self.out, re.S)
        assert m, self.out
        cmd = m.group(1).replace("\\\n", " ").split()
        cmd[-1] = address
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return out.stdout.strip()

    def dig(self, fqdn):
        out = subprocess.run(["dig", "@127.0.0.1", "-p", str(self.ports["DDNS_DNS_PORT"]), fqdn,
                              "A", "+short"], capture_output=True, text=True, timeout=10)
        return out.stdout.split()

    def wait_dig(self, fqdn, want, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.dig(fqdn) == [want]:
                return True
            time.sleep(0.1)
        return False

    def prov(self, *args):
        out = subprocess.run([PROV] + list(args), capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    def psql(self, sql):
        out = subprocess.run(["psql", "-X", "-At", self.conninfo, "-c", sql],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        rc = self.proc.wait(timeout=60)
        self.log.close()
        return rc

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.log.close()


def check_serves(demo, address):
    creds = demo.creds()
    assert demo.update(address) == "good " + address
    assert demo.wait_dig(creds["fqdn"], address), (creds["fqdn"], demo.dig(creds["fqdn"]))
    return creds


def test_make_run_starts_again_whatever_was_done_to_its_state(tmp_path):
    demo = Demo(tmp_path / "state")
    mac = "02:00:5e:10:00:01"
    op = ["--operator", "test", "--db", demo.conninfo, "--key-dir", demo.keys]
    try:
        # A fresh state: the demo device is registered. The default HTTPS
        # port 8443 is held (by this test, or by whatever holds it already):
        # the demo takes another and says so.
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            holder.bind(("127.0.0.1", 8443))
            holder.listen()
        except OSError:
            pass
        demo.start(unset=["DDNS_HTTPS_PORT"])
        holder.close()
        assert any(re.match(r"port 8443 \(https_port\) on 127\.0\.0\.1 is in use: using \d+ "
                            r"instead \(DDNS_HTTPS_PORT chooses one\)$", s)
                   for s in demo.said()), demo.out
        assert "registered the demo device 02005e100001 as demo-camera.ddns.example.test" \
            in demo.said(), demo.out
        if os.geteuid() == 0 and subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x",
                                                 demo.state]).returncode != 0:
            # pytest's directories are closed to others, as root's home is.
            assert any(s.startswith("PostgreSQL runs as 'postgres', which cannot reach")
                       for s in demo.said()), demo.out
        check_serves(demo, "192.0.2.10")
        # The resale flow on it, a new key, and a revocation.
        demo.prov("reissue", mac, "--new-name", *op)
        demo.prov("keygen", "--kid", "k2", "--key-dir", demo.keys)
        demo.prov("revoke", "--mac", mac, "--db", demo.conninfo, "--operator", "test")
        assert demo.stop() == 0

        demo.start()
        said = demo.said()
        assert any(re.match(r"the demo device was renamed d[a-z0-9]+\.ddns\.example\.test since "
                            r"the last run: renamed it back to demo-camera", s) for s in said), said
        assert any(s.startswith("the demo device was revoked: restored it") for s in said), said
        creds = check_serves(demo, "192.0.2.11")
        assert creds["fqdn"] == "demo-camera.ddns.example.test"
        assert ddnsstack.key_id(creds) == "k1"

        # Its key retired, then the demo killed with SIGKILL: its PostgreSQL,
        # Knot DNS and gateway outlive it.
        demo.prov("keys", "retire", "k1", "--force", "--key-dir", demo.keys, "--db", demo.conninfo)
        demo.kill()
        left = ddnsstack.demo_leftovers(demo.state)
        assert [what for _, what in left] == ["ddns-gateway", "Knot DNS", "PostgreSQL"], left

        demo.start()
        said = demo.said()
        for what in ("ddns-gateway", "Knot DNS", "PostgreSQL"):
            assert any(s.startswith(what + " (pid ") and "is still running: stopping it" in s
                       for s in said), (what, said)
        assert any("the demo device's key id 'k1' has no key file" in s
                   and "reissued it under 'k2'" in s for s in said), said
        creds = check_serves(demo, "192.0.2.12")
        assert ddnsstack.key_id(creds) == "k2"

        # Its name given to another device after a rename.
        demo.prov("reissue", mac, "--new-name", *op)
        demo.prov("issue", "--mac", "02:00:5e:10:00:02", "--zone", ddnsstack.ZONE,
                  "--name", "demo-camera", *op)
        assert demo.stop() == 0

        demo.start()
        said = demo.said()
        assert any(s.startswith("the name demo-camera.ddns.example.test now belongs to device "
                                "02005e100002: the demo device keeps d") for s in said), said
        creds = check_serves(demo, "192.0.2.13")
        assert creds["fqdn"] != "demo-camera.ddns.example.test"

        # Removed from the database altogether (names, history, device).
        dev = "'02005e100001'"
        demo.psql("BEGIN; ALTER TABLE history DISABLE TRIGGER USER; "
                  "DELETE FROM history WHERE device_id = %s; "
                  "ALTER TABLE history ENABLE TRIGGER USER; "
                  "DELETE FROM names WHERE device_id = %s; "
                  "DELETE FROM devices WHERE device_id = %s; COMMIT" % (dev, dev, dev))
        assert demo.stop() == 0

        demo.start()
        said = demo.said()
        assert "the name demo-camera.ddns.example.test belongs to device 02005e100002: the " \
               "demo device gets a random name" in said, said
        assert any(s.startswith("registered the demo device 02005e100001 as d") for s in said)
        check_serves(demo, "192.0.2.14")

        # A schema newer than this checkout's: it stops and names the fix.
        demo.psql("INSERT INTO schema_version (version, name) VALUES (999, '0999_future')")
        assert demo.stop() == 0
        demo.start()
        assert demo.proc.wait(timeout=60) == 1
        demo.log.seek(0)
        out = demo.log.read()
        assert "database schema is version 999, newer than the newest migration" in out, out
        assert "written by a newer version of this project" in out
        assert "move %s away" % demo.state in out
        assert not ddnsstack.demo_leftovers(demo.state)
    finally:
        if demo.proc is not None and demo.proc.poll() is None:
            demo.stop()
        for pid, _ in ddnsstack.demo_leftovers(demo.state):
            os.kill(pid, signal.SIGKILL)
        pg = os.path.join(demo.state, "pg")
        if os.path.islink(pg):
            shutil.rmtree(os.readlink(pg), ignore_errors=True)
