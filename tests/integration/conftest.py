"""pytest fixtures: one real PostgreSQL, Knot DNS and ddns-gateway on
loopback for the whole session, in a temporary directory."""
import itertools
import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import ddnsstack  # noqa: E402


@pytest.fixture(scope="session")
def stack():
    base = tempfile.mkdtemp(prefix="ddns-it-")
    s = ddnsstack.Stack(base, log=lambda m: print("[stack] " + m))
    try:
        s.start()
    except Exception:
        s.stop()
        raise
    yield s
    rc = s.stop()
    log = s.gateway_log()
    # A clean SIGTERM shutdown exits 0; under test-asan a sanitizer report
    # (leak, overflow, undefined behaviour) makes this fail.
    assert rc == 0, "ddns-gateway exited with %r; log:\n%s" % (rc, log[-4000:])
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        assert marker not in log, "sanitizer report in the gateway log:\n" + log[-4000:]
    if os.environ.get("DDNS_KEEP_TMP"):
        print("kept %s" % base)
    else:
        shutil.rmtree(base, ignore_errors=True)


_device_numbers = itertools.count(1)


@pytest.fixture
def device(stack, tmp_path):
    """A newly provisioned device: returns (credentials dict, credentials file)."""
    n = next(_device_numbers)
    mac = "02:00:00:%02x:%02x:%02x" % (os.getpid() & 0xff, n >> 8, n & 0xff)
    creds = stack.provision(mac)
    path = stack.write_credentials(creds, str(tmp_path / "device.json"))
    return creds, path

