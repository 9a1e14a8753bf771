#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Backend servers for the netns tests and the demo: threaded TCP and UDP, bounded lifetime.

TCP: reads one line. "stream N" -> sends N bytes of the deterministic stream (see stream_bytes)
     and closes; "GET ..." (HTTP, for curl) -> HTTP/1.0 200 with body "<name>\\n"; anything
     else -> "<name>\\n" and close.
UDP: every datagram is answered with "<name>\\n" to its sender.
Listens on :: with IPV6_V6ONLY off, so IPv4 and IPv6 (and DSR VIPs on lo) are all served.
"""
import argparse
import os
import signal
import socket
import socketserver
import sys
import threading
import time

BLOCK = 65536


def stream_block(i):
    """Block i of the deterministic stream: the 8-byte block number repeated, 64 KiB."""
    return i.to_bytes(8, "big") * (BLOCK // 8)


def stream_bytes(n):
    """Yield the first n bytes of the deterministic stream in chunks."""
    i = 0
    while n > 0:
        b = stream_block(i)
        if n < len(b):
            b = b[:n]
        yield b
        n -= len(b)
        i += 1


class V6Mixin:
    address_family = socket.AF_INET6
    allow_reuse_address = True
    daemon_threads = True

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


class TCPServer(V6Mixin, socketserver.ThreadingTCPServer):
    request_queue_size = 512


class UDPServer(V6Mixin, socketserver.ThreadingUDPServer):
    pass


def make_tcp_handler(name):
    class H(socketserver.StreamRequestHandler):
        timeout = 10

        def handle(self):
            try:
                line = self.rfile.readline(4096)
            except OSError:
                return
            text = line.decode("latin-1").strip()
            if text.startswith("stream "):
                n = int(text.split()[1])
                for chunk in stream_bytes(n):
                    self.wfile.write(chunk)
            elif text.startswith(("GET ", "HEAD ")):
                while True:  # skip the request headers
                    h = self.rfile.readline(4096)
                    if h in (b"\r\n", b"\n", b""):
                        break
                body = (name + "\n").encode()
                self.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n"
                                 b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
                if not text.startswith("HEAD "):
                    self.wfile.write(body)
            else:
                self.wfile.write((name + "\n").encode())

    return H


def make_udp_handler(name):
    class H(socketserver.BaseRequestHandler):
        def handle(self):
            _data, sock = self.request
            sock.sendto((name + "\n").encode(), self.client_address)

    return H


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--name", required=True)
    ap.add_argument("--tcp", type=int, action="append", default=[], help="TCP port (repeatable)")
    ap.add_argument("--udp", type=int, action="append", default=[], help="UDP port (repeatable)")
    ap.add_argument("--bind", default="::")
    ap.add_argument("--lifetime", type=float, default=600, help="exit after this many seconds")
    a = ap.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    servers = []
    for p in a.tcp:
        servers.append(TCPServer((a.bind, p), make_tcp_handler(a.name)))
    for p in a.udp:
        servers.append(UDPServer((a.bind, p), make_udp_handler(a.name)))
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print("servers: %s listening tcp=%s udp=%s for %ss" % (a.name, a.tcp, a.udp, a.lifetime),
          file=sys.stderr, flush=True)
    time.sleep(a.lifetime)
    os._exit(0)


if __name__ == "__main__":
    main()
