"""pytest fixtures: one real PostgreSQL, Knot DNS and ddns-gateway on
loopback for the whole session, in a temporary directory."""
import itertools
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import ddnsstack  # noqa: E402

# The flood and connection-limit tests hold hundreds of sockets at once; a
# login shell's soft limit of 1024 is raised as far as the machine allows.
ddnsstack.raise_fd_limit()


@pytest.fixture(scope="session")
def stack():
    with ddnsstack.started("ddns-it-", "stack") as s:
        yield s


_device_numbers = itertools.count(1)


@pytest.fixture
def device(stack, tmp_path):
    """A newly provisioned device: returns (credentials dict, credentials file)."""
    n = next(_device_numbers)
    mac = "02:00:00:%02x:%02x:%02x" % (os.getpid() & 0xff, n >> 8, n & 0xff)
    creds = stack.provision(mac)
    path = stack.write_credentials(creds, str(tmp_path / "device.json"))
    return creds, path

