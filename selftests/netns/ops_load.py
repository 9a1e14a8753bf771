#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Load for the operations tests (test_ops_*.sh): a throttled long stream and a stream of connections.

  ops_load.py slow  --addr VIP --port P --bytes N --rate BPS --port-file F
        one TCP connection reading "stream N" at about BPS bytes/s (small receive buffer, so the
        sender is throttled too); writes the local port to F once connected; JSON like
        client.py stream, plus "local_port".
  ops_load.py conns --addr VIP --port P --stop-file F [--max-seconds S] [--gap-ms G]
        new TCP connections one after the other (each a request answered with the backend's
        name) until F exists; JSON {"total","ok","errors","counts","first_errors"}.
  ops_load.py admin --socket PATH --raw TEXT | --silent-then STATUS_LINE | --big N
        raw admin-socket checks: send TEXT and print the answer line; or connect silently,
        then check that a second client still gets an answer; or send N bytes without newline.
"""
import argparse
import hashlib
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from client import family, tcp_one  # noqa: E402
from servers import stream_bytes  # noqa: E402


def slow(a):
    res = {"bytes": 0, "expected_bytes": a.bytes, "sha256": "", "expected_sha256": "",
           "peer": "", "seconds": 0.0, "error": "", "local_port": 0}
    exp = hashlib.sha256()
    for chunk in stream_bytes(a.bytes):
        exp.update(chunk)
    res["expected_sha256"] = exp.hexdigest()
    h = hashlib.sha256()
    t0 = time.monotonic()
    try:
        with socket.socket(family(a.addr), socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
            s.settimeout(a.timeout)
            s.connect((a.addr, a.port))
            res["peer"] = s.getpeername()[0]
            res["local_port"] = s.getsockname()[1]
            with open(a.port_file + ".tmp", "w") as f:
                f.write("%d\n" % res["local_port"])
            os.rename(a.port_file + ".tmp", a.port_file)
            s.sendall(b"stream %d\n" % a.bytes)
            chunk = 16384
            while True:
                d = s.recv(chunk)
                if not d:
                    break
                h.update(d)
                res["bytes"] += len(d)
                # stay on schedule: bytes so far at rate BPS
                ahead = res["bytes"] / a.rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
    except OSError as e:
        res["error"] = "%s: %s" % (type(e).__name__, e)
    res["seconds"] = round(time.monotonic() - t0, 3)
    res["sha256"] = h.hexdigest()
    return res


def conns(a):
    res = {"total": 0, "ok": 0, "errors": 0, "counts": {}, "first_errors": []}
    t0 = time.monotonic()
    while not os.path.exists(a.stop_file) and time.monotonic() - t0 < a.max_seconds:
        res["total"] += 1
        try:
            name, _peer = tcp_one(a)
            res["ok"] += 1
            res["counts"][name] = res["counts"].get(name, 0) + 1
        except (OSError, ValueError) as e:
            res["errors"] += 1
            if len(res["first_errors"]) < 5:
                res["first_errors"].append("%.1fs %s: %s" % (time.monotonic() - t0,
                                                             type(e).__name__, e))
        time.sleep(a.gap_ms / 1000.0)
    return res


def admin_line(path, data, timeout=5.0):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(data)
        buf = b""
        while not buf.endswith(b"\n"):
            d = s.recv(65536)
            if not d:
                break
            buf += d
        return buf.decode(errors="replace").strip()


def admin(a):
    if a.raw is not None:
        return {"answer": admin_line(a.socket, a.raw.encode() + b"\n")}
    if a.big:
        return {"answer": admin_line(a.socket, b"x" * a.big)}
    # a client that connects and says nothing must not block anybody else
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.connect(a.socket)
    t0 = time.monotonic()
    try:
        ans = admin_line(a.socket, a.silent_then.encode() + b"\n", timeout=3.0)
    except OSError as e:
        ans = "%s: %s" % (type(e).__name__, e)
    dt = time.monotonic() - t0
    silent.close()
    return {"answer": ans, "seconds": round(dt, 3)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("mode", choices=["slow", "conns", "admin"])
    ap.add_argument("--addr")
    ap.add_argument("--port", type=int)
    ap.add_argument("--bytes", type=int, default=16 << 20)
    ap.add_argument("--rate", type=float, default=2 << 20)
    ap.add_argument("--port-file")
    ap.add_argument("--stop-file")
    ap.add_argument("--max-seconds", type=float, default=60)
    ap.add_argument("--gap-ms", type=float, default=5)
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--socket")
    ap.add_argument("--raw")
    ap.add_argument("--big", type=int, default=0)
    ap.add_argument("--silent-then")
    a = ap.parse_args()
    out = {"slow": slow, "conns": conns, "admin": admin}[a.mode](a)
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
