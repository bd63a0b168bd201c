"""The deployment files that no container engine or service manager runs
here: docker/compose.yml and docker/Dockerfile (parsed, every file they
name exists, addresses and ports agree with the configuration files the
cluster tests run), and deploy/systemd/ddns-gateway.service (systemd's own
check, the hardening it promises, and a gateway reading its keys from the
credentials directory the unit's LoadCredential= lines describe)."""
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import time

import pytest
import yaml

import ddnsstack

ROOT = ddnsstack.ROOT
DOCKER = ddnsstack.DOCKER
UNIT = os.path.join(ROOT, "deploy", "systemd", "ddns-gateway.service")


@pytest.fixture(scope="module")
def compose():
    with open(os.path.join(DOCKER, "compose.yml")) as f:
        return yaml.safe_load(f)


def dockerfile_stages():
    stages = {}
    name = None
    with open(os.path.join(DOCKER, "Dockerfile")) as f:
        for line in f:
            m = re.match(r"FROM\s+\S+(?:\s+AS\s+(\S+))?\s*$", line, re.I)
            if m:
                name = m.group(1) or "stage%d" % len(stages)
                stages[name] = []
            elif name is not None:
                stages[name].append(line)
    return stages


def ini_value(text, section, key):
    sec = None
    for line in text.splitlines():
        line = line.split(";")[0].strip()
        m = re.match(r"\[(.+)\]$", line)
        if m:
            sec = m.group(1)
        elif sec == section and "=" in line:
            k, _, v = line.partition("=")
            if k.strip() == key:
                return v.strip()
    raise KeyError("%s.%s" % (section, key))


def test_compose_parses_and_names_existing_files(compose):
    services = compose["services"]
    for want in ("postgres", "migrate", "knot-primary", "knot-secondary", "gateway1",
                 "gateway2", "haproxy", "init"):
        assert want in services, want
    stages = dockerfile_stages()
    declared = set(compose.get("volumes") or {})
    for name, svc in services.items():
        build = svc.get("build")
        if build:
            ctx = os.path.normpath(os.path.join(DOCKER, build["context"]))
            assert os.path.isdir(ctx), (name, ctx)
            assert os.path.isfile(os.path.join(ctx, build["dockerfile"])), (name, build)
            assert build.get("target") in stages, (name, build.get("target"), list(stages))
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("."):
                path = os.path.normpath(os.path.join(DOCKER, src))
                assert os.path.exists(path), (name, vol)
            else:
                assert src in declared, (name, vol, declared)
        for dep in (svc.get("depends_on") or []):
            assert dep in services, (name, dep)
        if "image" not in svc:
            assert build, name
    # a service of an image built here builds it (compose must never try to
    # pull it), and one image name always means one target
    targets = {}
    for name, svc in services.items():
        if svc.get("image", "").startswith("ddns-"):
            assert "build" in svc, name
            assert targets.setdefault(svc["image"], svc["build"]["target"]) == \
                svc["build"]["target"], (name, svc["image"])


def test_dockerfile_copies_existing_files_and_runs_unprivileged():
    stages = dockerfile_stages()
    assert list(stages)[0] == "build" and list(stages)[-1] == "gateway"
    for name, lines in stages.items():
        for line in lines:
            m = re.match(r"COPY\s+(?!--from)(.+)\s+(\S+)\s*$", line)
            if m:
                for src in m.group(1).split():
                    assert os.path.exists(os.path.join(ROOT, src)), (name, src)
    final = "".join(stages["gateway"])
    assert re.search(r"^USER ddns$", final, re.M)
    assert "-dev" not in final and "build-essential" not in final
    assert "HEALTHCHECK" in final and "/healthz" in final
    # the health check asks the admin listener of the configuration it ships
    with open(os.path.join(DOCKER, "gateway", "gateway.conf")) as f:
        conf = f.read()
    admin_port = ini_value(conf, "admin", "listen").rsplit(":", 1)[1]
    assert "/dev/tcp/127.0.0.1/%s" % admin_port in final
    assert re.search(r"^USER knot$", "".join(stages["knot"]), re.M)
    assert re.search(r"^USER haproxy$", "".join(stages["haproxy"]), re.M)


@pytest.mark.skipif(shutil.which("dpkg") is None or shutil.which("readelf") is None,
                    reason="needs dpkg and readelf")
@pytest.mark.skipif(bool(os.environ.get("DDNS_SANITIZED")),
                    reason="the image is built without sanitizers; these programs need their runtimes")
def test_dockerfile_installs_every_library_the_programs_need():
    """Each shared library the programs copied into the final image link
    against (DT_NEEDED) comes from a Debian package that stage installs."""
    final = "".join(dockerfile_stages()["gateway"])
    packages = final.split("--no-install-recommends", 1)[1].split("&&", 1)[0]
    installed = set(re.findall(r"[a-z0-9][a-z0-9.+-]+", packages))
    copied = re.findall(r"/out/bin/(\S+)", final)
    assert "ddns-gateway" in copied, copied
    for prog in copied:
        path = os.path.join(ddnsstack.BIN, prog)
        out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True,
                             check=True).stdout
        resolved = dict(re.findall(r"^\s*(\S+) => (/\S+)", subprocess.run(
            ["ldd", path], capture_output=True, text=True, check=True).stdout, re.M))
        for lib in re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out):
            real = os.path.realpath(resolved[lib])
            owner = None
            for cand in (real, re.sub(r"^/usr/lib/", "/lib/", real),
                         re.sub(r"^/lib/", "/usr/lib/", real)):
                owner = subprocess.run(["dpkg", "-S", cand], capture_output=True, text=True)
                if owner.returncode == 0:
                    break
            assert owner.returncode == 0, (prog, lib, real, owner.stderr)
            pkg = owner.stdout.split(":")[0]
            if pkg == "libc6":
                continue
            assert pkg in installed, "%s needs %s from %s, not installed in the final stage" % (
                prog, lib, pkg)


def test_compose_addresses_agree_with_the_configuration_files(compose):
    s = compose["services"]
    net = ipaddress.ip_network(compose["networks"]["ddns"]["ipam"]["config"][0]["subnet"])
    ip = {name: svc["networks"]["ddns"]["ipv4_address"] for name, svc in s.items()
          if isinstance(svc.get("networks"), dict)}
    for name, a in ip.items():
        assert ipaddress.ip_address(a) in net, (name, a)
    assert len(set(ip.values())) == len(ip)
    with open(os.path.join(DOCKER, "gateway", "gateway.conf")) as f:
        gw = f.read()
    listen = ini_value(gw, "gateway", "listen")
    assert ini_value(gw, "proxy", "listeners") == listen
    assert ini_value(gw, "proxy", "trusted") == ip["haproxy"]
    assert "hostaddr=%s " % ip["postgres"] in ini_value(gw, "database", "conninfo")
    assert ini_value(gw, "zone ddns.example.test", "primary") == ip["knot-primary"] + ":53"
    port = listen.rsplit(":", 1)[1]
    env = s["haproxy"]["environment"]
    assert env["DDNS_GW1"] == "%s:%s" % (ip["gateway1"], port)
    assert env["DDNS_GW2"] == "%s:%s" % (ip["gateway2"], port)
    admin_port = ini_value(gw, "admin", "listen").rsplit(":", 1)[1]
    assert env["DDNS_GW1_ADMIN_PORT"] == env["DDNS_GW2_ADMIN_PORT"] == admin_port
    assert s["migrate"]["command"][0].startswith("hostaddr=%s " % ip["postgres"])
    with open(os.path.join(DOCKER, "knot", "primary.conf")) as f:
        assert "address: %s@53" % ip["knot-secondary"] in f.read()
    with open(os.path.join(DOCKER, "knot", "secondary.conf")) as f:
        assert "address: %s@53" % ip["knot-primary"] in f.read()
    with open(os.path.join(DOCKER, "knot", "ddns.example.test.zone")) as f:
        zone = f.read()
    assert re.search(r"^ns1\s+A\s+%s$" % re.escape(ip["knot-primary"]), zone, re.M)
    assert re.search(r"^ns2\s+A\s+%s$" % re.escape(ip["knot-secondary"]), zone, re.M)


def test_compose_postgres_makes_the_login_users_the_services_use(compose, stack):
    """docker/postgres/ddns-roles.sh, which the postgres service runs at
    initialisation, against a real PostgreSQL: it makes the login users the
    gateway configuration and the tools service connect as, members of the
    roles db/migrate grants, with the passwords of the environment; run
    again, it changes nothing but the passwords."""
    s = compose["services"]
    mounts = [v.split(":") for v in s["postgres"]["volumes"]]
    script = [os.path.normpath(os.path.join(DOCKER, src)) for src, dst, *_ in mounts
              if dst.startswith("/docker-entrypoint-initdb.d/")]
    assert script == [os.path.join(DOCKER, "postgres", "ddns-roles.sh")], mounts
    with open(os.path.join(DOCKER, "gateway", "gateway.conf")) as f:
        gw_user = re.search(r"user=(\S+)", ini_value(f.read(), "database", "conninfo")).group(1)
    tools_user = re.search(r"user=(\S+)", s["tools"]["environment"]["DDNS_DB"]).group(1)
    assert "DDNS_DB_GATEWAY_PASSWORD" in s["gateway1"]["environment"]["PGPASSWORD"]
    assert "DDNS_DB_PROVISION_PASSWORD" in s["tools"]["environment"]["PGPASSWORD"]
    env = dict(os.environ, PGHOST="127.0.0.1", PGPORT=str(stack.pg_port), POSTGRES_USER="ddns",
               POSTGRES_DB="ddns", DDNS_DB_GATEWAY_PASSWORD="gw 'pw",
               DDNS_DB_PROVISION_PASSWORD="prov-pw")
    for _ in range(2):
        p = subprocess.run(["sh", script[0]], env=env, capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
    rows = stack.psql("SELECT r.rolname, g.rolname, r.rolpassword IS NOT NULL FROM pg_auth_members m "
                      "JOIN pg_authid r ON r.oid = m.member JOIN pg_authid g ON g.oid = m.roleid "
                      "WHERE r.rolname IN ('%s', '%s') ORDER BY 1" % (gw_user, tools_user))
    assert rows == [[gw_user, "ddns_gateway", "t"], [tools_user, "ddns_provision", "t"]], rows


def test_haproxy_accepts_the_compose_environment(compose, tmp_path):
    env = dict(os.environ, **{k: str(v) for k, v in
                              compose["services"]["haproxy"]["environment"].items()})
    env["DDNS_HAPROXY_STATS"] = str(tmp_path / "stats.sock")
    p = subprocess.run(["haproxy", "-c", "-f", os.path.join(DOCKER, "haproxy", "haproxy.cfg")],
                       env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Configuration file is valid" in p.stdout + p.stderr
    # TCP passthrough (TLS ends at the gateways) with PROXY protocol v2
    with open(os.path.join(DOCKER, "haproxy", "haproxy.cfg")) as f:
        cfg = f.read()
    assert re.search(r"^\s*mode tcp$", cfg, re.M)
    assert re.search(r"^\s*default-server send-proxy-v2 check ", cfg, re.M)
    assert "ssl" not in re.sub(r"#.*", "", cfg)


# ---- systemd ------------------------------------------------------------------

def unit_text():
    with open(UNIT) as f:
        return f.read()


def test_systemd_unit_is_hardened():
    u = unit_text()
    for line in ("User=ddns", "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                 "ProtectHome=yes", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
                 "Type=notify", "ExecReload=/bin/kill -HUP $MAINPID"):
        assert re.search(r"^%s$" % re.escape(line), u, re.M), line
    creds = re.findall(r"^LoadCredential=([^:\n]+):(\S+)$", u, re.M)
    assert [c for c in creds if c[0].endswith(".key")], creds
    # only master keys may end in .key: the gateway loads every *.key file
    assert all(c[1].startswith("/etc/ddns/keys/") for c in creds if c[0].endswith(".key"))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_unit_passes_systemd_analyze(tmp_path):
    unit = tmp_path / "ddns-gateway.service"
    unit.write_text(unit_text().replace("/usr/local/bin/ddns-gateway",
                                        os.path.join(ddnsstack.BIN, "ddns-gateway")))
    p = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


def test_gateway_reads_keys_from_the_credentials_directory(stack, device, tmp_path):
    """What the unit's LoadCredential= lines build: one file per credential,
    named by its ID, mode 0400, in $CREDENTIALS_DIRECTORY; the configuration
    names them there. The gateway starts and verifies a device with them."""
    creds_dir = tmp_path / "credentials"
    creds_dir.mkdir(mode=0o500)
    sources = {"tsig.secret": os.path.join(stack.dir, "tsig.secret"),
               "tls-server.pem": os.path.join(stack.dir, "tls", "server.key")}
    for cid, path in re.findall(r"^LoadCredential=([^:\n]+):(\S+)$", unit_text(), re.M):
        if cid.endswith(".key"):
            src = os.path.join(stack.key_dir, os.path.basename(path))
        else:
            src = sources[cid]
        shutil.copyfile(src, creds_dir / cid)
        os.chmod(creds_dir / cid, 0o400)
    port = ddnsstack.free_port()
    text = stack.gateway_config_text(port)
    text = re.sub(r"^directory = .*$", "directory = $CREDENTIALS_DIRECTORY", text, flags=re.M)
    text = re.sub(r"^private_key = .*$", "private_key = $CREDENTIALS_DIRECTORY/tls-server.pem",
                  text, flags=re.M)
    text = re.sub(r"^tsig_secret_file = .*$", "tsig_secret_file = $CREDENTIALS_DIRECTORY/tsig.secret",
                  text, flags=re.M)
    conf = tmp_path / "gateway.conf"
    conf.write_text(text)
    gw = os.path.join(ddnsstack.BIN, "ddns-gateway")
    env = dict(os.environ, CREDENTIALS_DIRECTORY=str(creds_dir))

    # without the variable the configuration is refused, with a clear reason
    bad = subprocess.run([gw, "--check-config", "-c", str(conf)], capture_output=True, text=True,
                         timeout=30, env={k: v for k, v in env.items() if k != "CREDENTIALS_DIRECTORY"})
    assert bad.returncode != 0
    assert "[keys] directory: $CREDENTIALS_DIRECTORY is not set" in bad.stderr, bad.stderr
    ok = subprocess.run([gw, "--check-config", "-c", str(conf)], capture_output=True, text=True,
                        timeout=30, env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    log = tmp_path / "gateway.log"
    with open(log, "w") as logf:
        p = subprocess.Popen([gw, "-c", str(conf)], stdout=logf, stderr=logf, env=env,
                             start_new_session=True)
    try:
        deadline = time.time() + 20
        while "running:" not in log.read_text():
            assert p.poll() is None and time.time() < deadline, log.read_text()
            time.sleep(0.1)
        creds, path = device
        r = stack.client(path, "--ipv4", "192.0.2.181", port=port)
        assert r.stdout.strip() == "good 192.0.2.181", r.stdout + r.stderr
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=15) == 0, log.read_text()[-3000:]
