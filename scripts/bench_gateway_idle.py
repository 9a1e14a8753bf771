#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Idle keep-alive connections for the gateway bench: memory per idle connection of a proxy.

  bench_gateway_idle.py --port P [--addr 127.0.0.1] --count 5000 --hold-file FILE [--max-s 120]

Opens COUNT connections, sends one GET on each and reads its whole response (so the proxy has
served a request and holds the connection idle in keep-alive), prints "ready N_OK N_FAILED" and
keeps every socket open until FILE exists or --max-s passes. RLIMIT_NOFILE is raised to its
hard limit first. A connection that fails is counted and not retried.
"""
import argparse
import os
import resource
import socket
import sys
import time


def one(addr, port):
    s = socket.create_connection((addr, port), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            raise OSError("closed")
        buf += d
    head, body = buf.split(b"\r\n\r\n", 1)
    if not head.startswith(b"HTTP/1.1 200"):
        raise OSError("status %r" % head[:20])
    n = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v)
    while len(body) < n:
        d = s.recv(4096)
        if not d:
            raise OSError("closed in body")
        body += d
    return s


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--addr", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, default=5000)
    p.add_argument("--hold-file", required=True)
    p.add_argument("--max-s", type=float, default=120)
    a = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.count + 100
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(want, soft)), hard))
    socks, failed = [], 0
    for _ in range(a.count):
        try:
            socks.append(one(a.addr, a.port))
        except OSError:
            failed += 1
    print("ready %d %d" % (len(socks), failed), flush=True)
    end = time.time() + a.max_s
    while time.time() < end and not os.path.exists(a.hold_file):
        time.sleep(0.1)
    for s in socks:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
