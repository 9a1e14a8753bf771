#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Gateway test backend: an HTTP/1.1 keep-alive server that echoes what it received as JSON.

  backend.py --id b1 --listen 127.0.0.1:9001 --dir STATE_DIR [--delay-ms N] [--lifetime S]

Every request is appended as one JSON line to STATE_DIR/<id>.log (method, target, headers) before
it is answered (GET /healthz to <id>.hlog), so a test can count what reached which backend.
Answers:
  GET /healthz          200 "ok", or 503 while STATE_DIR/<id>.down exists
  any /data             200 {"from": "<id>", "items": [1, 2, 3]} (fixed: aggregation tests)
  any /text             200 text/plain "plain <id>" (not JSON)
  anything else         200 echo: {"id", "method", "target", "path", "query", "headers"
                        (lower-case name -> list of values), "body", "peer", "n"}
Query parameters change any answer (except /healthz): status=NNN (answer that status),
sleep_ms=N (wait first), close=1 (close the connection without answering), hop=1 (the answer
carries "Connection: X-Hop-Resp" and "X-Hop-Resp: 1": hop-by-hop for the gateway to drop).
While STATE_DIR/<id>.fail exists every non-health request gets 503. --delay-ms delays every
non-health answer. Response headers always include X-Backend: <id>.
"""
import argparse
import json
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


def make_handler(a):
    lock = threading.Lock()
    seq = [0]
    logpath = os.path.join(a.dir, a.id + ".log")

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "tdtest-backend"
        timeout = 120

        def log_message(self, fmt, *args):
            pass

        def read_body(self):
            te = self.headers.get("Transfer-Encoding", "")
            if "chunked" in te.lower():
                out = b""
                while True:
                    line = self.rfile.readline(1024)
                    n = int(line.split(b";")[0].strip() or b"0", 16)
                    if n == 0:
                        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                            pass
                        return out
                    out += self.rfile.read(n)
                    self.rfile.readline(16)
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def send(self, status, body, ctype="application/json", extra=()):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Backend", a.id)
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def handle_any(self):
            body = self.read_body()
            u = urlsplit(self.path)
            q = {k: v[-1] for k, v in parse_qs(u.query).items()}
            hdrs = {}
            for k, v in self.headers.items():
                hdrs.setdefault(k.lower(), []).append(v)
            with lock:
                seq[0] += 1
                n = seq[0]
                rec = {"n": n, "method": self.command, "target": self.path, "headers": hdrs,
                       "peer": "%s:%d" % self.client_address[:2], "t": time.time()}
                # health checks go to <id>.hlog: the request counts of a test stay exact
                with open(logpath if u.path != "/healthz" else logpath[:-4] + ".hlog", "a") as f:
                    f.write(json.dumps(rec) + "\n")
            if u.path == "/healthz":
                down = os.path.exists(os.path.join(a.dir, a.id + ".down"))
                self.send(503 if down else 200, b"down\n" if down else b"ok\n", "text/plain")
                return
            if q.get("close") == "1":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            delay = int(q.get("sleep_ms", a.delay_ms))
            if delay:
                time.sleep(delay / 1000.0)
            status = int(q.get("status", 200))
            if os.path.exists(os.path.join(a.dir, a.id + ".fail")):
                status = 503
            extra = [("Connection", "X-Hop-Resp"), ("X-Hop-Resp", "1")] if q.get("hop") == "1" else []
            if u.path.endswith("/data"):
                self.send(status, json.dumps({"from": a.id, "items": [1, 2, 3]}).encode(),
                          extra=extra)
            elif u.path.endswith("/text"):
                self.send(status, ("plain %s" % a.id).encode(), "text/plain", extra)
            else:
                echo = {"id": a.id, "method": self.command, "target": self.path, "path": u.path,
                        "query": u.query, "headers": hdrs,
                        "body": body.decode("utf-8", "replace"),
                        "peer": rec["peer"], "n": n}
                self.send(status, json.dumps(echo).encode(), extra=extra)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any

    return H


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--id", required=True)
    p.add_argument("--listen", required=True, help="ADDR:PORT")
    p.add_argument("--dir", required=True)
    p.add_argument("--delay-ms", type=int, default=0)
    p.add_argument("--lifetime", type=int, default=600)
    a = p.parse_args()
    host, port = a.listen.rsplit(":", 1)
    srv = Server((host, int(port)), make_handler(a))
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    threading.Timer(a.lifetime, lambda: os._exit(0)).start()
    print("ready %s %s" % (a.id, a.listen), flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
