#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Test client: many real TCP connections / UDP requests from one process, or one long stream.

  client.py tcp    --addr VIP --port P --count N   one connection per request, new source port each
  client.py udp    --addr VIP --port P --count N   one socket (source port) per request
  client.py stream --addr VIP --port P --bytes N   "stream N" -> sha256 of what came back

Prints one JSON object on stdout:
  tcp/udp: {"counts": {"b1": n, ...}, "ok": n, "errors": n, "peer_mismatch": n, "peers": [...],
            "first_error": "..."}
  stream:  {"bytes": n, "expected_bytes": n, "sha256": "...", "expected_sha256": "...",
            "peer": "...", "seconds": x, "error": "..."}
The peer address (getpeername / recvfrom) is compared to --addr: replies must come from the VIP.
"""
import argparse
import hashlib
import ipaddress
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from servers import stream_bytes  # noqa: E402  (same generator as the server)


def family(addr):
    return socket.AF_INET6 if ipaddress.ip_address(addr).version == 6 else socket.AF_INET


def same_addr(a, b):
    return ipaddress.ip_address(a.split("%")[0]) == ipaddress.ip_address(b)


def run_requests(a, one):
    counts, res = {}, {"ok": 0, "errors": 0, "peer_mismatch": 0, "peers": [], "first_error": ""}
    peers = set()
    for _ in range(a.count):
        try:
            name, peer = one(a)
            counts[name] = counts.get(name, 0) + 1
            res["ok"] += 1
            peers.add(peer)
            if not same_addr(peer, a.addr):
                res["peer_mismatch"] += 1
        except (OSError, ValueError) as e:
            res["errors"] += 1
            if not res["first_error"]:
                res["first_error"] = "%s: %s" % (type(e).__name__, e)
            if res["errors"] >= a.max_errors:
                res["first_error"] += " (gave up after %d errors)" % res["errors"]
                break
    res["counts"] = counts
    res["peers"] = sorted(peers)
    return res


def tcp_one(a):
    with socket.socket(family(a.addr), socket.SOCK_STREAM) as s:
        s.settimeout(a.timeout)
        s.connect((a.addr, a.port))
        peer = s.getpeername()[0]
        s.sendall(b"hello\n")
        buf = b""
        while not buf.endswith(b"\n"):
            d = s.recv(256)
            if not d:
                break
            buf += d
        name = buf.decode().strip()
        if not name:
            raise ValueError("empty answer")
        return name, peer


def udp_one(a):
    with socket.socket(family(a.addr), socket.SOCK_DGRAM) as s:
        s.settimeout(a.timeout)
        last = None
        for _ in range(a.retries + 1):  # one retry on loss; same socket, same flow
            s.sendto(b"hello\n", (a.addr, a.port))
            try:
                data, src = s.recvfrom(256)
                return data.decode().strip(), src[0]
            except socket.timeout as e:
                last = e
        raise last


def stream(a):
    res = {"bytes": 0, "expected_bytes": a.bytes, "sha256": "", "expected_sha256": "",
           "peer": "", "seconds": 0.0, "error": ""}
    exp = hashlib.sha256()
    for chunk in stream_bytes(a.bytes):
        exp.update(chunk)
    res["expected_sha256"] = exp.hexdigest()
    h = hashlib.sha256()
    t0 = time.monotonic()
    try:
        with socket.socket(family(a.addr), socket.SOCK_STREAM) as s:
            s.settimeout(a.timeout)
            s.connect((a.addr, a.port))
            res["peer"] = s.getpeername()[0]
            s.sendall(b"stream %d\n" % a.bytes)
            while True:
                d = s.recv(1 << 20)
                if not d:
                    break
                h.update(d)
                res["bytes"] += len(d)
    except OSError as e:
        res["error"] = "%s: %s" % (type(e).__name__, e)
    res["seconds"] = round(time.monotonic() - t0, 3)
    res["sha256"] = h.hexdigest()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("mode", choices=["tcp", "udp", "stream"])
    ap.add_argument("--addr", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--bytes", type=int, default=20 << 20)
    ap.add_argument("--timeout", type=float, default=2.0)
    ap.add_argument("--retries", type=int, default=1)
    ap.add_argument("--max-errors", type=int, default=20)
    a = ap.parse_args()
    if a.mode == "tcp":
        out = run_requests(a, tcp_one)
    elif a.mode == "udp":
        out = run_requests(a, udp_one)
    else:
        out = stream(a)
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
