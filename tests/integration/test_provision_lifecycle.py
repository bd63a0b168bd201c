"""Device life cycle with ddns-provision, seen by the real gateway and Knot
DNS: revoke (updates answered 'disabled', DNS records removed through the
outbox, history kept) and restore (the next update publishes again)."""
import json
import os
import random
import subprocess
import time
import uuid

import ddnsstack

PROV = os.path.join(ddnsstack.BIN, "ddns-provision")
ZONE = ddnsstack.ZONE


def prov(stack, *args, operator="life"):
    op = ["--operator", operator] if operator else []
    return subprocess.run([PROV] + list(args) + ["--db", stack.provision_conninfo] + op,
                          capture_output=True, text=True, timeout=60)


def audit_rows(stack, dev):
    """(command, operator, kid, generation, fqdn, devices_changed) of the
    revoke and restore rows of dev, oldest first."""
    return stack.psql("SELECT command, operator, kid, generation::text, coalesce(fqdn, ''), "
                      "devices_changed::text FROM provision_batches WHERE device_id = '%s' "
                      "AND command IN ('revoke', 'restore') ORDER BY batch_id" % dev)


def one_device(stack, tmp_path):
    mac = "0a:" + ":".join("%02x" % random.getrandbits(8) for _ in range(5))
    src = tmp_path / "in.csv"
    src.write_text("mac,serial,model\n%s,SN-%s,IPC-G5\n" % (mac, uuid.uuid4().hex[:10]))
    out = tmp_path / "out.jsonl"
    p = subprocess.run([PROV, "batch", "--csv", str(src), "--zone", ZONE, "--operator", "life",
                        "--key-dir", stack.key_dir, "--db", stack.provision_conninfo, "--out", str(out)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    creds = json.loads(out.read_text())
    path = stack.write_credentials(creds, str(tmp_path / "device.json"))
    return mac, creds, path


def test_revoke_and_restore_seen_by_gateway_and_dns(stack, tmp_path):
    mac, creds, path = one_device(stack, tmp_path)
    dev = creds["device_id"]
    p = stack.client(path, "--ipv4", "192.0.2.150", "--ipv6", "2001:db8::150")
    assert p.stdout.strip() == "good 192.0.2.150 2001:db8::150", p.stderr
    assert stack.wait_dns(creds["fqdn"], "A", ["192.0.2.150"]) == ["192.0.2.150"]
    assert stack.wait_dns(creds["fqdn"], "AAAA", ["2001:db8::150"]) == ["2001:db8::150"]
    assert stack.outbox_empty()

    p = prov(stack, "revoke", "--mac", mac.upper())
    assert p.returncode == 0, p.stderr
    assert "device %s revoked" % dev in p.stdout and "2 DNS records" in p.stdout
    assert stack.psql("SELECT status FROM devices WHERE device_id = '%s'" % dev) == [["revoked"]]
    # the records leave DNS, the change is in the history
    assert stack.wait_dns(creds["fqdn"], "A", []) == []
    assert stack.wait_dns(creds["fqdn"], "AAAA", []) == []
    assert stack.outbox_empty()
    assert stack.psql("SELECT rrtype, coalesce(host(new_address), '-') FROM history "
                      "WHERE device_id = '%s' ORDER BY id DESC LIMIT 2" % dev) in (
        [["AAAA", "-"], ["A", "-"]], [["A", "-"], ["AAAA", "-"]])
    # the gateway refuses the device from now on
    time.sleep(1.05)
    p = stack.client(path, "--ipv4", "192.0.2.151")
    assert (p.returncode, p.stdout.strip()) == (1, "disabled")
    assert stack.dig(creds["fqdn"], "A") == []

    p = prov(stack, "revoke", "--mac", mac)
    assert p.returncode == 0 and "already revoked; nothing changed" in p.stdout
    # a batch does not silently bring it back
    src = tmp_path / "again.csv"
    src.write_text("mac,serial,model\n%s,%s,IPC-G5\n" % (mac, creds["serial"]))
    p = subprocess.run([PROV, "batch", "--csv", str(src), "--zone", ZONE, "--operator", "life",
                        "--key-dir", stack.key_dir, "--db", stack.provision_conninfo, "--check"],
                       capture_output=True, text=True)
    assert p.returncode == 1 and "revoked" in p.stderr

    p = prov(stack, "restore", "--mac", mac)
    assert p.returncode == 0, p.stderr
    assert "device %s restored" % dev in p.stdout
    time.sleep(1.05)
    p = stack.client(path, "--ipv4", "192.0.2.152")
    assert p.stdout.strip() == "good 192.0.2.152", p.stderr
    assert stack.wait_dns(creds["fqdn"], "A", ["192.0.2.152"]) == ["192.0.2.152"]
    p = prov(stack, "restore", "--mac", mac, operator="second")
    assert p.returncode == 0 and "already active; nothing changed" in p.stdout
    # every run is in the audit table with its operator, the runs that
    # changed nothing too
    kid, gen = creds["kid"].split("/")
    assert audit_rows(stack, dev) == [
        ["revoke", "life", kid, gen, creds["fqdn"], "1"],
        ["revoke", "life", kid, gen, creds["fqdn"], "0"],
        ["restore", "life", kid, gen, creds["fqdn"], "1"],
        ["restore", "second", kid, gen, creds["fqdn"], "0"],
    ]


def test_revoke_refusals(stack, tmp_path):
    p = prov(stack, "revoke", "--mac", "0a:ff:ff:ff:ff:fe")
    assert p.returncode == 1 and "0affffffffff" not in p.stderr
    assert "device 0afffffffffe is not registered" in p.stderr
    p = prov(stack, "revoke", "--mac", "01:00:5e:00:00:01")
    assert p.returncode == 2 and "multicast" in p.stderr
    p = subprocess.run([PROV, "revoke", "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.startswith("Usage: ddns-provision revoke")
    assert "Exit status" in p.stdout and "--operator NAME" in p.stdout
    # who does it is recorded, so it must be said: nothing changes without it
    mac, creds, _ = one_device(stack, tmp_path)
    p = prov(stack, "revoke", "--mac", mac, operator=None)
    assert p.returncode == 2 and "--operator (or DDNS_OPERATOR) is required" in p.stderr
    assert stack.psql("SELECT status FROM devices WHERE device_id = '%s'"
                      % creds["device_id"]) == [["active"]]
    assert audit_rows(stack, creds["device_id"]) == []
