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

DOMAIN = b"ddns-device-secret-v1"       # generation 0
DOMAIN_V2 = b"ddns-device-secret-v2"    # generation 1 and later
PASSWORD_LABEL = b"ddns-dyndns2-password-v1"
SCHEME = "DDNS-HMAC-SHA256"
GENERATION_MAX = 9999999


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


def derive(master, kid, device_id, generation=0):
    if generation == 0:
        msg = DOMAIN + b"\x00" + kid.encode() + b"\x00" + device_id.encode()
    else:
        msg = (DOMAIN_V2 + b"\x00" + kid.encode() + b"\x00" + device_id.encode() + b"\x00"
               + str(generation).encode())
    return hmac.new(master, msg, hashlib.sha256).digest()


def key_ref(kid, generation):
    """What the device stores and sends as its kid: the key id, and
    "/generation" from generation 1 on."""
    return kid if generation == 0 else "%s/%d" % (kid, generation)


def parse_key_ref(text):
    """Return (kid, generation) or None."""
    m = re.fullmatch(r"([a-z0-9]{1,16})(?:/([1-9][0-9]{0,6}))?", text)
    if m is None:
        return None
    return m.group(1), int(m.group(2) or 0)


def dyndns2_password(kid, generation, secret):
    """The HTTP Basic password: the legacy kid.secret for generation 0, a
    password derived from the secret (never the secret) from generation 1
    on."""
    if generation == 0:
        return "%s.%s" % (kid, b64u(secret))
    pw = hmac.new(secret, PASSWORD_LABEL, hashlib.sha256).digest()
    return "%s.%s" % (key_ref(kid, generation), b64u(pw))


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
# generation 0: the devices provisioned before generations existed; from
# generation 1 on the label is v2 and the generation part of the input.
# key_ref is what the device stores and sends as its kid; password is its
# HTTP Basic password for dyndns2 (section 3).
DEVICES = ["3c5ab4f09a21", "001a2b3c4d5e", "020000000001"]
DERIVE_CASES = [(kid, dev, 0) for kid in KEYS for dev in DEVICES] + [
    ("k1", "3c5ab4f09a21", 1),
    ("k1", "3c5ab4f09a21", 2),
    ("k1", "3c5ab4f09a21", 10),
    ("k1", "001a2b3c4d5e", 1),
    ("k2026b", "001a2b3c4d5e", GENERATION_MAX),
    ("kabcdefghijklmno", "020000000001", GENERATION_MAX),   # the longest key reference
]
KEYS["kabcdefghijklmno"] = MASTER_K1
for kid, dev, gen in DERIVE_CASES:
    mk = KEYS[kid]
    s = derive(mk, kid, dev, gen)
    rec(type="derive", master_key_hex=mk.hex(), kid=kid, generation=str(gen),
        key_ref=key_ref(kid, gen), device_id=dev, secret_hex=s.hex(), secret_b64u=b64u(s),
        password=dyndns2_password(kid, gen, s))

# --- key references (the kid field) -------------------------------------------
for text in ["k1", "k1/1", "k1/3", "k2026b/9999999", "kabcdefghijklmno/9999999",
             "abcdefghijklmnop", "k1/0", "k1/01", "k1/", "/3", "abcdefghijklmnopq",
             "abcdefghijklmnopq/1", "k1/10000000", "k1/1/2", "k1//1", "K1/1", "k1/-1",
             "k1/+1", "k1/1a", "k1/ 1", "k1.1", ""]:
    ref = parse_key_ref(text)
    if ref:
        rec(type="keyref", input=text, kid=ref[0], generation=str(ref[1]))
    else:
        rec(type="keyref", input=text, error="invalid")

# --- signed requests (what a device sends) -----------------------------------
SIGN_CASES = [
    ("k1", "3c5ab4f09a21", 1700000000, "0123456789abcdef", b"ipv4=192.0.2.10"),
    ("k1", "3c5ab4f09a21", 1700000001, "fedcba9876543210", b"ipv6=2001:db8::10"),
    ("k1", "3c5ab4f09a21", 1700000002, "00000000000000ff", b"ipv4=192.0.2.10&ipv6=2001:db8::10"),
    ("k2026b", "001a2b3c4d5e", 1800000000, "a5a5a5a5a5a5a5a5", b""),
]
# kid is the key reference as sent (generation 0: the key id alone).
SIGN_CASES = [(kid, dev, ts, nonce, body, 0) for kid, dev, ts, nonce, body in SIGN_CASES] + [
    ("k1", "3c5ab4f09a21", 1700000003, "0011223344556677", b"ipv4=192.0.2.10", 2),
    ("k1", "3c5ab4f09a21", 1700000004, "8899aabbccddeeff", b"ipv4=192.0.2.10&ipv6=2001:db8::10", 2),
    ("kabcdefghijklmno", "020000000001", 999999999999, "ffffffffffffffff",
     b"ipv4=255.255.255.255&ipv6=ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", GENERATION_MAX),
    # peer: the address an earlier answer named, sent alone
    ("k1", "3c5ab4f09a21", 1700000005, "1122334455667788", b"peer=192.0.2.10", 2),
    ("k1", "3c5ab4f09a21", 1700000006, "2233445566778899", b"peer=2001:db8::10", 0),
    ("k2026b", "001a2b3c4d5e", 1800000001, "a5a5a5a5a5a5a5a6",
     b"peer=ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", 1),
]
for kid, dev, ts, nonce, body, gen in SIGN_CASES:
    secret = derive(KEYS[kid], kid, dev, gen)
    ref = key_ref(kid, gen)
    sig = sign(secret, dev, ref, ts, nonce, body)
    auth = authorization(dev, ref, ts, nonce, sig)
    rec(type="sign", master_key_hex=KEYS[kid].hex(), kid=ref, key_id=kid, generation=str(gen),
        device_id=dev, secret_hex=secret.hex(), ts=str(ts), nonce=nonce, body=body.decode(),
        host="ddns.example.test",
        string_to_sign_hex=string_to_sign(dev, ref, ts, nonce, body).hex(),
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
            device_id=dev, kid=kid, generation="0", ipv4="192.0.2.10")
verify_case("valid-at-window-edge", authorization(dev, kid, ts, nonce, good_sig), good_body, ts + 300, "ok",
            device_id=dev, kid=kid, generation="0", ipv4="192.0.2.10")
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


signed_body_case("empty-body-means-connection-address", b"", "ok", device_id=dev, kid=kid,
                 generation="0")
signed_body_case("both-families", b"ipv4=192.0.2.10&ipv6=2001:DB8:0:0::10", "ok", device_id=dev, kid=kid,
                 generation="0", ipv4="192.0.2.10", ipv6="2001:db8::10")
signed_body_case("unknown-parameter-ignored", b"ipv4=192.0.2.10&fw=4.1.0", "ok", device_id=dev, kid=kid,
                 generation="0", ipv4="192.0.2.10")
signed_body_case("bad-ipv4", b"ipv4=192.0.2.300", "badrequest", field="ipv4")
signed_body_case("ipv6-in-ipv4", b"ipv4=2001:db8::1", "badrequest", field="ipv4")
signed_body_case("bad-ipv6", b"ipv6=2001:db8::g", "badrequest", field="ipv6")
signed_body_case("ipv4-in-ipv6", b"ipv6=192.0.2.10", "badrequest", field="ipv6")
signed_body_case("duplicate-parameter", b"ipv4=192.0.2.10&ipv4=192.0.2.11", "badrequest", field="ipv4")
signed_body_case("percent-encoding", b"ipv4=192.0.2.1%30", "badrequest", field="ipv4")
signed_body_case("empty-value", b"ipv4=", "badrequest", field="ipv4")
signed_body_case("no-equals", b"ipv4", "badrequest", field="ipv4")
# peer: the connection's address the device was told (section 4.2), either
# family, canonical; alone
signed_body_case("peer-ipv4", b"peer=203.0.113.7", "ok", device_id=dev, kid=kid, generation="0",
                 peer="203.0.113.7")
signed_body_case("peer-ipv6-canonical", b"peer=2001:DB8:0:0::7", "ok", device_id=dev, kid=kid,
                 generation="0", peer="2001:db8::7")
signed_body_case("peer-with-ipv4", b"peer=203.0.113.7&ipv4=203.0.113.7", "badrequest",
                 field="peer")
signed_body_case("peer-with-ipv6", b"ipv6=2001:db8::7&peer=203.0.113.7", "badrequest",
                 field="peer")
signed_body_case("peer-ipv4-mapped", b"peer=::ffff:203.0.113.7", "badrequest", field="peer")
signed_body_case("peer-not-an-address", b"peer=203.0.113", "badrequest", field="peer")

# Generations: the kid field is the key reference; the secret of one
# generation does not verify under another, and a key reference that is
# not canonical is a syntax error.
secret2 = derive(MASTER_K1, kid, dev, 2)


def generation_case(name, ref, signing_secret, expect, **extra):
    s = sign(signing_secret, dev, ref, ts, nonce, good_body)
    verify_case(name, authorization(dev, ref, ts, nonce, s), good_body, ts, expect, **extra)


generation_case("valid-generation-2", "k1/2", secret2, "ok", device_id=dev, kid=kid,
                generation="2", ipv4="192.0.2.10")
generation_case("generation-0-secret-as-generation-2", "k1/2", secret, "badauth")
generation_case("generation-2-secret-as-generation-0", "k1", secret2, "badauth")
generation_case("generation-2-secret-as-generation-3", "k1/3", secret2, "badauth")
generation_case("generation-2-secret-as-generation-1", "k1/1", secret2, "badauth")
generation_case("unknown-kid-generation-2", "k9/2", derive(MASTER_K1, "k9", dev, 2), "badauth")
for name, ref in [("keyref-generation-zero", "k1/0"), ("keyref-leading-zero", "k1/02"),
                  ("keyref-empty-generation", "k1/"), ("keyref-no-kid", "/2"),
                  ("keyref-17-character-kid", "abcdefghijklmnopq/2"),
                  ("keyref-8-digit-generation", "k1/10000000"), ("keyref-two-slashes", "k1/2/2"),
                  ("keyref-uppercase", "K1/2")]:
    generation_case(name, ref, secret2, "badrequest", field="authorization")

# --- dyndns2 credentials (HTTP Basic, section 10) -------------------------------
# Whether the Basic credentials are right for the device, its key id and its
# generation (before the database: the registered key id and generation are
# the database's to compare). The master key is k1's.
def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def dyndns2_case(name, user, password, expect, **extra):
    rec(type="dyndns2", name=name, authorization=basic(user, password), expect=expect, **extra)


pw0 = dyndns2_password(kid, 0, secret)
pw2 = dyndns2_password(kid, 2, secret2)
dyndns2_case("generation-0-legacy-password", dev, pw0, "ok", device_id=dev, kid=kid, generation="0")
dyndns2_case("generation-2-password", dev, pw2, "ok", device_id=dev, kid=kid, generation="2")
dyndns2_case("generation-2-password-mac-form", "3C-5A-B4-F0-9A-21", pw2, "ok", device_id=dev, kid=kid,
             generation="2")
dyndns2_case("generation-2-signing-secret", dev, "k1/2." + b64u(secret2), "badauth")
dyndns2_case("generation-2-password-as-generation-3", dev, "k1/3." + pw2.split(".", 1)[1], "badauth")
dyndns2_case("generation-2-password-without-generation", dev, "k1." + pw2.split(".", 1)[1], "badauth")
dyndns2_case("generation-0-secret-as-generation-1", dev, "k1/1." + b64u(secret), "badauth")
dyndns2_case("generation-zero-written-out", dev, "k1/0." + b64u(secret), "badauth")
dyndns2_case("generation-leading-zero", dev, "k1/02." + pw2.split(".", 1)[1], "badauth")
dyndns2_case("other-device", "001a2b3c4d5e", pw2, "badauth")
dyndns2_case("unknown-kid", dev, dyndns2_password("k9", 2, derive(MASTER_K1, "k9", dev, 2)), "badauth")

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
    (403, "badaddr 169.254.169.254\n", "badaddr", {"addr1": "169.254.169.254"}),
    (403, "badaddr 10.0.0.1 fd00::1\n", "badaddr", {"addr1": "10.0.0.1", "addr2": "fd00::1"}),
    (409, "replay\n", "replay", {}),
    (409, "moved 198.51.100.7\n", "moved", {"addr1": "198.51.100.7"}),
    (409, "moved 2001:db8::7\n", "moved", {"addr1": "2001:db8::7"}),
    (429, "ratelimit 60\n", "ratelimit", {"retry_after": "60"}),
    (503, "911\n", "911", {}),
    (200, "good\n", "error", {}),
    (200, "great 192.0.2.10\n", "error", {}),
    (401, "badtime\n", "error", {}),
    (401, "badtime 12x\n", "error", {}),
    (200, "good 192.0.2.10", "error", {}),
    (500, "good 192.0.2.10\n", "error", {}),
    (403, "badaddr\n", "error", {}),
    (403, "badaddr 10.0.0.1 fd00::1 fe80::1\n", "error", {}),
    (200, "badaddr 10.0.0.1\n", "error", {}),
    (409, "moved\n", "error", {}),
    (409, "moved 198.51.100.7 2001:db8::7\n", "error", {}),
    (200, "moved 198.51.100.7\n", "error", {}),
    (400, "moved 198.51.100.7\n", "error", {}),
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
