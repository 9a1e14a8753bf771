#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Origin server of the forward-proxy tests: counts and logs every request, answers with cache
# headers chosen by query parameters.
#
#   origin.py --listen ADDR:PORT [--listen ...] [--tls CERT KEY] --log FILE [--lifetime S]
#
# Every request is appended to FILE as one JSON line (written before the answer is sent, so a
# client that got its answer finds its line):
#   {"listen": "10.77.0.2:80", "peer": "10.77.0.1", "method": "GET", "path": "/x?cc=...",
#    "headers": [[name, value], ...], "body_len": N, "body_sha256": HEX, "status": 200,
#    "tls": false, "conn": K}    (conn: the number of the connection on this listener)
# The answer body is JSON: {"n": requests so far for this path, "path", "method", "headers":
# {lower-name: value (repeated fields joined with ", ")}, "body_len", "body_sha256", "vary": value of the Vary header's request
# header or null} followed by "pad" to reach size=N when asked.
#
# Query parameters (all optional):
#   cc=VALUE       Cache-Control of the answer ("no-store", "max-age=1", "public, max-age=60")
#   etag=TAG       ETag: "TAG"; a request with a matching If-None-Match gets 304
#   lm=EPOCH       Last-Modified (HTTP-date of EPOCH); If-Modified-Since >= it gets 304
#   vary=NAME      Vary: NAME (the body carries the request's NAME value)
#   delay=MS       sleep before answering (concurrency / collapsing tests)
#   status=CODE    status of the answer (default 200)
#   size=N         body of at least N bytes
#   close=1        Connection: close on the answer
#   stamp=1        X-Origin-Count: the number of requests for this path so far (also on a 304:
#                  a cache must merge it into the stored response, RFC 9111 4.3.4)
# Requests to a path starting with /count/ answer the number of logged requests whose path
# starts with the rest (not logged themselves).
import argparse
import email.utils
import hashlib
import json
import os
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

LOCK = threading.Lock()
COUNTS = {}
PATHS = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "td-origin"
    sys_version = ""

    def log_message(self, fmt, *args):
        pass

    def setup(self):
        super().setup()
        with LOCK:
            self.server.nconn += 1
            self.conn_no = self.server.nconn

    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        h = hashlib.sha256()
        n = 0
        if "chunked" in te.lower():
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    break
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                left = size
                while left:
                    b = self.rfile.read(min(left, 65536))
                    if not b:
                        break
                    h.update(b)
                    n += len(b)
                    left -= len(b)
                self.rfile.readline(16)
        else:
            left = int(self.headers.get("Content-Length", "0") or 0)
            while left:
                b = self.rfile.read(min(left, 65536))
                if not b:
                    break
                h.update(b)
                n += len(b)
                left -= len(b)
        return n, h.hexdigest()

    def handle_any(self):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        if u.path.startswith("/count/"):
            pre = u.path[len("/count"):]
            with LOCK:
                n = sum(1 for p in PATHS if p.startswith(pre))
            return self.send(200, str(n).encode() + b"\n", {"Cache-Control": "no-store"})
        body_len, body_sha = self.read_body()
        status = int(q.get("status", "200"))
        hdrs = {"Date": email.utils.formatdate(usegmt=True)}
        if "cc" in q:
            hdrs["Cache-Control"] = q["cc"]
        if "vary" in q:
            hdrs["Vary"] = q["vary"]
        if "etag" in q:
            hdrs["ETag"] = '"%s"' % q["etag"]
            inm = self.headers.get("If-None-Match")
            if inm and ('"%s"' % q["etag"] in inm or inm.strip() == "*"):
                status = 304
        if "lm" in q:
            lm = int(q["lm"])
            hdrs["Last-Modified"] = email.utils.formatdate(lm, usegmt=True)
            ims = self.headers.get("If-Modified-Since")
            if ims and "etag" not in q:
                try:
                    if email.utils.parsedate_to_datetime(ims).timestamp() >= lm:
                        status = 304
                except (TypeError, ValueError):
                    pass
        if q.get("close") == "1":
            hdrs["Connection"] = "close"
        with LOCK:
            COUNTS[u.path] = COUNTS.get(u.path, 0) + 1
            n = COUNTS[u.path]
            PATHS.append(self.path)
            rec = {"listen": self.server.label, "peer": self.client_address[0],
                   "method": self.command, "path": self.path,
                   "headers": [[k, v] for k, v in self.headers.items()],
                   "body_len": body_len, "body_sha256": body_sha, "status": status,
                   "tls": self.server.tls, "conn": self.conn_no, "time": time.time()}
            with open(self.server.logfile, "a") as f:
                f.write(json.dumps(rec) + "\n")
        if "stamp" in q:
            hdrs["X-Origin-Count"] = str(n)
        if "delay" in q:
            time.sleep(int(q["delay"]) / 1000.0)
        if status == 304:
            return self.send(304, b"", hdrs)
        merged = {}  # repeated fields joined with ", " (RFC 9110 5.3)
        for k, v in self.headers.items():
            k = k.lower()
            merged[k] = merged[k] + ", " + v if k in merged else v
        out = {"n": n, "path": self.path, "method": self.command,
               "headers": merged,
               "body_len": body_len, "body_sha256": body_sha,
               "vary": self.headers.get(q["vary"]) if "vary" in q else None}
        body = json.dumps(out).encode()
        size = int(q.get("size", "0"))
        if size > len(body):
            body += b"\n" + b"p" * (size - len(body) - 1)
        hdrs["Content-Type"] = "application/json"
        self.send(status, body if self.command != "HEAD" else b"", hdrs, len(body))

    def send(self, status, body, hdrs, length=None):
        self.send_response(status)
        for k, v in hdrs.items():
            self.send_header(k, v)
        if status != 304:
            self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if body:
            self.wfile.write(body)
        if hdrs.get("Connection") == "close":
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = do_OPTIONS = handle_any


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", action="append", required=True)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--log", required=True)
    ap.add_argument("--lifetime", type=float, default=600)
    a = ap.parse_args()
    servers = []
    for l in a.listen:
        host, port = l.rsplit(":", 1)
        s = Server((host.strip("[]"), int(port)), Handler)
        s.label, s.logfile, s.tls, s.nconn = l, a.log, bool(a.tls), 0
        if a.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(a.tls[0], a.tls[1])
            s.socket = ctx.wrap_socket(s.socket, server_side=True)
        servers.append(s)
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print("ready", flush=True)
    # bounded life: a test that dies without cleanup does not leave this running for long
    time.sleep(a.lifetime)
    os._exit(0)


if __name__ == "__main__":
    main()
