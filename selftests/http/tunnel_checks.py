#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Tunnel checks of the HTTP engine (td_hs_tunnel through td_http_tool --connect / --raw) and
# the servers they talk to. Servers: "echo PORT", "banner PORT", "tlsecho PORT CERT KEY",
# "stall PORT" (never accepts: connect timeouts).
# Checks print "ok|FAIL<TAB>desc<TAB>expected<TAB>got" lines for selftests/netns/lib.sh.
import hashlib
import os
import socket
import ssl
import sys
import threading
import time


def out(ok, desc, exp, got):
    print("%s\t%s\t%s\t%s" % ("ok" if ok else "FAIL", desc, exp, got), flush=True)


def eq(desc, exp, got):
    out(exp == got, desc, exp, got)


# ---- servers -------------------------------------------------------------------------------

def serve(port, handle):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(128)
    print("server ready %d" % port, flush=True)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()


def echo(c):
    """echo until EOF, then pass the FIN on (half-close) and close"""
    try:
        while True:
            d = c.recv(65536)
            if not d:
                break
            c.sendall(d)
        if isinstance(c, ssl.SSLSocket):
            c.unwrap()
        else:
            c.shutdown(socket.SHUT_WR)
    except (OSError, ssl.SSLError):
        pass
    c.close()


def banner(c):
    """speak first, FIN at once, then count what still comes (half-close the other way)"""
    try:
        c.sendall(b"BANNER\n")
        c.shutdown(socket.SHUT_WR)
        h, n = hashlib.sha256(), 0
        while True:
            d = c.recv(65536)
            if not d:
                break
            h.update(d)
            n += len(d)
        print("banner got %d %s" % (n, h.hexdigest()), flush=True)
    except OSError as e:
        print("banner error %s" % e, flush=True)
    c.close()


# ---- client helpers ------------------------------------------------------------------------

def addr(s):
    h, p = s.rsplit(":", 1)
    return h, int(p)


def read_head(s):
    """bytes up to the end of a response head, and what came after it"""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            break
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head.decode("latin-1"), rest


def connect_via(proxy, target, extra=b"", timeout=10):
    s = socket.create_connection(addr(proxy), timeout=timeout)
    s.sendall(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target.encode(), target.encode()) +
              extra)
    head, rest = read_head(s)
    return s, head, rest


def read_all(s, rest=b""):
    buf = bytearray(rest)
    while True:
        try:
            d = s.recv(65536)
        except ConnectionResetError:
            return bytes(buf), "reset"
        if not d:
            return bytes(buf), "eof"
        buf += d


def exchange(s, data, rest=b""):
    """send data while reading (a thread), half-close, read to EOF: (bytes back, how it ended)"""
    res = {}

    def rd():
        res["r"] = read_all(s, rest)

    t = threading.Thread(target=rd)
    t.start()
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    t.join(30)
    return res.get("r", (b"", "hung"))


def sha(b):
    return hashlib.sha256(b).hexdigest()[:16]


# ---- checks --------------------------------------------------------------------------------

def check_connect(a):
    proxy, echo_addr, banner_addr = a["tool"], a["echo"], a["banner"]

    data = os.urandom(1 << 20)
    s, head, rest = connect_via(proxy, echo_addr)
    eq("CONNECT to the echo server: 200 Connection established",
       "HTTP/1.1 200 Connection established", head)
    back, how = exchange(s, data, rest)
    s.close()
    eq("CONNECT: 1 MiB both ways, sha256 and length, FIN passed back",
       "%s %d eof" % (sha(data), len(data)), "%s %d %s" % (sha(back), len(back), how))

    # pipelined: bytes sent in the same segment as the CONNECT head
    early = b"EARLY-BYTES-" * 100
    s, head, rest = connect_via(proxy, echo_addr, extra=early)
    back, how = exchange(s, b"late", rest)
    s.close()
    eq("CONNECT: bytes pipelined after the head are relayed first",
       "200 %s eof" % sha(early + b"late"), "%s %s %s" % (head[9:12], sha(back), how))

    # half-close both ways: the server FINs first, the client still sends afterwards
    s, head, rest = connect_via(proxy, banner_addr)
    got, how = read_all(s, rest)
    eq("half-close: upstream FIN reaches the client, tunnel still open", "b'BANNER\\n' eof",
       "%r %s" % (got, how))
    more = os.urandom(100000)
    s.sendall(more)
    s.shutdown(socket.SHUT_WR)
    s.settimeout(5)
    try:
        tail = s.recv(10)
        closed = "closed" if tail == b"" else "data %r" % tail
    except socket.timeout:
        closed = "hung"
    s.close()
    eq("half-close: the tunnel ends after the client's FIN", "closed", closed)
    with open(a["expect"], "w") as f:
        f.write("banner got %d %s\n" % (len(more), hashlib.sha256(more).hexdigest()))

    # idle timeout (td_http_tool --tunnel-idle)
    idle = float(a["idle"])
    s, head, rest = connect_via(proxy, echo_addr)
    s.sendall(b"ping")
    t0 = time.monotonic()
    got, how = read_all(s, rest)
    dt = time.monotonic() - t0
    s.close()
    out(how in ("eof", "reset") and idle * 0.7 <= dt <= idle + 2.0,
        "idle tunnel closed after --tunnel-idle %.1f s" % idle,
        "%.1f..%.1f s" % (idle * 0.7, idle + 2.0), "%.2f s (%s, echoed %r)" % (dt, how, got))

    # failures
    s, head, rest = connect_via(proxy, "127.0.0.1:1")
    tail, how = read_all(s, rest)
    s.close()
    eq("CONNECT to a closed port: 502 and the connection closes",
       "HTTP/1.1 502 Bad Gateway eof", "%s %s" % (head.split("\r\n")[0], how))
    if a.get("blackhole"):
        # the stall server never accepts and has a backlog of 0: once its queue holds a
        # connection, the kernel drops further SYNs and a connect can only time out
        fill = []
        for _ in range(2):
            f = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            f.setblocking(False)
            f.connect_ex(addr(a["blackhole"]))
            fill.append(f)
        time.sleep(0.2)
        t0 = time.monotonic()
        s, head, rest = connect_via(proxy, a["blackhole"])
        dt = time.monotonic() - t0
        s.close()
        for f in fill:
            f.close()
        eq("CONNECT to an address that never answers: 504 (connect timeout)",
           "HTTP/1.1 504 Gateway Timeout", head.split("\r\n")[0])
        out(dt < 3.0, "504 within the connect timeout", "< 3 s", "%.2f s" % dt)


def check_tls(a):
    """a real TLS session through CONNECT, its ClientHello pipelined with the CONNECT head"""
    proxy, target = a["tool"], a["tlsecho"]
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, outg, server_hostname="td.test")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outg.read()
    s, head, rest = connect_via(proxy, target, extra=hello)
    eq("TLS in CONNECT: ClientHello sent with the head, 200", "200", head[9:12])
    if rest:
        inc.write(rest)

    def pump():
        d = outg.read()
        if d:
            s.sendall(d)

    def feed():
        d = s.recv(65536)
        if not d:
            raise EOFError
        inc.write(d)

    try:
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                pump()
                feed()
        pump()
        msg = os.urandom(200000)
        obj.write(msg)
        pump()
        back = b""
        while len(back) < len(msg):
            try:
                back += obj.read(65536)
            except ssl.SSLWantReadError:
                pump()
                feed()
        res = "%s %d" % (sha(back), len(back))
    except (EOFError, OSError, ssl.SSLError) as e:
        res = "error %s" % e
    s.close()
    eq("TLS in CONNECT: handshake through the tunnel, 200 kB echoed",
       "%s %d" % (sha(msg), len(msg)), res)


def check_tls_listener(a):
    """CONNECT sent inside TLS to a TLS listener (a tunnel inside TLS)"""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(addr(a["tool"]), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname="td.test")
    t = a["echo"].encode()
    s.sendall(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (t, t))
    head, rest = read_head(s)
    data = os.urandom(300000)
    back = bytearray(rest)
    s.sendall(data)
    while len(back) < len(data):
        d = s.recv(65536)
        if not d:
            break
        back += d
    s.close()
    eq("CONNECT on a TLS listener: 200, 300 kB echoed inside TLS",
       "200 %s" % sha(data), "%s %s" % (head[9:12], sha(bytes(back))))


def check_raw(a):
    data = os.urandom(256 << 10)
    s = socket.create_connection(addr(a["raw"]), timeout=10)
    s.sendall(data[:2])		# ops->raw returns -EAGAIN under 4 bytes
    time.sleep(0.3)
    back, how = exchange(s, data[2:])
    s.close()
    eq("RAW listener: first bytes split (-EAGAIN), 256 KiB relayed both ways",
       "%s %d eof" % (sha(data), len(data)), "%s %d %s" % (sha(back), len(back), how))
    s = socket.create_connection(addr(a["raw"]), timeout=10)
    s.sendall(b"QUIT and more")
    back, how = read_all(s)
    s.close()
    eq("RAW listener: td_hs_respond closes without a byte", "0 bytes", "%d bytes" % len(back))


def stall(port):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(0)
    print("server ready %d" % port, flush=True)
    while True:
        time.sleep(3600)


def main():
    mode = sys.argv[1]
    if mode == "stall":
        stall(int(sys.argv[2]))
    elif mode == "echo":
        serve(int(sys.argv[2]), echo)
    elif mode == "banner":
        serve(int(sys.argv[2]), banner)
    elif mode == "tlsecho":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[3], sys.argv[4])

        def tls_echo(c):
            try:
                c = ctx.wrap_socket(c, server_side=True)
            except (OSError, ssl.SSLError):
                c.close()
                return
            echo(c)

        serve(int(sys.argv[2]), tls_echo)
    else:
        a = dict(x.split("=", 1) for x in sys.argv[2:])
        globals()["check_" + mode](a)


if __name__ == "__main__":
    main()
