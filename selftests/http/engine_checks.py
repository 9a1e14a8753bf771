#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Checks of the HTTP engine through td_http_tool over real sockets. Prints one line per check:
# "ok|FAIL<TAB>description<TAB>expected<TAB>got" (read by t_lines in selftests/netns/lib.sh).
#   engine_checks.py SUITE key=value...
# keys: tool=HOST:PORT backend=HOST:PORT pid=TOOL_PID (and per suite: limited=, refused=, ...)
import hashlib
import json
import os
import socket
import sys
import threading
import time

ARGS = dict(a.split("=", 1) for a in sys.argv[2:])
PATTERN = bytes(range(256)) * 256


def out(ok, desc, exp, got):
    print("%s\t%s\t%s\t%s" % ("ok" if ok else "FAIL", desc, exp, str(got).replace("\n", " ")[:200]),
          flush=True)


def hp(s):
    h, p = s.rsplit(":", 1)
    return h, int(p)


def conn(addr, timeout=5.0):
    s = socket.create_connection(hp(addr), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


class Reader:
    """Minimal HTTP/1.1 response reader over a socket (keeps leftover bytes)."""

    def __init__(self, s):
        self.s = s
        self.buf = b""

    def _fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError("closed")
        self.buf += d

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l

    def exact(self, n, sink=None):
        got = 0
        while got < n:
            if not self.buf:
                self._fill()
            k = min(n - got, len(self.buf))
            if sink:
                sink(self.buf[:k])
            else:
                self.acc += self.buf[:k]
            self.buf = self.buf[k:]
            got += k

    def response(self, head_only=False, sink=None):
        """-> (status, headers dict lower->value list, body or None)"""
        while True:
            st = self.line()
            status = int(st.split(b" ")[1])
            hdrs = {}
            while True:
                l = self.line()
                if not l:
                    break
                k, v = l.split(b":", 1)
                hdrs.setdefault(k.decode().lower(), []).append(v.strip().decode())
            if status >= 200:
                break
        self.acc = b""
        if head_only or status in (204, 304):
            return status, hdrs, b""
        if "content-length" in hdrs:
            self.exact(int(hdrs["content-length"][0]), sink)
        elif "chunked" in ",".join(hdrs.get("transfer-encoding", [])):
            while True:
                n = int(self.line().split(b";")[0], 16)
                if n == 0:
                    while self.line():
                        pass
                    break
                self.exact(n, sink)
                self.line()
        else:
            while True:
                if self.buf:
                    if sink:
                        sink(self.buf)
                    else:
                        self.acc += self.buf
                    self.buf = b""
                try:
                    self._fill()
                except EOFError:
                    break
        return status, hdrs, self.acc


def get(addr, path, extra="", method="GET"):
    s = conn(addr)
    try:
        s.sendall(("%s %s HTTP/1.1\r\nHost: t\r\n%s\r\n" % (method, path, extra)).encode())
        return Reader(s).response(head_only=method == "HEAD")
    finally:
        s.close()


def jget(addr, path):
    return json.loads(get(addr, path)[2])


def closed_after(s, timeout=3.0):
    """True when the peer closes (EOF or reset) within timeout."""
    s.settimeout(timeout)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def rss_kib(pid):
    with open("/proc/%s/status" % pid) as f:
        for l in f:
            if l.startswith("VmRSS:"):
                return int(l.split()[1])
    return -1


def backend_stats():
    return jget(ARGS["backend"], "/stats")


def pattern_sha(n):
    h = hashlib.sha256()
    full, rest = divmod(n, len(PATTERN))
    for _ in range(full):
        h.update(PATTERN)
    h.update(PATTERN[:rest])
    return h.hexdigest()


class RssSampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.base = rss_kib(pid)
        self.peak = self.base
        self.stop = False

    def run(self):
        while not self.stop:
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.02)

    def done(self):
        self.stop = True
        self.join()
        return self.peak - self.base


# ---- suites --------------------------------------------------------------------------------


def suite_basic():
    tool = ARGS["tool"]
    st, h, b = get(tool, "/__local")
    out(st == 404 and b == b"local\n" and "date" in h and h.get("content-length") == ["6"],
        "td_hs_respond: local 404 with Date and Content-Length", "404 local", "%d %r" % (st, b))

    # keep-alive: many requests, one client connection, few upstream connections
    s0, b0 = jget(tool, "/__stats"), backend_stats()
    s = conn(tool)
    r = Reader(s)
    okc = 0
    for i in range(200):
        s.sendall(b"GET /n/%d HTTP/1.1\r\nHost: t\r\n\r\n" % i)
        st, h, body = r.response()
        okc += st == 200 and body == b"ok %d" % i
    s.close()
    s1, b1 = jget(tool, "/__stats"), backend_stats()
    out(okc == 200, "keep-alive: 200 requests on one connection answered in order", 200, okc)
    acc = s1["conns_accepted"] - s0["conns_accepted"] - 1   # minus the /__stats connection
    out(acc == 1, "keep-alive: engine accepted one client connection for them", 1, acc)
    bc = b1["conns"] - b0["conns"] - 1   # minus the backend /stats connection
    out(0 <= bc <= 2, "pool: backend saw <= 2 connections for 200 requests", "<= 2", bc)
    out(s1["upstream_reused"] - s0["upstream_reused"] >= 198,
        "pool: upstream_reused counts the reuses", ">= 198",
        s1["upstream_reused"] - s0["upstream_reused"])

    # pool over several client connections (each a new TCP connection)
    b0 = backend_stats()
    for i in range(50):
        st, _, _ = get(tool, "/n/p%d" % i)
    b1 = backend_stats()
    bc = b1["conns"] - b0["conns"] - 1
    out(0 <= bc <= 2, "pool: 50 client connections share <= 2 backend connections", "<= 2", bc)

    # pipelining: several requests in one write, responses in order
    s = conn(tool)
    reqs = b"".join(b"GET /n/%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(8))
    reqs += b"GET /__local HTTP/1.1\r\nHost: t\r\n\r\n"
    reqs += b"POST /sha HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
    reqs += b"GET /n/last HTTP/1.1\r\nHost: t\r\n\r\n"
    s.sendall(reqs)
    r = Reader(s)
    got = []
    for _ in range(11):
        st, h, body = r.response()
        got.append(body)
    s.close()
    want = [b"ok %d" % i for i in range(8)] + [b"local\n",
            (hashlib.sha256(b"hello").hexdigest() + " 5").encode(), b"ok last"]
    out(got == want, "pipelining: 11 requests in one write answered in order", "in order",
        "in order" if got == want else got)

    # HEAD keeps Content-Length, no body, connection reusable
    s = conn(tool)
    r = Reader(s)
    s.sendall(b"HEAD /size/1000 HTTP/1.1\r\nHost: t\r\n\r\nGET /n/after HTTP/1.1\r\nHost: t\r\n\r\n")
    st, h, _ = r.response(head_only=True)
    st2, _, b2 = r.response()
    s.close()
    out(st == 200 and h.get("content-length") == ["1000"] and b2 == b"ok after",
        "HEAD: Content-Length kept, no body, next request fine", "200 1000 ok after",
        "%d %s %r" % (st, h.get("content-length"), b2))

    # chunked response to HTTP/1.0 client: close-delimited, raw
    s = conn(tool)
    s.sendall(b"GET /chunked/100000 HTTP/1.0\r\n\r\n")
    st, h, body = Reader(s).response()
    s.close()
    out(st == 200 and "transfer-encoding" not in h and body == (PATTERN * 2)[:100000],
        "HTTP/1.0 client: chunked upstream body relayed close-delimited", "200 raw 100000",
        "%d %s %d" % (st, h.get("transfer-encoding"), len(body)))
    s = conn(tool)
    s.sendall(b"GET /n/a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /n/b HTTP/1.0\r\n\r\n")
    r = Reader(s)
    st, h, b1_ = r.response()
    st2, h2, b2_ = r.response()
    out(h.get("connection") == ["keep-alive"] and b1_ == b"ok a" and b2_ == b"ok b" and
        closed_after(s), "HTTP/1.0 keep-alive honoured, then closed without it",
        "keep-alive, ok a, ok b, closed", "%s %r %r" % (h.get("connection"), b1_, b2_))
    s.close()

    # close-delimited upstream body to a 1.1 client becomes chunked
    st, h, body = get(tool, "/close/70000")
    out(st == 200 and h.get("transfer-encoding") == ["chunked"] and body == (PATTERN * 2)[:70000],
        "close-delimited upstream body re-chunked for HTTP/1.1", "chunked 70000",
        "%s %d" % (h.get("transfer-encoding"), len(body)))

    # Expect: 100-continue answered by the engine, body then forwarded
    s = conn(tool)
    s.sendall(b"POST /sha HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n")
    s.settimeout(3)
    first = s.recv(100)
    s.sendall(b"0123456789")
    r = Reader(s)
    st, h, body = r.response()
    s.close()
    out(first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n") and st == 200 and
        body == (hashlib.sha256(b"0123456789").hexdigest() + " 10").encode(),
        "Expect: 100-continue: 100 sent, body forwarded", "100 then 200", "%r %d" % (first[:25], st))

    # hop-by-hop fields never cross
    st, h, body = get(tool, "/headers",
                      "Connection: X-Foo, keep-alive\r\nX-Foo: 1\r\nKeep-Alive: timeout=5\r\n"
                      "TE: trailers\r\nUpgrade: websocket\r\nProxy-Connection: keep-alive\r\n"
                      "Proxy-Authorization: Basic eDp5\r\nX-Drop: 1\r\nX-Keep-Me: 1\r\n")
    names = set(k.lower() for k, v in json.loads(body))
    bad = names & {"connection", "x-foo", "keep-alive", "te", "upgrade", "proxy-connection",
                   "proxy-authorization", "x-drop"}
    out(not bad and {"x-keep-me", "x-td-tool", "host"} <= names,
        "request: hop-by-hop, Connection-named and removed fields dropped, others kept",
        "none dropped wrongly", "leaked %s, kept %s" % (sorted(bad), sorted(names)))
    rbad = set(h) & {"x-resp-drop", "x-hop", "keep-alive"}
    out(not rbad and "x-keep" in h and h.get("x-td-resp") == ["1"] and
        h.get("connection") is None,
        "response: hop-by-hop and removed fields dropped, resp_add applied",
        "X-Keep, X-Td-Resp only", "leaked %s" % sorted(rbad))

    # fetch (subrequest)
    st, h, body = get(tool, "/__fetch?/chunked/5000")
    out(st == 200 and h.get("x-fetch-status") == ["200"] and body == (PATTERN)[:5000],
        "td_hs_fetch: chunked response decoded into the callback", "200 5000 bytes",
        "%d %s %d" % (st, h.get("x-fetch-status"), len(body)))
    st, h, body = get(tool, "/__fetch?/size/3000")
    out(st == 200 and body == PATTERN[:3000] and h.get("content-type") == ["none"],
        "td_hs_fetch: Content-Length response", "200 3000", "%d %d" % (st, len(body)))

    # upstream response timeout -> 504
    t0 = time.time()
    st, h, body = get(tool, "/slow/3000")
    dt = time.time() - t0
    out(st == 504 and dt < 2.5, "upstream response timeout -> 504 (response-timeout 1 s)",
        "504 in < 2.5 s", "%d in %.2f s" % (st, dt))
    time.sleep(2.2)  # let the slow backend thread finish

    s = jget(tool, "/__stats")
    out(s["seen"] == s["done"] + 1, "ops->done ran once for every request (but this one)",
        s["seen"] - 1, s["done"])


def suite_bodies():
    tool, pid = ARGS["tool"], ARGS["pid"]
    n = 50 << 20
    want = pattern_sha(n)
    for kind in ("size", "chunked"):
        smp = RssSampler(pid)
        smp.start()
        s = conn(tool, timeout=60)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.sendall(b"GET /%s/%d HTTP/1.1\r\nHost: t\r\n\r\n" % (kind.encode(), n))
        r = Reader(s)
        h = hashlib.sha256()
        cnt = [0]

        # read 1 MiB, stall 1.5 s (the engine must stop reading the backend), then the rest
        first = True

        def sink2(d):
            nonlocal first
            h.update(d)
            cnt[0] += len(d)
            if first and cnt[0] >= 1 << 20:
                first = False
                time.sleep(1.5)
        st, hd, _ = r.response(sink=sink2)
        s.close()
        grow = smp.done()
        out(st == 200 and cnt[0] == n and h.hexdigest() == want,
            "download 50 MiB (%s) through the engine, sha256 equal" % kind, want[:16],
            "%d %d %s" % (st, cnt[0], h.hexdigest()[:16]))
        out(grow < 8192, "download 50 MiB (%s): engine RSS growth bounded" % kind, "< 8192 KiB",
            "%d KiB" % grow)

    for kind in ("cl", "chunked"):
        smp = RssSampler(pid)
        smp.start()
        s = conn(tool, timeout=60)
        if kind == "cl":
            s.sendall(b"POST /sha HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % n)
            sent = 0
            while sent < n:
                k = min(len(PATTERN), n - sent)
                s.sendall(PATTERN[:k])
                sent += k
        else:
            s.sendall(b"PUT /sha HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
            sent = 0
            sizes = [65536, 1, 300, 16384]
            i = 0
            data = PATTERN * 2
            while sent < n:
                k = min(sizes[i % 4], n - sent)
                off = sent % len(PATTERN)
                s.sendall(b"%x\r\n" % k + data[off:off + k] + b"\r\n")
                sent += k
                i += 1
            s.sendall(b"0\r\n\r\n")
        st, hd, body = Reader(s).response()
        s.close()
        grow = smp.done()
        out(st == 200 and body == ("%s %d" % (want, n)).encode(),
            "upload 50 MiB (%s) through the engine, sha256 equal" % kind, want[:16],
            "%d %r" % (st, body[:24]))
        out(grow < 8192, "upload 50 MiB (%s): engine RSS growth bounded" % kind, "< 8192 KiB",
            "%d KiB" % grow)


STRICT = [
    ("CL with TE", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("duplicate CL differing", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
    ("invalid CL", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5x\r\n\r\nhello", 400),
    ("negative CL", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n", 400),
    ("TE not final chunked", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400),
    ("TE gzip only", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    ("TE unknown coding before chunked", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    ("whitespace before colon", b"GET / HTTP/1.1\r\nHost : t\r\n\r\n", 400),
    ("obs-fold", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n  2\r\n\r\n", 400),
    ("bare CR", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: 1\r2\r\n\r\n", 400),
    ("bare LF", b"GET / HTTP/1.1\nHost: t\n\n", 400),
    ("invalid chunk size", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400),
    ("HTTP/1.1 without Host", b"GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", 400),
    ("unsupported version", b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
    ("request line over limit", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
    ("header block over limit", b"GET / HTTP/1.1\r\nHost: t\r\n" + b"X-Big: " + b"b" * 33000 + b"\r\n\r\n", 431),
    ("too many header lines", b"GET / HTTP/1.1\r\nHost: t\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(120)) + b"\r\n", 431),
]


def suite_strict():
    tool = ARGS["limited"]
    cases = list(STRICT) + [
        ("CL over max_body", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2000\r\n\r\n" + b"x" * 2000, 413),
        ("chunked over max_body", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n" + b"x" * 2000 + b"\r\n0\r\n\r\n", 413),
    ]
    b0 = backend_stats()
    for name, raw, code in cases:
        s = conn(tool)
        try:
            s.sendall(raw)
        except OSError:
            pass
        try:
            st, h, body = Reader(s).response()
        except (EOFError, OSError, ValueError, IndexError) as e:
            st, h = "none (%s)" % type(e).__name__, {}
        cl = closed_after(s)
        s.close()
        out(st == code and cl and h.get("connection") == ["close"],
            "strict: %s -> %d and closed" % (name, code), "%d closed" % code,
            "%s %s" % (st, "closed" if cl else "open"))
    b1 = backend_stats()
    out(b1["requests"] - b0["requests"] == 1 and b1["conns"] - b0["conns"] == 1,
        "strict: the backend received nothing for these requests", "0 connections, 0 requests",
        "%d connections, %d requests" % (b1["conns"] - b0["conns"] - 1,
                                         b1["requests"] - b0["requests"] - 1))
    # a valid chunked body within the limit still works on the limited engine
    s = conn(tool)
    s.sendall(b"POST /sha HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n")
    st, h, body = Reader(s).response()
    s.close()
    out(st == 200 and body == (hashlib.sha256(b"abc").hexdigest() + " 3").encode(),
        "chunked request with extension and trailer re-encoded to the backend", "200 abc",
        "%d %r" % (st, body[:20]))


def suite_slowloris():
    tool, ht = ARGS["tool"], float(ARGS["header_timeout"])
    s = conn(tool, timeout=ht + 5)
    s.sendall(b"GET /n/slow HTTP/1.1\r\n")
    t0 = time.time()
    hdr = b"Host: t\r\nX-Slow: " + b"s" * 40 + b"\r\n\r\n"
    good, slow_ok, i = 0, 0, 0
    got = b""
    s.settimeout(0.05)
    while time.time() - t0 < ht + 3:
        ts = time.time()
        try:
            if i < len(hdr):
                s.send(hdr[i:i + 1])
                i += 1
        except OSError:
            break
        st, _, body = get(tool, "/n/fast")
        if st == 200 and body == b"ok fast" and time.time() - ts < 0.5:
            good += 1
        # wait for the rest of this second on the slow connection
        s.settimeout(max(0.01, 1.0 - (time.time() - ts)))
        try:
            d = s.recv(4096)
            if not d:
                break
            got += d
            if b"\r\n\r\n" in got:
                break
        except socket.timeout:
            pass
        except OSError:
            break
    dt = time.time() - t0
    cl = closed_after(s, 1)
    s.close()
    out(got.startswith(b"HTTP/1.1 408 ") and cl and ht - 0.2 <= dt <= ht + 1.5,
        "slowloris: one byte per second cut with 408 at header_timeout", "408 after %.1f s" % ht,
        "%r after %.1f s" % (got[:12], dt))
    out(good >= int(ht) - 1, "slowloris: normal requests served meanwhile", ">= %d" % (int(ht) - 1),
        good)
    st = jget(tool, "/__stats")
    out(st["header_timeouts"] >= 1, "stats: header_timeouts counted", ">= 1", st["header_timeouts"])


def suite_idle():
    tool, it = ARGS["tool"], float(ARGS["idle_timeout"])
    s = conn(tool, timeout=it + 5)
    r = Reader(s)
    s.sendall(b"GET /n/1 HTTP/1.1\r\nHost: t\r\n\r\n")
    r.response()
    time.sleep(it / 2)
    s.sendall(b"GET /n/2 HTTP/1.1\r\nHost: t\r\n\r\n")
    st, _, b = r.response()
    t0 = time.time()
    cl = closed_after(s, it + 2)
    dt = time.time() - t0
    s.close()
    out(st == 200 and cl and it - 0.3 <= dt <= it + 1.2,
        "idle keep-alive connection closed after idle_timeout", "closed after %.1f s" % it,
        "%s after %.1f s" % ("closed" if cl else "open", dt))


def suite_upstream_fail():
    st, h, body = get(ARGS["refused"], "/x")
    out(st == 502, "upstream connection refused -> 502", 502, st)
    st, h, body = get(ARGS["fallback"], "/n/fb")
    s = jget(ARGS["fallback"], "/__stats")
    out(st == 200 and body == b"ok fb" and s["retries"] >= 1 and s["upstream_errors"] >= 1,
        "ops->upstream retry on a refused connection reaches the fallback", "200 ok fb, retries >= 1",
        "%d %r retries %d" % (st, body, s["retries"]))
    st, h, body = get(ARGS["refused"], "/__fetch?/x")
    out(st == 502 and h.get("x-fetch-err") == ["-111"], "td_hs_fetch: refused -> err -ECONNREFUSED",
        "-111", h.get("x-fetch-err"))
    # a backend that closes idle keep-alive connections: the pool must notice
    tool = ARGS["closer"]
    okc = 0
    for i in range(4):
        st, _, body = get(tool, "/n/c%d" % i)
        okc += st == 200
        time.sleep(0.8)
    s = jget(tool, "/__stats")
    out(okc == 4 and s["upstream_errors"] == 0,
        "pooled connections closed by the backend are dropped, requests still succeed",
        "4 ok, 0 upstream errors", "%d ok, %d errors" % (okc, s["upstream_errors"]))


def suite_maxconns():
    tool, mc = ARGS["limited"], int(ARGS["max_conns"])
    s0 = jget(tool, "/__stats")
    time.sleep(0.3)   # the /__stats connection is closed on the engine side too
    socks = [conn(tool) for _ in range(mc)]
    time.sleep(0.3)
    extra = conn(tool)
    cl = closed_after(extra, 2)
    extra.close()
    socks.pop().close()
    time.sleep(0.3)
    s1 = jget(tool, "/__stats")
    for s in socks:
        s.close()
    out(cl and s1["conns_rejected"] - s0["conns_rejected"] >= 1,
        "max_conns: connection over the limit accepted and closed", "closed, rejected >= 1",
        "%s, rejected %d" % ("closed" if cl else "open", s1["conns_rejected"] - s0["conns_rejected"]))


def suite_idle_memory():
    tool, pid, n = ARGS["tool"], ARGS["pid"], int(ARGS.get("conns", "5000"))
    # warm up the per-worker free lists (request contexts, buffers): 300 concurrent requests
    socks = [conn(tool) for _ in range(300)]
    for s in socks:
        s.sendall(b"GET /__local HTTP/1.1\r\nHost: t\r\n\r\n")
    for s in socks:
        Reader(s).response()
        s.close()
    time.sleep(0.5)
    base = rss_kib(pid)
    socks = []
    req = b"GET /__local HTTP/1.1\r\nHost: t\r\n\r\n"
    okc = 0
    for i in range(n):
        s = conn(tool)
        s.sendall(req)
        socks.append(s)
        if len(socks) % 200 == 0 or i == n - 1:
            for x in socks[-200:] if i != n - 1 else socks[(len(socks) - 1) // 200 * 200:]:
                st, _, b = Reader(x).response()
                okc += st == 404
    time.sleep(0.5)
    after = rss_kib(pid)
    st = jget(tool, "/__stats")
    per = (after - base) * 1024.0 / n
    for s in socks:
        s.close()
    out(okc == n and st["conns_open"] >= n, "idle memory: %d keep-alive connections open" % n, n,
        "%d answered, %d open" % (okc, st["conns_open"]))
    out(per < 4096, "idle memory per keep-alive connection (RSS delta)", "< 4096 B",
        "%.0f B" % per)


def suite_reload():
    """SIGUSR1 makes td_http_tool listen again and drop the old listener (td_hs_unlisten)."""
    import signal
    tool, pid = ARGS["tool"], int(ARGS["pid"])
    s = conn(tool)
    r = Reader(s)
    s.sendall(b"GET /n/before HTTP/1.1\r\nHost: t\r\n\r\n")
    st0, _, b0 = r.response()
    fails = []
    stop = []

    def hammer():
        i = 0
        while not stop:
            try:
                st, _, b = get(tool, "/__local")
                if st != 404:
                    fails.append(st)
            except OSError as e:
                fails.append(type(e).__name__)
            i += 1

    th = threading.Thread(target=hammer, daemon=True)
    th.start()
    try:
        for _ in range(5):
            os.kill(pid, signal.SIGUSR1)
            time.sleep(0.3)
    finally:
        stop.append(1)
        th.join(5)
    s.sendall(b"GET /n/after HTTP/1.1\r\nHost: t\r\n\r\n")
    st1, _, b1 = r.response()
    s.close()
    out(b0 == b"ok before" and b1 == b"ok after",
        "reload: a keep-alive connection survives 5 listener swaps", "ok before, ok after",
        "%r %r" % (b0, b1))
    out(not fails, "reload: new connections never refused during the swaps", "no failures",
        fails[:5])


if __name__ == "__main__":
    try:
        globals()["suite_" + sys.argv[1]]()
    except Exception as e:  # a suite that dies must fail, not go silent
        out(False, "suite %s ran to the end" % sys.argv[1], "no exception",
            "%s: %s" % (type(e).__name__, e))
