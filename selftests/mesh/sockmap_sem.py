#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Probes of the six socket semantics that sockmap redirect changes (issue 4), one JSON line each.
"""
Run inside a mesh cgroup (the process owns both ends: it listens on 127.0.0.1:BPORT, the
backend of VIP:PORT, connects to the VIP and accepts):
  splice VIP PORT BPORT        {"fionread", "splice_nb", "splice_fin", "recv_after"}
  waitall VIP PORT BPORT       {"waitall", "rcvlowat", "tcpi_bytes_received"}
  backlog VIP PORT BPORT SECS CAP_MIB VERIFY   {"accepted", "intact"}  (peer reads nothing)
  delete VIP PORT BPORT CTL BPFFS   {"before", "after"}  (FIONREAD around a SOCKHASH delete)
  eagain-server BPORT          (run outside the mesh) sends 100 bytes 0.5 s after accept
  eagain VIP PORT              {"result", "ms"}: blocking recv, SO_RCVTIMEO 3 s
"""
import errno
import fcntl
import json
import os
import select
import socket
import struct
import subprocess
import sys
import termios
import threading
import time


def pair(vip, port, bport):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", bport))
    ls.listen(4)
    a = socket.create_connection((vip, port), timeout=5)
    b, _ = ls.accept()
    ls.close()
    time.sleep(0.05)
    return a, b


def fionread(s):
    return struct.unpack("i", fcntl.ioctl(s.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


def errname(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def cmd_splice(vip, port, bport):
    a, b = pair(vip, port, bport)
    a.sendall(b"x" * 1000)
    time.sleep(0.1)
    out = {"fionread": fionread(b)}
    r, w = os.pipe()
    b.setblocking(False)     # SPLICE_F_NONBLOCK is about the pipe; O_NONBLOCK about the socket
    try:
        out["splice_nb"] = os.splice(b.fileno(), w, 4096, flags=os.SPLICE_F_NONBLOCK)
    except OSError as e:
        out["splice_nb"] = errname(e)
    if out["splice_nb"] == 1000:
        os.read(r, 4096)
        a.sendall(b"y" * 1000)   # something to lose at FIN, like the redirected case
        time.sleep(0.1)
    a.shutdown(socket.SHUT_WR)
    time.sleep(0.1)
    res = {}
    b.setblocking(True)

    def blocking():
        try:
            res["n"] = os.splice(b.fileno(), w, 4096)
        except OSError as e:
            res["n"] = errname(e)

    t = threading.Thread(target=blocking, daemon=True)
    t.start()
    t.join(2)
    out["splice_fin"] = res.get("n", "blocked")
    b.setblocking(False)
    try:
        out["recv_after"] = len(b.recv(4096))
    except OSError as e:
        out["recv_after"] = errname(e)
    print(json.dumps(out))


def cmd_waitall(vip, port, bport):
    a, b = pair(vip, port, bport)

    def late():
        time.sleep(0.3)
        a.sendall(b"z" * 500)

    a.sendall(b"z" * 500)
    threading.Thread(target=late, daemon=True).start()
    # blocking with SO_RCVTIMEO (settimeout() would make the socket non-blocking)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 3, 0))
    out = {"waitall": len(b.recv(1000, socket.MSG_WAITALL))}
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1000)
    a.sendall(b"z" * 500)
    threading.Thread(target=late, daemon=True).start()
    out["rcvlowat"] = len(b.recv(4096))
    time.sleep(0.4)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)
    b.setblocking(False)
    try:
        while b.recv(4096):
            pass
    except OSError:
        pass
    info = b.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    out["tcpi_bytes_received"] = struct.unpack_from("Q", info, 128)[0]
    print(json.dumps(out))


def cmd_backlog(vip, port, bport, secs, cap_mib, verify):
    a, b = pair(vip, port, bport)
    a.setblocking(False)
    chunk = bytes(i % 251 for i in range(65536 + 251))
    sent, end, cap = 0, time.time() + secs, cap_mib << 20
    while sent < cap and time.time() < end:
        off = sent % 251
        try:
            sent += a.send(chunk[off:off + 65536])
        except BlockingIOError:
            if not select.select([], [a], [], 0.3)[1]:
                break
    out = {"accepted": sent, "fionread": fionread(b)}
    if verify:
        b.settimeout(5)
        pat = bytes(range(251))
        got, ok = 0, True
        while got < sent:
            d = b.recv(1 << 20)
            if not d:
                break
            off = got % 251
            ok = ok and d == (pat * (len(d) // 251 + 2))[off:off + len(d)]
            got += len(d)
        out["intact"] = ok and got == sent
        out["read"] = got
    print(json.dumps(out))


def cmd_delete(vip, port, bport, ctl, bpffs):
    a, b = pair(vip, port, bport)
    a.sendall(b"d" * 1000)
    time.sleep(0.1)
    out = {"before": fionread(b)}
    la, lp = b.getsockname()
    ra, rp = b.getpeername()
    out["delete_rc"] = subprocess.call([ctl, "sockdel", bpffs, la, str(lp), ra, str(rp)])
    time.sleep(0.1)
    out["after"] = fionread(b)
    b.setblocking(False)
    try:
        out["recv"] = len(b.recv(4096))
    except OSError as e:
        out["recv"] = errname(e)
    print(json.dumps(out))


def cmd_eagain_server(bport):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", bport))
    ls.listen(4)
    print("ready", flush=True)
    ls.settimeout(30)
    c, _ = ls.accept()
    time.sleep(0.5)
    c.sendall(b"e" * 100)
    time.sleep(3)


def cmd_eagain(vip, port):
    a = socket.create_connection((vip, port), timeout=5)
    a.settimeout(None)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 3, 0))
    t0 = time.time()
    try:
        out = {"result": len(a.recv(4096))}
    except OSError as e:
        out = {"result": errname(e)}
    out["ms"] = int((time.time() - t0) * 1000)
    print(json.dumps(out))


def main():
    c, v = sys.argv[1], sys.argv[2:]
    if c == "splice":
        cmd_splice(v[0], int(v[1]), int(v[2]))
    elif c == "waitall":
        cmd_waitall(v[0], int(v[1]), int(v[2]))
    elif c == "backlog":
        cmd_backlog(v[0], int(v[1]), int(v[2]), float(v[3]), int(v[4]), v[5] == "1")
    elif c == "delete":
        cmd_delete(v[0], int(v[1]), int(v[2]), v[3], v[4])
    elif c == "eagain-server":
        cmd_eagain_server(int(v[0]))
    elif c == "eagain":
        cmd_eagain(v[0], int(v[1]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
