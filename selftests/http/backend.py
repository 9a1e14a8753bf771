#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# HTTP/1.1 test backend for the engine tests: keep-alive, CL / chunked / close-delimited bodies,
# body digests, header echo, delays, and counters of connections and requests it received.
#   backend.py PORT [ADDR] [IDLE_S]   (IDLE_S: close keep-alive connections idle that long)
# Paths:
#   GET  /size/N        N bytes (pattern), Content-Length
#   GET  /chunked/N     N bytes, Transfer-Encoding: chunked (chunks of 16 KiB and odd sizes)
#   GET  /close/N       N bytes, no length: close-delimited (Connection: close)
#   POST /sha           request body (CL or chunked) -> "sha256hex length"
#   ANY  /headers       the request head as received (JSON list of [name, value]) and the
#                       response carries X-Resp-Drop, Connection: X-Hop, X-Hop, Keep-Alive
#   GET  /slow/MS       answers after MS milliseconds
#   GET  /stats         {"conns": N, "requests": N}
#   GET  /reset         counters to zero
#   GET  /n/ANY         small body "ok ANY" (pipelining order checks)
import hashlib
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATS = {"conns": 0, "requests": 0}
PATTERN = bytes(range(256)) * 256  # 64 KiB


def pattern(n):
    full, rest = divmod(n, len(PATTERN))
    for _ in range(full):
        yield PATTERN
    if rest:
        yield PATTERN[:rest]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _count(self):
        with LOCK:
            STATS["requests"] += 1

    def _send(self, code, body, ctype="text/plain", extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _read_body(self):
        h = hashlib.sha256()
        n = 0
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                left = size
                while left:
                    d = self.rfile.read(min(left, 1 << 16))
                    if not d:
                        raise ConnectionError("eof in chunk")
                    h.update(d)
                    left -= len(d)
                    n += len(d)
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left:
                d = self.rfile.read(min(left, 1 << 16))
                if not d:
                    raise ConnectionError("eof in body")
                h.update(d)
                left -= len(d)
                n += len(d)
        return h.hexdigest(), n

    def do_GET(self):
        self._count()
        p = self.path
        if p.startswith("/size/"):
            n = int(p[6:])
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            if self.command != "HEAD":
                for part in pattern(n):
                    self.wfile.write(part)
        elif p.startswith("/chunked/"):
            n = int(p[9:])
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if self.command == "HEAD":
                return
            sent = 0
            sizes = [16384, 1, 4093, 65536]
            i = 0
            data = b"".join(pattern(n))
            while sent < n:
                k = min(sizes[i % len(sizes)], n - sent)
                i += 1
                self.wfile.write(b"%x;ext=1\r\n" % k + data[sent:sent + k] + b"\r\n")
                sent += k
            self.wfile.write(b"0\r\nX-Trailer: t\r\n\r\n")
        elif p.startswith("/close/"):
            n = int(p[7:])
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            for part in pattern(n):
                self.wfile.write(part)
            self.close_connection = True
        elif p == "/headers":
            body = json.dumps([[k, v] for k, v in self.headers.items()]).encode()
            self._send(200, body, "application/json",
                       [("X-Resp-Drop", "1"), ("Connection", "X-Hop"), ("X-Hop", "1"),
                        ("Keep-Alive", "timeout=5"), ("X-Keep", "1")])
        elif p.startswith("/slow/"):
            time.sleep(int(p[6:]) / 1000.0)
            self._send(200, b"slow\n")
        elif p == "/stats":
            with LOCK:
                body = json.dumps(STATS).encode()
            self._send(200, body, "application/json")
        elif p == "/reset":
            with LOCK:
                STATS["conns"] = 0
                STATS["requests"] = 0
            self._send(200, b"reset\n")
        elif p.startswith("/n/"):
            self._send(200, ("ok " + p[3:]).encode())
        else:
            self._send(200, b"hello\n")

    do_HEAD = do_GET

    def do_POST(self):
        self._count()
        if self.path == "/headers":
            self._read_body()
            return self.do_GET_headers()
        digest, n = self._read_body()
        self._send(200, ("%s %d" % (digest, n)).encode())

    def do_GET_headers(self):
        body = json.dumps([[k, v] for k, v in self.headers.items()]).encode()
        self._send(200, body, "application/json")

    do_PUT = do_POST


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def process_request(self, request, client_address):
        with LOCK:
            STATS["conns"] += 1
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().process_request(request, client_address)


def main():
    port = int(sys.argv[1])
    addr = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    if len(sys.argv) > 3:
        Handler.timeout = float(sys.argv[3])
    srv = Server((addr, port), Handler)
    print("backend ready", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
