#!/usr/bin/env python3
"""Writes the seed corpora of the gateway fuzzers (run from the repository
root: python3 gateway/fuzz/make_seeds.py). The request seeds are signed with
the fuzzer's fixed key for "k1" (32 bytes of '1') at its fixed server time."""
import hashlib
import hmac
import os
import socket

HERE = os.path.dirname(os.path.abspath(__file__))
SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def write(kind, name, data):
    d = os.path.join(HERE, "corpus", kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def v2(fam, src, dst, tlv=b""):
    body = socket.inet_pton(fam, src) + socket.inet_pton(fam, dst) + b"\x13\x88\x01\xbb" + tlv
    return SIG + bytes([0x21, 0x21 if fam == socket.AF_INET6 else 0x11]) + \
        len(body).to_bytes(2, "big") + body


def proxy():
    hello = b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00"
    write("proxy", "v1-tcp4", b"PROXY TCP4 203.0.113.7 10.0.0.1 5555 443\r\n" + hello)
    write("proxy", "v1-tcp6", b"PROXY TCP6 2001:db8::7 2001:db8::1 5555 443\r\n" + hello)
    write("proxy", "v1-unknown", b"PROXY UNKNOWN ffff:f::1 ffff:f::2 1 2\r\n")
    write("proxy", "v2-inet", v2(socket.AF_INET, "203.0.113.7", "10.0.0.1") + hello)
    write("proxy", "v2-inet6", v2(socket.AF_INET6, "2001:db8::7", "2001:db8::1", b"\x04\x00\x01x"))
    write("proxy", "v2-local", SIG + b"\x20\x00\x00\x00" + hello)
    write("proxy", "v2-unspec", SIG + b"\x21\x00\x00\x00")
    write("proxy", "tls", hello)
    write("proxy", "bad-v1", b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n")


def sign(master, method, path, dev, kid, ts, nonce, body):
    """docs/PROTOCOL.md sections 3 and 4.3; kid is the key reference (k1,
    k1/2)."""
    key_id, _, gen = kid.partition(b"/")
    if gen:
        msg = b"ddns-device-secret-v2\x00" + key_id + b"\x00" + dev + b"\x00" + gen
    else:
        msg = b"ddns-device-secret-v1\x00" + key_id + b"\x00" + dev
    secret = hmac.new(master, msg, hashlib.sha256).digest()
    msg = b"".join(x + b"\n" for x in (b"DDNS-HMAC-SHA256", method, path, dev, kid,
                                        str(ts).encode(), nonce)) + body
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()


def request():
    dev, kid, ts, nonce = b"3c5ab4f09a21", b"k1", 1700000000, b"0123456789abcdef"
    body = b"ipv4=192.0.2.10&ipv6=2001:db8::10"
    sig = sign(b"1" * 32, b"POST", b"/v1/update", dev, kid, ts, nonce, body)
    auth = b"DDNS-HMAC-SHA256 id=%s,kid=%s,ts=%d,nonce=%s,sig=%s" % (dev, kid, ts, nonce,
                                                                      sig.encode())
    write("request", "signed", auth + b"\n" + body)
    write("request", "empty-body", auth + b"\n")
    write("request", "badtime", auth.replace(b"ts=1700000000", b"ts=1600000000") + b"\n" + body)
    write("request", "no-auth", body)
    write("request", "bad-ipv6", auth + b"\nipv6=2001:db8:::1")
    sig = sign(b"1" * 32, b"POST", b"/v1/update", dev, b"k1/2", ts, nonce, body)
    write("request", "signed-generation", b"DDNS-HMAC-SHA256 id=%s,kid=k1/2,ts=%d,nonce=%s,sig=%s"
          % (dev, ts, nonce, sig.encode()) + b"\n" + body)


def route():
    # byte 0: method (0 GET, 1 POST, 2 HEAD, 3 PUT, ...), byte 1: max_uri_length
    # 64 + 4 * b, byte 2: max_query_params b % 20, then the target
    write("route", "post-update", b"\x01\x3c\x10/v1/update")
    write("route", "get-update", b"\x00\x3c\x10/v1/update")
    write("route", "health-query", b"\x00\x3c\x04/healthz?a=1&b=2;c=3&d=4&e=5#x")
    write("route", "long", b"\x02\x00\x10/healthz?" + b"a" * 100)
    write("route", "other", b"\x03\xff\x13/nic/update?hostname=x&myip=1.2.3.4")


def http():
    """Whole connections: fuzz_http's key for "k1" is 32 bytes of 0x01."""
    dev, kid, ts, nonce = b"3c5ab4f09a21", b"k1", 1700000000, b"0123456789abcdef"
    body = b"ipv4=192.0.2.10"
    sig = sign(b"\x01" * 32, b"POST", b"/v1/update", dev, kid, ts, nonce, body)
    auth = b"DDNS-HMAC-SHA256 id=%s,kid=%s,ts=%d,nonce=%s,sig=%s" % (dev, kid, ts, nonce,
                                                                      sig.encode())
    upd = (b"POST /v1/update HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth +
           b"\r\nUser-Agent: AcmeCam-X3/2.1.0\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    write("http", "update", upd)
    head, _, b = upd.partition(b"\r\n\r\n")
    write("http", "update-chunked", head.replace(b"Content-Length: 15", b"Transfer-Encoding: chunked")
          + b"\r\n\r\n5\r\nipv4=\r\na\r\n192.0.2.10\r\n0\r\n\r\n")
    write("http", "update-two-lengths", upd.replace(b"Content-Length: 15",
                                                    b"Content-Length: 15\r\nContent-Length: 4"))
    dyn = (b"GET /nic/update?hostname=a.example.test,b.example.test&myip=192.0.2.1%2C2001:db8::1"
           b"&offline=NO HTTP/1.1\r\nHost: x\r\nAuthorization: Basic "
           b"M2M1YWI0ZjA5YTIxOmsxLlotVVpyWXdWazVXNkU0NzRHbDU5ZlBVUHJ5ZkpIOG5BTTM0UFZQUGIxMjA=\r\n"
           b"User-Agent: Acme - CamX3 - 2.1.0\r\n\r\n")
    write("http", "dyndns", dyn)
    write("http", "pipelined", b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + upd +
          b"HEAD /checkip HTTP/1.0\r\n\r\nDELETE /v1/update HTTP/1.1\r\n\r\n")
    write("http", "garbage", b"GET /\xff\x00 HTTP/1.1\r\nX: \xc3\x28\r\n\r\n")


def config():
    write("config", "full", b"""[gateway]
listen = 127.0.0.1:8443, [::1]:8443
clock_skew = 300
log_level = info
log_format = json
workers = 2
request_timeout = 10

[tls]
certificate = /nonexistent/server.crt
private_key = /nonexistent/server.key

[limits]
max_header_size = 8192
max_body_size = 4096
max_uri_length = 1024
max_query_params = 16
header_timeout = 10
max_connections = 10000
max_connections_per_source = 64
auth_fail_limit = 10
auth_fail_window = 60
auth_block_time = 300
min_change_interval = 60

[proxy]
listeners = 127.0.0.1:8443
trusted = 10.0.0.0/8, 2001:db8::/32

[admin]
listen = 127.0.0.1:9100

[database]
conninfo = host=127.0.0.1 dbname=ddns user=ddns
pool_size = 4

[keys]
directory = /nonexistent/keys

[dyndns2]
max_hosts = 20
not_yours = no

[firmware]
blocked_models = AcmeCam-X1, AcmeCam-X2
minimum_versions = AcmeCam-X3/2.1.0

[zone ddns.example.test]
primary = 127.0.0.1:53
tsig_key_name = ddns-update
tsig_algorithm = hmac-sha256
tsig_secret_file = /nonexistent/tsig.secret
default_ttl = 60
""")
    write("config", "broken", b"[gateway\nlisten = 1.2.3.4:99999\n; comment\n[zone]\nx\n")


def dname(name):
    return b"".join(bytes([len(x)]) + x.encode() for x in name.split(".")) + b"\0"


def dns():
    """Answers to an UPDATE as a server sends them over TCP (the fuzzer puts
    the UPDATE's id into the first frame's id)."""
    zone = dname("ddns.example.test") + b"\x00\x06\x00\x01"          # ZONE IN SOA

    def answer(rcode, extra=b"", arcount=0):
        hdr = b"\x00\x00" + bytes([0xA8, rcode]) + b"\x00\x01\x00\x00\x00\x00" + \
            arcount.to_bytes(2, "big")
        return hdr + zone + extra

    def frame(msg):
        return len(msg).to_bytes(2, "big") + msg

    tsig_rdata = dname("hmac-sha256") + (1795288895).to_bytes(6, "big") + b"\x01\x2c" + \
        b"\x00\x20" + b"\x55" * 32 + b"\x00\x00" + b"\x00\x10" + b"\x00\x00"
    tsig = dname("ddns-update") + b"\x00\xfa\x00\xff\x00\x00\x00\x00" + \
        len(tsig_rdata).to_bytes(2, "big") + tsig_rdata
    write("dns", "noerror-unsigned", frame(answer(0)))
    write("dns", "noerror-bad-tsig", frame(answer(0, tsig, 1)))
    write("dns", "notauth-badsig", frame(answer(9, tsig, 1)))
    write("dns", "refused-then-more", frame(answer(5)) + frame(answer(0)))
    write("dns", "truncated", frame(answer(0))[:9])
    write("dns", "empty-frame", b"\x00\x00")
    write("dns", "garbage", frame(b"\xff" * 40))


if __name__ == "__main__":
    proxy()
    request()
    route()
    http()
    config()
    dns()
