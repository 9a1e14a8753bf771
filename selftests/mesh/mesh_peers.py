#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Real TCP/UDP peers for the mesh scenario tests: named backends, and clients that report which
# backend answered, what getpeername()/recvfrom() showed, and how a refused connect() failed.
"""
servers: mesh_peers.py serve --tcp ADDR,PORT,NAME ... --udp ADDR,PORT,NAME ... --lifetime S
  TCP: sends "NAME\\n" on accept, then echoes every line until EOF. UDP: answers "NAME".
clients (one JSON object on stdout):
  many HOST PORT N [--family 4|6]  N connections: {"backends": {name: n}, "peers": {addr: n},
                                   "errors": {errno: n}}
  one HOST PORT [--family 4|6]     {"ok": bool, "backend", "peer", "errno", "ms"}
  hold HOST PORT SECONDS           connects, prints {"backend", "peer"} at once, holds the
                                   connection, then exchanges a line: {"echo_ok": bool}
  udp HOST PORT [--connect] [--family 4|6]  {"reply", "source", "peer", "errno"}
"""
import argparse
import errno
import json
import socket
import sys
import threading
import time


def fam(args):
    return socket.AF_INET6 if args.family == 6 else socket.AF_INET


def ep(addr):
    return "%s:%d" % (addr[0], addr[1]) if ":" not in addr[0] else "[%s]:%d" % (addr[0], addr[1])


def serve_tcp(spec):
    addr, port, name = spec.split(",")
    f = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(f, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, int(port)))
    s.listen(1024)

    def conn(c):
        try:
            c.sendall((name + "\n").encode())
            while True:
                d = c.recv(4096)
                if not d:
                    break
                c.sendall(d)
        except OSError:
            pass
        finally:
            c.close()

    def loop():
        while True:
            c, _ = s.accept()
            threading.Thread(target=conn, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()


def serve_udp(spec):
    addr, port, name = spec.split(",")
    f = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(f, socket.SOCK_DGRAM)
    s.bind((addr, int(port)))

    def loop():
        while True:
            _, peer = s.recvfrom(2048)
            s.sendto(name.encode(), peer)

    threading.Thread(target=loop, daemon=True).start()


def cmd_serve(args):
    for t in args.tcp or []:
        serve_tcp(t)
    for u in args.udp or []:
        serve_udp(u)
    print("ready", flush=True)
    time.sleep(args.lifetime)


def connect_one(args):
    s = socket.socket(fam(args), socket.SOCK_STREAM)
    s.settimeout(5)
    t0 = time.monotonic()
    try:
        s.connect((args.host, args.port))
        peer = ep(s.getpeername())
        f = s.makefile("r")
        backend = f.readline().strip()
        return {"ok": True, "backend": backend, "peer": peer, "errno": "",
                "ms": round((time.monotonic() - t0) * 1000, 1)}, s
    except OSError as e:
        s.close()
        return {"ok": False, "backend": "", "peer": "",
                "errno": errno.errorcode.get(e.errno, str(e)) if e.errno else type(e).__name__,
                "ms": round((time.monotonic() - t0) * 1000, 1)}, None


def cmd_one(args):
    r, s = connect_one(args)
    if s:
        s.close()
    print(json.dumps(r))


def cmd_many(args):
    out = {"backends": {}, "peers": {}, "errors": {}}
    for _ in range(args.n):
        r, s = connect_one(args)
        if s:
            s.close()
            out["backends"][r["backend"]] = out["backends"].get(r["backend"], 0) + 1
            out["peers"][r["peer"]] = out["peers"].get(r["peer"], 0) + 1
        else:
            out["errors"][r["errno"]] = out["errors"].get(r["errno"], 0) + 1
    print(json.dumps(out))


def cmd_hold(args):
    r, s = connect_one(args)
    print(json.dumps(r), flush=True)
    if not s:
        return
    time.sleep(args.seconds)
    ok = False
    try:
        s.sendall(b"still-there\n")
        ok = s.makefile("r").readline().strip() == "still-there"
    except OSError:
        pass
    print(json.dumps({"echo_ok": ok}), flush=True)


def cmd_udp(args):
    s = socket.socket(fam(args), socket.SOCK_DGRAM)
    s.settimeout(3)
    out = {"reply": "", "source": "", "peer": "", "errno": ""}
    try:
        if args.connect:
            s.connect((args.host, args.port))
            out["peer"] = ep(s.getpeername())
            s.send(b"hello")
        else:
            s.sendto(b"hello", (args.host, args.port))
        d, src = s.recvfrom(2048)
        out["reply"] = d.decode()
        out["source"] = ep(src)
    except OSError as e:
        out["errno"] = errno.errorcode.get(e.errno, str(e)) if e.errno else type(e).__name__
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    sv = sub.add_parser("serve")
    sv.add_argument("--tcp", action="append")
    sv.add_argument("--udp", action="append")
    sv.add_argument("--lifetime", type=float, default=300)
    for name in ("many", "one", "hold", "udp"):
        c = sub.add_parser(name)
        c.add_argument("host")
        c.add_argument("port", type=int)
        if name == "many":
            c.add_argument("n", type=int)
        if name == "hold":
            c.add_argument("seconds", type=float)
        if name == "udp":
            c.add_argument("--connect", action="store_true")
        c.add_argument("--family", type=int, default=0)
    args = p.parse_args()
    if getattr(args, "family", 0) == 0 and hasattr(args, "host"):
        args.family = 6 if ":" in args.host else 4
    {"serve": cmd_serve, "many": cmd_many, "one": cmd_one, "hold": cmd_hold,
     "udp": cmd_udp}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
