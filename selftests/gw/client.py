#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Raw-socket HTTP/1.1 client for the gateway tests (no library between the test and the bytes).

  client.py raw  --port P [--addr A] --data 'GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n' [--wait S]
        send the bytes (escapes \\r \\n \\t understood), print every byte received until the
        server closes or --wait seconds of silence (JSON: {"data", "closed", "seconds"})
  client.py seq  --port P [--addr A] --path /x --count N [-H 'K: V'] [--bind IP] [--method M]
        [--new-conn] [--interval S]
        N requests on ONE keep-alive socket (or one socket each with --new-conn); JSON:
        {"ok", "errors", "statuses": {code: n}, "backends": {X-Backend: n}, "conns",
         "reconnects", "retry_after": [...], "first_error"}
  client.py load --port P [--addr A] --path /x --threads T --duration S [--slow-path /y]
        T threads, each one keep-alive socket looping requests for S seconds (thread 0 uses
        --slow-path when given); a socket the server closes is counted in "reconnects" and
        reopened. JSON as seq, plus "requests".
"""
import argparse
import json
import socket
import sys
import threading
import time


class HTTPError(Exception):
    pass


def read_response(sock, buf, method="GET"):
    """Read one response from sock; buf is leftover bytes. Returns (status, headers, body, rest)."""
    while b"\r\n\r\n" not in buf:
        d = sock.recv(65536)
        if not d:
            raise HTTPError("closed before a response head (%d bytes)" % len(buf))
        buf += d
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise HTTPError("bad status line %r" % lines[0])
    status = int(parts[1])
    hdrs = []
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs.append((k.strip().lower(), v.strip()))
    h = dict(hdrs)
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return status, hdrs, b"", buf
    if "chunked" in h.get("transfer-encoding", "").lower():
        body = b""
        while True:
            while b"\r\n" not in buf:
                d = sock.recv(65536)
                if not d:
                    raise HTTPError("closed inside a chunked body")
                buf += d
            line, buf = buf.split(b"\r\n", 1)
            n = int(line.split(b";")[0], 16)
            while len(buf) < n + 2:
                d = sock.recv(65536)
                if not d:
                    raise HTTPError("closed inside a chunk")
                buf += d
            if n == 0:
                # trailers (none expected): up to the empty line
                while not buf.startswith(b"\r\n") and b"\r\n\r\n" not in buf:
                    buf += sock.recv(65536)
                buf = buf[2:] if buf.startswith(b"\r\n") else buf.split(b"\r\n\r\n", 1)[1]
                return status, hdrs, body, buf
            body += buf[:n]
            buf = buf[n + 2:]
    if "content-length" in h:
        n = int(h["content-length"])
        while len(buf) < n:
            d = sock.recv(65536)
            if not d:
                raise HTTPError("closed inside a body")
            buf += d
        return status, hdrs, buf[:n], buf[n:]
    while True:  # close-delimited
        d = sock.recv(65536)
        if not d:
            return status, hdrs, buf, b""
        buf += d


class Conn:
    def __init__(self, a):
        self.a = a
        self.sock = None
        self.buf = b""
        self.opened = 0

    def open(self):
        self.close()
        s = socket.socket(socket.AF_INET6 if ":" in self.a.addr else socket.AF_INET)
        s.settimeout(self.a.timeout)
        if self.a.bind:
            s.bind((self.a.bind, 0))
        s.connect((self.a.addr, self.a.port))
        self.sock, self.buf = s, b""
        self.opened += 1

    def close(self):
        if self.sock:
            self.sock.close()
        self.sock = None

    def request(self, method, path, headers, body=b""):
        if self.sock is None:
            self.open()
        req = "%s %s HTTP/1.1\r\nHost: %s\r\n" % (method, path, self.a.host)
        for h in headers:
            req += h + "\r\n"
        if body or method in ("POST", "PUT"):
            req += "Content-Length: %d\r\n" % len(body)
        self.sock.sendall(req.encode() + b"\r\n" + body)
        st, hdrs, rbody, self.buf = read_response(self.sock, self.buf, method)
        if any(k == "connection" and "close" in v.lower() for k, v in hdrs):
            self.close()
        return st, hdrs, rbody


def new_result():
    return {"ok": 0, "errors": 0, "statuses": {}, "backends": {}, "conns": 0, "reconnects": 0,
            "retry_after": [], "first_error": "", "requests": 0}


def account(res, st, hdrs):
    res["requests"] += 1
    res["statuses"][str(st)] = res["statuses"].get(str(st), 0) + 1
    h = dict(hdrs)
    if 200 <= st < 300:
        res["ok"] += 1
    else:
        res["errors"] += 1
    if "x-backend" in h:
        res["backends"][h["x-backend"]] = res["backends"].get(h["x-backend"], 0) + 1
    if "retry-after" in h:
        res["retry_after"].append(h["retry-after"])


def fail(res, e):
    res["errors"] += 1
    if not res["first_error"]:
        res["first_error"] = "%s: %s" % (type(e).__name__, e)


def cmd_seq(a):
    res, c = new_result(), Conn(a)
    for i in range(a.count):
        if a.new_conn:
            c.close()
        try:
            was_open = c.sock is not None
            st, hdrs, _ = c.request(a.method, a.path, a.header, a.body.encode())
            account(res, st, hdrs)
        except (OSError, HTTPError) as e:
            fail(res, e)
            if was_open and not a.new_conn:
                res["reconnects"] += 1
            c.close()
        if a.interval:
            time.sleep(a.interval)
    res["conns"] = c.opened
    c.close()
    print(json.dumps(res))


def cmd_load(a):
    total, lock, stop = new_result(), threading.Lock(), time.time() + a.duration

    def worker(i):
        res, c = new_result(), Conn(a)
        path = a.slow_path if (i == 0 and a.slow_path) else a.path
        while time.time() < stop:
            try:
                st, hdrs, _ = c.request("GET", path, a.header)
                account(res, st, hdrs)
                if c.sock is None:  # the server said Connection: close
                    res["reconnects"] += 1
            except (OSError, HTTPError) as e:
                fail(res, e)
                res["reconnects"] += 1
                c.close()
                time.sleep(0.05)
        res["conns"] = c.opened
        c.close()
        with lock:
            for k in ("ok", "errors", "conns", "reconnects", "requests"):
                total[k] += res[k]
            for k in ("statuses", "backends"):
                for kk, v in res[k].items():
                    total[k][kk] = total[k].get(kk, 0) + v
            if res["first_error"] and not total["first_error"]:
                total["first_error"] = res["first_error"]

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(a.threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print(json.dumps(total))


def cmd_raw(a):
    data = a.data.encode().decode("unicode_escape").encode("latin-1")
    s = socket.create_connection((a.addr, a.port), timeout=a.timeout)
    s.settimeout(a.wait)
    t0 = time.time()
    s.sendall(data)
    got, closed = b"", False
    while True:
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        if not d:
            closed = True
            break
        got += d
    s.close()
    print(json.dumps({"data": got.decode("latin-1"), "closed": closed,
                      "seconds": round(time.time() - t0, 3)}))


def main():
    p = argparse.ArgumentParser()
    sp = p.add_subparsers(dest="cmd", required=True)
    for name in ("raw", "seq", "load"):
        q = sp.add_parser(name)
        q.add_argument("--addr", default="127.0.0.1")
        q.add_argument("--port", type=int, required=True)
        q.add_argument("--host", default="gw.test")
        q.add_argument("--timeout", type=float, default=10)
        q.add_argument("--bind")
        q.add_argument("-H", "--header", action="append", default=[])
        if name == "raw":
            q.add_argument("--data", required=True)
            q.add_argument("--wait", type=float, default=2)
        else:
            q.add_argument("--path", default="/")
        if name == "seq":
            q.add_argument("--count", type=int, default=1)
            q.add_argument("--method", default="GET")
            q.add_argument("--body", default="")
            q.add_argument("--new-conn", action="store_true")
            q.add_argument("--interval", type=float, default=0)
        if name == "load":
            q.add_argument("--threads", type=int, default=4)
            q.add_argument("--duration", type=float, default=5)
            q.add_argument("--slow-path")
    a = p.parse_args()
    {"raw": cmd_raw, "seq": cmd_seq, "load": cmd_load}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
