#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets from the protocol vectors
(docs/vectors/protocol-vectors.txt) into corpus/response and
corpus/request. The seeds are kept in the repository; run this again
after the vectors change.

  firmware-sdk/fuzz/make_seeds.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(HERE, "..", "..", "docs", "vectors", "protocol-vectors.txt")
STATUSES = [200, 400, 401, 403, 404, 409, 429, 503]   # as in fuzz_response.c


def records():
    rec = {}
    with open(VECTORS) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                if rec:
                    yield rec
                rec = {}
                continue
            if line.startswith("#") or " = " not in line:
                continue
            k, v = line.split(" = ", 1)
            rec[k.strip()] = v
    if rec:
        yield rec


def status_prefix(status):
    """Leading bytes that make fuzz_response.c use this HTTP status."""
    if status in STATUSES:
        return bytes([STATUSES.index(status)])
    for d0 in range(200, 256):
        for d1 in range(256):
            if ((d0 << 8) | d1) % 600 == status:
                return bytes([d0, d1])
    raise ValueError(status)


def field(b):
    assert len(b) < 256
    return bytes([len(b)]) + b


def write(dirname, name, data):
    d = os.path.join(HERE, "corpus", dirname)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    n_resp = n_req = 0
    for rec in records():
        if rec.get("type") == "response":
            body = bytes.fromhex(rec["body_hex"])
            status = int(rec["status"])
            write("response", "vector-%02d" % n_resp, status_prefix(status) + body)
            http = b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n" % (status, len(body)) + body
            write("response", "http-%02d" % n_resp, http)
            n_resp += 1
        elif rec.get("type") == "sign":
            params = dict(p.split("=", 1) for p in rec["body"].split("&") if p)
            data = struct.pack("<Q", int(rec["ts"])) + bytes.fromhex(rec["nonce"])
            for i, ua in enumerate((b"", b"camfw/4.1 (model X2)")):
                seed = data + field(rec["host"].encode()) + field(ua) + \
                    field(rec["device_id"].encode()) + field(rec["kid"].encode()) + \
                    field(params.get("ipv4", "").encode()) + field(params.get("ipv6", "").encode())
                if "peer" in params:
                    seed += field(params["peer"].encode())
                write("request", "vector-%02d-%d" % (n_req, i), seed)
            n_req += 1
    print("seeds: %d response vectors (and as HTTP), %d sign vectors" % (n_resp, n_req))


if __name__ == "__main__":
    main()
