#!/usr/bin/env python3
"""Reference implementation of the DDNS device protocol (docs/PROTOCOL.md)
that writes docs/vectors/protocol-vectors.txt.

It uses only Python's standard library (hmac, hashlib, base64), independent of
the C code it checks. Run: python3 docs/vectors/gen-vectors.py > docs/vectors/protocol-vectors.txt
"""
import base64
import hashlib
import hmac
import re
import sys

DOMAIN = b"ddns-device-secret-v1"
SCHEME = "DDNS-HMAC-SHA256"


def canon_mac(text):
    """Return (device_id, None) or (None, reason)."""
    t = text.strip()
    forms = [
        r"^([0-9A-Fa-f]{2})([:-])([0-9A-Fa-f]{2})\2([0-9A-Fa-f]{2})\2([0-9A-Fa-f]{2})\2([0-9A-Fa-f]{2})\2([0-9A-Fa-f]{2})$",
        r"^([0-9A-Fa-f]{4})\.([0-9A-Fa-f]{4})\.([0-9A-Fa-f]{4})$",
        r"^([0-9A-Fa-f]{12})$",
    ]
    hexs = None
    for f in forms:
        m = re.match(f, t)
        if m:
            hexs = "".join(g for g in m.groups() if g not in (":", "-"))
            break
    if hexs is None:
        return None, "syntax"
    hexs = hexs.lower()
    b = bytes.fromhex(hexs)
    if b == b"\x00" * 6:
        return None, "zero"
    if b == b"\xff" * 6:
        return None, "broadcast"
    if b[0] & 1:
        return None, "multicast"
    return hexs, None


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def derive(master, kid, device_id):
    msg = DOMAIN + b"\x00" + kid.encode() + b"\x00" + device_id.encode()
    return hmac.new(master, msg, hashlib.sha256).digest()


def string_to_sign(device_id, kid, ts, nonce, body):
    return ("%s\nPOST\n/v1/update\n%s\n%s\n%d\n%s\n" % (SCHEME, device_id, kid, ts, nonce)).encode() + body


def sign(secret, device_id, kid, ts, nonce, body):
    return hmac.new(secret, string_to_sign(device_id, kid, ts, nonce, body), hashlib.sha256).hexdigest()


def authorization(device_id, kid, ts, nonce, sig):
    return "%s id=%s,kid=%s,ts=%d,nonce=%s,sig=%s" % (SCHEME, device_id, kid, ts, nonce, sig)


def request(host, auth, body):
    head = ("POST /v1/update HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n"
            % (host, auth, len(body)))
    return head.encode() + body


out = []


def rec(**kw):
    out.append(kw)


MASTER_K1 = bytes(range(32))
MASTER_K2 = hashlib.sha256(b"second master key for vectors").digest()
KEYS = {"k1": MASTER_K1, "k2026b": MASTER_K2}

# --- MAC canonicalisation ---------------------------------------------------
for inp in ["3C:5A:B4:F0:9A:21", "3c-5a-b4-f0-9a-21", "3c5a.b4f0.9a21", "3C5AB4F09A21",
            "02:00:00:00:00:01", "  00:1a:2b:3c:4d:5e  ",
            "01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00", "33:33:00:00:00:01",
            "3c:5a:b4:f0:9a", "3c:5a:b4:f0:9a:21:00", "3c:5a-b4:f0:9a:21", "3g:5a:b4:f0:9a:21",
            "3c5ab4f09a2", "", "3c:5a:b4:f0:9a:2"]:
    dev, err = canon_mac(inp)
    if dev:
        rec(type="mac", input=inp, device_id=dev)
    else:
        rec(type="mac", input=inp, error=err)

# --- secret derivation ------------------------------------------------------
DEVICES = ["3c5ab4f09a21", "001a2b3c4d5e", "020000000001"]
for kid, mk in KEYS.items():
    for dev in DEVICES:
        s = derive(mk, kid, dev)
        rec(type="derive", master_key_hex=mk.hex(), kid=kid, device_id=dev,
            secret_hex=s.hex(), secret_b64u=b64u(s), password="%s.%s" % (kid, b64u(s)))

# --- signed requests (what a device sends) -----------------------------------
SIGN_CASES = [
    ("k1", "3c5ab4f09a21", 1700000000, "0123456789abcdef", b"ipv4=192.0.2.10"),
    ("k1", "3c5ab4f09a21", 1700000001, "fedcba9876543210", b"ipv6=2001:db8::10"),
    ("k1", "3c5ab4f09a21", 1700000002, "00000000000000ff", b"ipv4=192.0.2.10&ipv6=2001:db8::10"),
    ("k2026b", "001a2b3c4d5e", 1800000000, "a5a5a5a5a5a5a5a5", b""),
]
for kid, dev, ts, nonce, body in SIGN_CASES:
    secret = derive(KEYS[kid], kid, dev)
    sig = sign(secret, dev, kid, ts, nonce, body)
    auth = authorization(dev, kid, ts, nonce, sig)
    rec(type="sign", master_key_hex=KEYS[kid].hex(), kid=kid, device_id=dev,
        secret_hex=secret.hex(), ts=str(ts), nonce=nonce, body=body.decode(),
        host="ddns.example.test",
        string_to_sign_hex=string_to_sign(dev, kid, ts, nonce, body).hex(),
        sig=sig, authorization=auth,
        request_hex=request("ddns.example.test", auth, body).hex())

# --- verification outcomes (what a gateway decides before the database) ------
# server_time is the gateway clock; skew is the accepted window in seconds.
kid, dev, ts, nonce = "k1", "3c5ab4f09a21", 1700000000, "0123456789abcdef"
secret = derive(MASTER_K1, kid, dev)
good_body = b"ipv4=192.0.2.10"
good_sig = sign(secret, dev, kid, ts, nonce, good_body)


def verify_case(name, auth, body, server_time, expect, **extra):
    rec(type="verify", name=name, authorization=auth, body=body.decode("latin-1"),
        server_time=str(server_time), skew="300", expect=expect, **extra)


verify_case("valid", authorization(dev, kid, ts, nonce, good_sig), good_body, ts + 5, "ok",
            device_id=dev, kid=kid, ipv4="192.0.2.10")
verify_case("valid-at-window-edge", authorization(dev, kid, ts, nonce, good_sig), good_body, ts + 300, "ok",
            device_id=dev, kid=kid, ipv4="192.0.2.10")
verify_case("tampered-body", authorization(dev, kid, ts, nonce, good_sig), b"ipv4=192.0.2.66", ts, "badauth")
wrong = derive(MASTER_K1, kid, "3c5ab4f09a22")
verify_case("wrong-secret", authorization(dev, kid, ts, nonce, sign(wrong, dev, kid, ts, nonce, good_body)),
            good_body, ts, "badauth")
verify_case("other-device-signature",
            authorization("3c5ab4f09a22", kid, ts, nonce, good_sig), good_body, ts, "badauth")
verify_case("unknown-kid", authorization(dev, "k9", ts, nonce, sign(derive(MASTER_K1, "k9", dev), dev, "k9", ts, nonce, good_body)),
            good_body, ts, "badauth")
verify_case("stale", authorization(dev, kid, ts, nonce, good_sig), good_body, ts + 301, "badtime")
verify_case("future", authorization(dev, kid, ts, nonce, good_sig), good_body, ts - 301, "badtime")
verify_case("tampered-ts", authorization(dev, kid, ts + 1, nonce, good_sig), good_body, ts, "badauth")
verify_case("tampered-nonce", authorization(dev, kid, ts, "0123456789abcdee", good_sig), good_body, ts, "badauth")
verify_case("uppercase-sig", authorization(dev, kid, ts, nonce, good_sig.upper()), good_body, ts, "badrequest")
verify_case("wrong-scheme", authorization(dev, kid, ts, nonce, good_sig).replace(SCHEME, "Basic"), good_body, ts, "badrequest")
verify_case("missing-nonce", "%s id=%s,kid=%s,ts=%d,sig=%s" % (SCHEME, dev, kid, ts, good_sig), good_body, ts, "badrequest")
verify_case("fields-reordered", "%s kid=%s,id=%s,ts=%d,nonce=%s,sig=%s" % (SCHEME, kid, dev, ts, nonce, good_sig),
            good_body, ts, "badrequest")
verify_case("short-nonce", authorization(dev, kid, ts, "0123", good_sig), good_body, ts, "badrequest")
verify_case("ts-leading-zero", "%s id=%s,kid=%s,ts=0%d,nonce=%s,sig=%s" % (SCHEME, dev, kid, ts, nonce, good_sig),
            good_body, ts, "badrequest")
verify_case("device-id-not-canonical", authorization("3C5AB4F09A21", kid, ts, nonce, good_sig), good_body, ts, "badrequest")
verify_case("multicast-device-id", authorization("3d5ab4f09a21", kid, ts, nonce, good_sig), good_body, ts, "badrequest")


def signed_body_case(name, body, expect, **extra):
    s = sign(secret, dev, kid, ts, nonce, body)
    verify_case(name, authorization(dev, kid, ts, nonce, s), body, ts, expect, **extra)


signed_body_case("empty-body-means-connection-address", b"", "ok", device_id=dev, kid=kid)
signed_body_case("both-families", b"ipv4=192.0.2.10&ipv6=2001:DB8:0:0::10", "ok", device_id=dev, kid=kid,
                 ipv4="192.0.2.10", ipv6="2001:db8::10")
signed_body_case("unknown-parameter-ignored", b"ipv4=192.0.2.10&fw=4.1.0", "ok", device_id=dev, kid=kid, ipv4="192.0.2.10")
signed_body_case("bad-ipv4", b"ipv4=192.0.2.300", "badrequest", field="ipv4")
signed_body_case("ipv6-in-ipv4", b"ipv4=2001:db8::1", "badrequest", field="ipv4")
signed_body_case("bad-ipv6", b"ipv6=2001:db8::g", "badrequest", field="ipv6")
signed_body_case("ipv4-in-ipv6", b"ipv6=192.0.2.10", "badrequest", field="ipv6")
signed_body_case("duplicate-parameter", b"ipv4=192.0.2.10&ipv4=192.0.2.11", "badrequest", field="ipv4")
signed_body_case("percent-encoding", b"ipv4=192.0.2.1%30", "badrequest", field="ipv4")
signed_body_case("empty-value", b"ipv4=", "badrequest", field="ipv4")
signed_body_case("no-equals", b"ipv4", "badrequest", field="ipv4")

# --- responses (what a device parses) ----------------------------------------
RESP = [
    (200, "good 192.0.2.10\n", "good", {"addr1": "192.0.2.10"}),
    (200, "good 192.0.2.10 2001:db8::10\n", "good", {"addr1": "192.0.2.10", "addr2": "2001:db8::10"}),
    (200, "nochg 2001:db8::10\n", "nochg", {"addr1": "2001:db8::10"}),
    (400, "badrequest ipv4\n", "badrequest", {"detail": "ipv4"}),
    (401, "badauth\n", "badauth", {}),
    (401, "badtime 1700000123\n", "badtime", {"server_time": "1700000123"}),
    (403, "disabled\n", "disabled", {}),
    (403, "badagent\n", "badagent", {}),
    (409, "replay\n", "replay", {}),
    (429, "ratelimit 60\n", "ratelimit", {"retry_after": "60"}),
    (503, "911\n", "911", {}),
    (200, "good\n", "error", {}),
    (200, "great 192.0.2.10\n", "error", {}),
    (401, "badtime\n", "error", {}),
    (401, "badtime 12x\n", "error", {}),
    (200, "good 192.0.2.10", "error", {}),
    (500, "good 192.0.2.10\n", "error", {}),
]
for status, body, expect, extra in RESP:
    rec(type="response", status=str(status), body_hex=body.encode().hex(), result=expect, **extra)

w = sys.stdout.write
w("# DDNS device protocol test vectors (docs/PROTOCOL.md, section 9).\n")
w("# Generated by docs/vectors/gen-vectors.py; do not edit by hand.\n")
w("# Records are separated by blank lines. Each line is 'key = value'; the value\n")
w("# runs to the end of the line (it may be empty). Every record starts with\n")
w("# 'type'. Keys ending in _hex hold bytes as lowercase hexadecimal.\n")
for r in out:
    w("\n")
    for k, v in r.items():
        w("%s = %s\n" % (k, v))
