#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_csv (run from the repository root:
python3 provisioning/fuzz/make_seeds.py). Byte 0 of each seed: 0 a batch
file, 1 a public file of 'ddns-provision derive'."""
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def write(name, data):
    d = os.path.join(HERE, "corpus", "csv")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


write("batch", b"\x00mac,serial,model,name\n3C:5A:B4:F0:9A:21,SN1,AcmeCam-X3,front-door\n"
      b"3c-5a-b4-f0-9a-22,SN2,AcmeCam-X3,\n3c5a.b4f0.9a23,\"SN,3\",\"Acme \"\"X\"\"\",\n")
write("batch-crlf", b"\x00MAC,Serial,Model\r\n02:00:00:00:00:01,S1,M\r\n02:00:00:00:00:01,S1,M\r\n")
write("batch-bad", b"\x00mac,serial,model\n01:00:5e:00:00:01,S,M\nff:ff:ff:ff:ff:ff,,\n"
      b"00:00:00:00:00:00,S,M,extra\n\"unterminated,S,M\n")
write("public", b"\x01mac,serial,model,name,kid,zone\n"
      b"3c5ab4f09a21,SN1,AcmeCam-X3,front-door,k1,ddns.example.test\n"
      b"3c5ab4f09a22,SN2,AcmeCam-X3,d4k5akk4xh5xsu,k1,ddns.example.test\n")
