#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""JWT maker for the gateway tests: HS256 with stdlib hmac, RS256/ES256 with the openssl CLI.

  jwt.py make --alg HS256 --secret-file F [claims and header options]
  jwt.py make --alg RS256|ES256 --key PRIVATE.pem [...]
  jwt.py make --alg none [...]                 header alg "none", empty signature
  jwt.py jwks --pub PUBLIC.pem --kid K         a JWKS document (RSA or EC P-256 key)

Claims: --sub S --aud A --iss I --exp-in SECONDS (exp = now + SECONDS, may be negative)
--nbf-in SECONDS --no-exp --claims JSON (merged last). Header: --kid K, --header-alg A (the alg
written in the header, default the signing alg: "HS256 header, RS256 key" confusions).
--tamper flips one bit of the signature. Prints the compact token.
ES256 signatures are the raw 64-byte r || s of RFC 7518 3.4 (openssl gives DER; converted here).
"""
import argparse
import base64
import hashlib
import hmac
import json
import re
import subprocess
import sys
import time


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def der_to_raw(der, size=32):
    """ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } -> r || s, each size bytes."""
    if der[0] != 0x30:
        raise ValueError("not a DER sequence")
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        if der[i] != 0x02:
            raise ValueError("not a DER integer")
        n = der[i + 1]
        v = der[i + 2:i + 2 + n].lstrip(b"\x00")
        if len(v) > size:
            raise ValueError("integer too long")
        out += v.rjust(size, b"\x00")
        i += 2 + n
    return out


def sign(alg, signing_input, a):
    if alg == "none":
        return b""
    if alg == "HS256":
        key = open(a.secret_file, "rb").read()
        if a.strip_newline and key.endswith(b"\n"):
            key = key[:-1]
        return hmac.new(key, signing_input, hashlib.sha256).digest()
    if alg in ("RS256", "ES256"):
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", a.key],
                             input=signing_input, capture_output=True, check=True).stdout
        return der_to_raw(sig) if alg == "ES256" else sig
    raise ValueError("unsupported alg " + alg)


def make(a):
    now = int(time.time())
    claims = {}
    if a.sub is not None:
        claims["sub"] = a.sub
    if a.aud is not None:
        claims["aud"] = a.aud
    if a.iss is not None:
        claims["iss"] = a.iss
    claims["iat"] = now
    if not a.no_exp:
        claims["exp"] = now + a.exp_in
    if a.nbf_in is not None:
        claims["nbf"] = now + a.nbf_in
    if a.claims:
        claims.update(json.loads(a.claims))
    hdr = {"alg": a.header_alg or a.alg, "typ": "JWT"}
    if a.kid:
        hdr["kid"] = a.kid
    si = (b64u(json.dumps(hdr, separators=(",", ":")).encode()) + "." +
          b64u(json.dumps(claims, separators=(",", ":")).encode())).encode()
    sig = bytearray(sign(a.alg, si, a))
    if a.tamper and sig:
        sig[len(sig) // 2] ^= 0x01
    print(si.decode() + "." + b64u(bytes(sig)))


def jwks(a):
    txt = subprocess.run(["openssl", "pkey", "-pubin", "-in", a.pub, "-noout", "-text"],
                         capture_output=True, check=True, text=True).stdout

    def hexblock(label):
        m = re.search(label + r":\s*\n((?:\s+[0-9a-f:]+\n)+)", txt)
        return bytes.fromhex(re.sub(r"[\s:]", "", m.group(1)))

    if "ASN1 OID: prime256v1" in txt or "NIST CURVE: P-256" in txt:
        pt = hexblock("pub")
        key = {"kty": "EC", "crv": "P-256", "x": b64u(pt[1:33]), "y": b64u(pt[33:65])}
    else:
        n = hexblock("Modulus").lstrip(b"\x00")
        e = int(re.search(r"Exponent: (\d+)", txt).group(1))
        key = {"kty": "RSA", "n": b64u(n), "e": b64u(e.to_bytes((e.bit_length() + 7) // 8, "big"))}
    key.update({"kid": a.kid, "use": "sig"})
    print(json.dumps({"keys": [key]}))


def main():
    p = argparse.ArgumentParser()
    sp = p.add_subparsers(dest="cmd", required=True)
    m = sp.add_parser("make")
    m.add_argument("--alg", required=True, choices=["HS256", "RS256", "ES256", "none"])
    m.add_argument("--secret-file")
    m.add_argument("--strip-newline", action="store_true",
                   help="HS256: drop one trailing newline of the secret file (as the gateway does)")
    m.add_argument("--key")
    m.add_argument("--sub")
    m.add_argument("--aud")
    m.add_argument("--iss")
    m.add_argument("--exp-in", type=int, default=3600)
    m.add_argument("--no-exp", action="store_true")
    m.add_argument("--nbf-in", type=int)
    m.add_argument("--claims")
    m.add_argument("--kid")
    m.add_argument("--header-alg")
    m.add_argument("--tamper", action="store_true")
    j = sp.add_parser("jwks")
    j.add_argument("--pub", required=True)
    j.add_argument("--kid", required=True)
    a = p.parse_args()
    make(a) if a.cmd == "make" else jwks(a)


if __name__ == "__main__":
    sys.exit(main())
