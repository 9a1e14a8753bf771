#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Client-side checks of the forward-proxy tests, run in the client netns by fpcheck (fp_lib.sh).
#
#   fpcheck.py SCENARIO --proxy http://127.0.0.1:3128 --tmp TMP [--tag T]
#
# Prints one "ok|FAIL<TAB>description<TAB>expected<TAB>got" line per check (t_lines format).
# The origins are selftests/fp/origin.py behind the names of fp_lib.sh's hosts file; their
# answers carry the request as the origin saw it, which is what most checks read.
# Scenarios:
#   basic     python-requests over http (absolute form) and https (CONNECT), env proxies,
#             keep-alive, streamed and sized POST bodies, HEAD, 404 and a 2 MB body passed on
#   hopbyhop  Proxy-Connection, Proxy-Authorization, Connection-listed and Keep-Alive headers
#             never reach the origin; end-to-end headers do; Via: 1.1 td both ways
#   anon      (anonymize: true) Via, X-Forwarded-For, Forwarded, From, X-Real-IP, Client-IP
#             removed, no Via added either way
#   collapse  N concurrent GETs of one cacheable URL the origin answers slowly: all 200, same
#             body (the origin-side count is checked by the test)
import argparse
import hashlib
import http.client
import json
import os
import socket
import sys
import threading
import urllib.parse

import requests

OUT = []


def check(desc, exp, got, ok=None):
    if ok is None:
        ok = exp == got
    OUT.append("%s\t%s\t%s\t%s" % ("ok" if ok else "FAIL", desc, exp, str(got)[:200]))


def origin_view(r):
    """the request as the origin saw it (origin.py's JSON body), {} when not JSON"""
    try:
        return r.json()
    except ValueError:
        return {}


def session(a, env=False):
    s = requests.Session()
    s.trust_env = env
    if not env:
        s.proxies = {"http": a.proxy, "https": a.proxy}
    return s


def basic(a):
    ca = os.path.join(a.tmp, "certs", "ca.pem")
    s = session(a)
    t = a.tag
    try:
        r = s.get("http://www.origin.test/b/%s/get?x=1" % t, timeout=5)
        v = origin_view(r)
        check("requests GET http via proxy: status", 200, r.status_code)
        check("requests GET http via proxy: origin saw the origin-form path",
              "/b/%s/get?x=1" % t, v.get("path"))
        check("requests GET http via proxy: Host is the origin's", "www.origin.test",
              v.get("headers", {}).get("host"))
    except requests.RequestException as e:
        check("requests GET http via proxy", 200, "exception %s" % type(e).__name__, False)
    try:
        r = s.get("https://api.example/b/%s/tls" % t, timeout=5, verify=ca)
        v = origin_view(r)
        check("requests GET https via CONNECT: status", 200, r.status_code)
        check("requests GET https via CONNECT: body from the TLS origin",
              "/b/%s/tls" % t, v.get("path"))
        r2 = s.get("https://api.example/b/%s/tls2" % t, timeout=5, verify=ca)
        check("second https request on the session (tunnel kept)", 200, r2.status_code)
    except requests.RequestException as e:
        check("requests GET https via CONNECT", 200, "exception %s: %s" % (type(e).__name__, e),
              False)
    # http_proxy / https_proxy from the environment
    os.environ["http_proxy"] = a.proxy
    os.environ["https_proxy"] = a.proxy
    os.environ.pop("no_proxy", None)
    os.environ.pop("NO_PROXY", None)
    try:
        e = session(a, env=True)
        r = e.get("http://www.origin.test/b/%s/env" % t, timeout=5)
        check("requests with http_proxy from the environment", 200, r.status_code)
        r = e.get("https://api.example/b/%s/envtls" % t, timeout=5, verify=ca)
        check("requests with https_proxy from the environment", 200, r.status_code)
    except requests.RequestException as ex:
        check("requests with proxies from the environment", 200,
              "exception %s" % type(ex).__name__, False)
    # streamed POST (chunked) and a sized one: the origin hashes what it got
    blob = os.urandom(1 << 20)
    want = hashlib.sha256(blob * 4).hexdigest()

    def gen():
        for _ in range(4):
            for i in range(0, len(blob), 65536):
                yield blob[i:i + 65536]
    try:
        r = s.post("http://www.origin.test/b/%s/post-chunked" % t, data=gen(), timeout=20)
        v = origin_view(r)
        check("streamed (chunked) 4 MiB POST: status", 200, r.status_code)
        check("streamed (chunked) 4 MiB POST: origin got every byte", "%d %s" % (4 << 20, want[:16]),
              "%s %s" % (v.get("body_len"), str(v.get("body_sha256"))[:16]))
        r = s.post("http://www.origin.test/b/%s/post-cl" % t, data=blob, timeout=20)
        v = origin_view(r)
        check("1 MiB POST with Content-Length: origin got every byte",
              "%d %s" % (len(blob), hashlib.sha256(blob).hexdigest()[:16]),
              "%s %s" % (v.get("body_len"), str(v.get("body_sha256"))[:16]))
        r = s.head("http://www.origin.test/b/%s/head" % t, timeout=5)
        check("HEAD through the proxy: 200 and no body", "200 0",
              "%d %d" % (r.status_code, len(r.content)))
        r = s.get("http://www.origin.test/b/%s/nf?status=404" % t, timeout=5)
        check("origin 404 passed on", 404, r.status_code)
        r = s.get("http://www.origin.test/b/%s/big?size=2000000&cc=no-store" % t, timeout=20)
        check("2 MB response body intact", 2000000, len(r.content))
    except requests.RequestException as e:
        check("POST/HEAD/404/big through the proxy", "answers", "exception %s" % e, False)
    # keep-alive: three requests on one client connection
    u = urllib.parse.urlsplit(a.proxy)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
    socks, codes, closes = [], [], []
    try:
        for i in range(3):
            c.request("GET", "http://www.origin.test/b/%s/ka%d" % (t, i),
                      headers={"Host": "www.origin.test"})
            r = c.getresponse()
            r.read()
            codes.append(r.status)
            closes.append(r.will_close)
            socks.append(id(c.sock))
        check("keep-alive: three requests, one client connection", "[200, 200, 200] 1 conn",
              "%s %d conn" % (codes, len(set(socks))),
              codes == [200] * 3 and len(set(socks)) == 1 and not any(closes))
    except (OSError, http.client.HTTPException) as e:
        check("keep-alive: three requests, one client connection", "3 x 200",
              "exception %s" % e, False)
    finally:
        c.close()


def raw(a, req, read_all=True):
    """send bytes to the proxy, return (status, headers {lower: value}, body)"""
    u = urllib.parse.urlsplit(a.proxy)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
    c.connect()
    c.sock.sendall(req)
    r = http.client.HTTPResponse(c.sock, method="GET")
    r.begin()
    body = r.read()
    hdr = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hdr, body


def hopbyhop(a):
    t = a.tag
    req = ("GET http://www.origin.test/h/%s/hop HTTP/1.1\r\n"
           "Host: www.origin.test\r\n"
           "Proxy-Connection: keep-alive\r\n"
           "Proxy-Authorization: Basic dXNlcjpwYXNz\r\n"
           "Connection: keep-alive, X-Hop-Only\r\n"
           "X-Hop-Only: secret\r\n"
           "Keep-Alive: timeout=5\r\n"
           "X-End-To-End: kept\r\n"
           "\r\n" % t).encode()
    try:
        st, hdr, body = raw(a, req)
        v = json.loads(body) if body.startswith(b"{") else {}
        oh = v.get("headers", {})
        check("hop-by-hop request: status", 200, st)
        for h in ("proxy-connection", "proxy-authorization", "x-hop-only", "keep-alive"):
            check("%s does not reach the origin" % h, "absent", oh.get(h, "absent"))
        check("end-to-end header reaches the origin", "kept", oh.get("x-end-to-end"))
        check("Via 1.1 td added to the request", "1.1 td",
              oh.get("via", "absent").split(",")[-1].strip())
        check("Via 1.1 td added to the response", "td",
              hdr.get("via", "absent"), "td" in hdr.get("via", ""))
    except (OSError, http.client.HTTPException, ValueError) as e:
        check("hop-by-hop request", 200, "exception %s" % e, False)
    # a Via the client sent is kept and td appended
    try:
        st, hdr, body = raw(a, ("GET http://www.origin.test/h/%s/via HTTP/1.1\r\n"
                                "Host: www.origin.test\r\nVia: 1.0 upstream-client\r\n\r\n"
                                % t).encode())
        oh = json.loads(body).get("headers", {})
        check("client Via kept, td appended", "1.0 upstream-client, 1.1 td",
              oh.get("via"), oh.get("via", "").replace(" ", "") == "1.0upstream-client,1.1td")
    except (OSError, http.client.HTTPException, ValueError) as e:
        check("client Via kept, td appended", 200, "exception %s" % e, False)


ANON = {"Via": "1.0 leak", "X-Forwarded-For": "192.0.2.7", "Forwarded": "for=192.0.2.7",
        "From": "user@example.org", "X-Real-IP": "192.0.2.7", "Client-IP": "192.0.2.7"}


def anon(a):
    t = a.tag
    s = session(a)
    try:
        r = s.get("http://www.origin.test/a/%s/anon" % t, headers=ANON, timeout=5)
        oh = origin_view(r).get("headers", {})
        check("anonymize: request answered", 200, r.status_code)
        for h in ANON:
            check("anonymize: %s not at the origin" % h, "absent", oh.get(h.lower(), "absent"))
        check("anonymize: no Via in the response", "absent", r.headers.get("Via", "absent"))
        check("anonymize: other headers pass", "yes",
              s.get("http://www.origin.test/a/%s/anon2" % t, headers={"X-Keep": "yes"},
                    timeout=5).json().get("headers", {}).get("x-keep"))
    except (requests.RequestException, ValueError) as e:
        check("anonymize request", 200, "exception %s" % e, False)


def collapse(a):
    n = a.n
    url = "http://www.origin.test/c/%s/collapse?cc=max-age=60&delay=800" % a.tag
    res = [None] * n
    bar = threading.Barrier(n)

    def one(i):
        try:
            s = session(a)
            bar.wait(timeout=10)
            r = s.get(url, timeout=15)
            res[i] = (r.status_code, r.text)
        except Exception as e:  # noqa: BLE001 - reported as a failed request
            res[i] = (0, "exception %s" % type(e).__name__)
    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    codes = sorted(set(r[0] for r in res))
    bodies = set(r[1] for r in res if r[0] == 200)
    check("%d concurrent misses of one URL: all 200" % n, "[200]", str(codes))
    check("%d concurrent misses: one body (one origin answer)" % n, 1, len(bodies))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=["basic", "hopbyhop", "anon", "collapse"])
    ap.add_argument("--proxy", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--tag", default="t")
    ap.add_argument("-n", type=int, default=100)
    a = ap.parse_args()
    globals()[a.scenario](a)
    print("\n".join(OUT))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
