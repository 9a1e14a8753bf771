#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Gateway metrics and access log, exact (tdagent in a private netns, echo backends on its
# loopback): a known mix of requests (routed by class, unrouted, 401 on an api_keys route, 429 on
# a rate-limited route, an upstream whose second backend refuses connections, keep-alive and a
# held connection), then every td_gw_* value it must have produced, the histogram invariants,
# and the whole metrics text parsed as Prometheus exposition (HELP for every TYPE, no duplicate
# series, families contiguous). The access log: one line per request in the documented combined
# layout with the fields the client saw (status, bytes = head + body, X-Request-Id = rid), the
# same as JSON lines after a tdctl reload to format: json, and SIGUSR1 reopening a moved log
# file. Usage: test_gw_metrics.sh BUILD
set -uo pipefail
source "$(dirname "$0")/lib.sh"
if ! t_require_bins; then t_done; fi
source "$T_REPO/selftests/gw/gw_lib.sh"
gw_up

PY=$TMP/gwm.py
# The checkers (python3 stdlib only). Output of the check commands: "ok|FAIL<TAB>desc<TAB>
# expected<TAB>got" lines for t_lines.
cat >"$PY" <<'EOF'
import datetime, json, math, re, sys

def rec(ok, desc, exp, got):
    got = str(got).replace("\t", " ").replace("\n", " ")[:400]
    print("%s\t%s\t%s\t%s" % ("ok" if ok else "FAIL", desc, exp, got))

# ---- Prometheus text exposition (format 0.0.4) -------------------------------------------------
NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LNAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
VAL_RE = re.compile(r"^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?Inf|NaN)$")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")

def parse_labels(s, i):
    """s[i] is '{': returns ([(name, value)], index after '}'); ValueError when malformed"""
    labels = []
    i += 1
    while True:
        if s[i:i + 1] == "}":
            return labels, i + 1
        m = LNAME_RE.match(s, i)
        if not m:
            raise ValueError("bad label name at column %d" % i)
        k, i = m.group(0), m.end()
        if s[i:i + 2] != '="':
            raise ValueError('no =" after label %s' % k)
        i += 2
        v = []
        while True:
            if i >= len(s):
                raise ValueError("unterminated value of label %s" % k)
            c = s[i]
            if c == "\\":
                n = s[i + 1:i + 2]
                if n == "n":
                    v.append("\n")
                elif n in ("\\", '"'):
                    v.append(n)
                else:
                    raise ValueError("bad escape \\%s in label %s" % (n, k))
                i += 2
            elif c == '"':
                i += 1
                break
            else:
                v.append(c)
                i += 1
        labels.append((k, "".join(v)))
        if s[i:i + 1] == ",":
            i += 1
        elif s[i:i + 1] != "}":
            raise ValueError("expected , or } at column %d" % i)

def family(name, types):
    if types.get(name) not in (None, "histogram", "summary"):
        return name
    for suf, kinds in (("_bucket", ("histogram",)), ("_sum", ("histogram", "summary")),
                       ("_count", ("histogram", "summary"))):
        if name.endswith(suf) and types.get(name[:-len(suf)]) in kinds:
            return name[:-len(suf)]
    return name

def key(name, labels):
    if not labels:
        return name
    esc = lambda v: v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return name + "{" + ",".join('%s="%s"' % (k, esc(v)) for k, v in sorted(labels)) + "}"

def cmd_prom(path, out):
    text = open(path, encoding="utf-8").read()
    err = {"syntax": [], "help": [], "dup": [], "group": [], "hist": [], "counter": []}
    helps, types, series, fam_of_sample = {}, {}, {}, {}
    closed, cur = set(), None
    nsamples = 0
    if not text.endswith("\n"):
        err["syntax"].append("no final newline")

    def enter(fam, ln):
        nonlocal cur
        if fam == cur:
            return
        if fam in closed:
            err["group"].append("line %d: family %s split (lines of a family must be together)" % (ln, fam))
        if cur is not None:
            closed.add(cur)
        cur = fam

    for ln, line in enumerate(text.split("\n")[:-1], 1):
        if line == "":
            continue
        if line.startswith("#"):
            m = re.match(r"^# (HELP|TYPE) (\S+)(?: (.*))?$", line)
            if not m:
                if re.match(r"^#\s*(HELP|TYPE)\b", line):
                    err["syntax"].append("line %d: malformed %r" % (ln, line[:60]))
                continue
            kind, name, rest = m.group(1), m.group(2), m.group(3) or ""
            if not NAME_RE.fullmatch(name):
                err["syntax"].append("line %d: bad metric name %r" % (ln, name))
            enter(name, ln)
            if kind == "HELP":
                if name in helps:
                    err["dup"].append("line %d: second HELP for %s" % (ln, name))
                if re.search(r"\\[^\\n]", rest):
                    err["syntax"].append("line %d: bad escape in HELP" % ln)
                helps[name] = rest
            else:
                if name in types:
                    err["dup"].append("line %d: second TYPE for %s" % (ln, name))
                if rest not in TYPES:
                    err["syntax"].append("line %d: unknown type %r" % (ln, rest))
                if name in fam_of_sample.values():
                    err["syntax"].append("line %d: TYPE %s after its samples" % (ln, name))
                types[name] = rest
            continue
        m = NAME_RE.match(line)
        if not m:
            err["syntax"].append("line %d: no metric name: %r" % (ln, line[:60]))
            continue
        name, i, labels = m.group(0), m.end(), []
        try:
            if line[i:i + 1] == "{":
                labels, i = parse_labels(line, i)
            rest = line[i:]
            if not rest.startswith(" "):
                raise ValueError("no blank before the value")
            parts = rest.split()
            if len(parts) not in (1, 2) or not VAL_RE.match(parts[0]):
                raise ValueError("bad value/timestamp %r" % rest.strip())
            if len(parts) == 2 and not re.fullmatch(r"-?\d+", parts[1]):
                raise ValueError("bad timestamp %r" % parts[1])
        except ValueError as e:
            err["syntax"].append("line %d: %s: %r" % (ln, e, line[:80]))
            continue
        if len({k for k, _ in labels}) != len(labels):
            err["syntax"].append("line %d: a label twice" % ln)
        nsamples += 1
        fam = family(name, types)
        fam_of_sample[name] = fam
        enter(fam, ln)
        if types.get(fam) in ("histogram", "summary") and fam == name:
            err["syntax"].append("line %d: %s sample without suffix" % (ln, types[fam]))
        k = key(name, labels)
        if k in series:
            err["dup"].append("line %d: duplicate series %s" % (ln, k))
        series[k] = (name, dict(labels), parts[0])
        if types.get(fam) == "counter":
            v = float(parts[0])
            if math.isnan(v) or v < 0:
                err["counter"].append("line %d: counter %s = %s" % (ln, k, parts[0]))

    # histograms: per label set, buckets cumulative by le, +Inf present and == _count, _sum there
    nh = 0
    for fam, t in types.items():
        if t != "histogram":
            continue
        groups = {}
        for k, (name, labels, v) in series.items():
            if family(name, types) != fam:
                continue
            rest = tuple(sorted((a, b) for a, b in labels.items() if a != "le"))
            g = groups.setdefault(rest, {"b": [], "sum": None, "count": None})
            if name == fam + "_bucket":
                if "le" not in labels or not VAL_RE.match(labels["le"]):
                    err["hist"].append("%s: bucket without a numeric le" % k)
                    continue
                g["b"].append((float(labels["le"]), float(v), labels["le"]))
            elif name == fam + "_sum":
                g["sum"] = float(v)
            elif name == fam + "_count":
                g["count"] = float(v)
        for rest, g in groups.items():
            nh += 1
            where = "%s%s" % (fam, dict(rest))
            b = sorted(g["b"])
            if not b or b[-1][0] != math.inf:
                err["hist"].append("%s: no +Inf bucket" % where)
                continue
            if any(b[j][1] > b[j + 1][1] for j in range(len(b) - 1)):
                err["hist"].append("%s: buckets not cumulative: %s" % (where, [x[1] for x in b]))
            if len({x[0] for x in b}) != len(b):
                err["hist"].append("%s: an le twice" % where)
            if g["count"] is None or g["sum"] is None:
                err["hist"].append("%s: _sum or _count missing" % where)
            elif b[-1][1] != g["count"]:
                err["hist"].append("%s: +Inf %g != _count %g" % (where, b[-1][1], g["count"]))
            elif g["sum"] < 0 or (g["count"] == 0 and g["sum"] != 0):
                err["hist"].append("%s: _sum %g with _count %g" % (where, g["sum"], g["count"]))

    def r(desc, cat, okmsg):
        e = err[cat]
        rec(not e, desc, "no error", okmsg if not e else "%d: %s" % (len(e), "; ".join(e[:3])))

    r("metrics text parses as Prometheus exposition", "syntax",
      "%d samples, %d families" % (nsamples, len(types)))
    nohelp = sorted(set(types) - set(helps))
    rec(not nohelp, "every # TYPE family has a # HELP", "none missing",
        "%d TYPE, %d HELP" % (len(types), len(helps)) if not nohelp else "missing: %s" % nohelp[:5])
    r("no duplicate series, HELP or TYPE", "dup", "%d distinct series" % len(series))
    r("lines of each family together", "group", "%d families" % len(closed | {cur}))
    r("histograms: cumulative buckets, +Inf == _count, _sum", "hist", "%d histogram series" % nh)
    r("counters are finite and >= 0", "counter", "all")
    with open(out, "w") as f:
        for k, (name, labels, v) in series.items():
            f.write("%s\t%s\n" % (k, v))
        for name, t in types.items():
            f.write("#TYPE %s\t%s\n" % (name, t))

def cmd_mval(path, name, *kv):
    """the value of one series of a cmd_prom output ("absent" when there is none)"""
    k = key(name, [tuple(x.split("=", 1)) for x in kv])
    for line in open(path):
        a, _, v = line.rstrip("\n").partition("\t")
        if a == k:
            print(v)
            return
    print("absent")

def cmd_types(path):
    print(" ".join(sorted(l[6:].split("\t")[0] for l in open(path)
                          if l.startswith("#TYPE td_gw_"))))

# ---- access log ----------------------------------------------------------------------------
CLIENT_FIELDS = ("route", "identity", "upstream", "status", "nconn", "hsize", "dsize", "method",
                 "url", "rid", "ua", "referer")
COMBINED = re.compile(
    r'^(?P<remote_addr>\S+) - (?P<identity>\S+) \[(?P<time>\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] '
    r'"(?P<method>[A-Z]+) (?P<target>[^ "]+) (?P<protocol>HTTP/1\.[01])" (?P<status>\d{3}) (?P<bytes>\d+) '
    r'"(?P<referer>[^"]*)" "(?P<user_agent>[^"]*)" rt=(?P<rt>\d+\.\d{3}) upstream=(?P<upstream>\S+) '
    r'route=(?P<route>\S+) rid=(?P<rid>\S+)$')
JSON_KEYS = {"remote_addr", "identity", "time", "method", "target", "protocol", "status", "bytes",
             "referer", "user_agent", "rt", "upstream", "route", "rid"}

def esc_combined(s):
    return "".join("\\x%02x" % c if c < 0x20 or c >= 0x7f or c in (0x22, 0x5c) else chr(c)
                   for c in s.encode())

def load_client(path):
    out = []
    for line in open(path, encoding="utf-8"):
        f = line.rstrip("\n").split("\t")
        if len(f) != len(CLIENT_FIELDS):
            raise SystemExit("bad client record %r" % line)
        out.append(dict(zip(CLIENT_FIELDS, f)))
    return out

def cmd_log(fmt, logpath, clientpath, skip, t0, t1, series=None):
    lines = open(logpath, encoding="utf-8", errors="replace").read().splitlines()[int(skip):]
    cl = load_client(clientpath)
    t0, t1 = float(t0), float(t1)
    tag = fmt + ":"
    rec(len(lines) == len(cl), tag + " one log line per request", len(cl), len(lines))
    parsed, bad = [], []
    for l in lines:
        if fmt == "combined":
            m = COMBINED.match(l)
            if not m:
                bad.append(l)
                continue
            d = m.groupdict()
            ts = datetime.datetime.strptime(d["time"], "%d/%b/%Y:%H:%M:%S %z")
        else:
            try:
                d = json.loads(l)
                assert isinstance(d, dict) and set(d) == JSON_KEYS, "keys %s" % sorted(d)
                for k in ("status", "bytes"):
                    assert type(d[k]) is int, "%s not an integer" % k
                assert type(d["rt"]) in (int, float), "rt not a number"
                for k in JSON_KEYS - {"status", "bytes", "rt"}:
                    assert d[k] is None or isinstance(d[k], str), "%s not a string/null" % k
                assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", d["time"]), \
                    "time %r" % d["time"]
                ts = datetime.datetime.fromisoformat(d["time"])
            except (ValueError, AssertionError) as e:
                bad.append("%s: %s" % (e, l))
                continue
            # compare as the combined layout writes absent values
            d = {k: ("-" if v is None else str(v)) for k, v in d.items()}
            d["rt"] = "%.3f" % float(d["rt"])
        d["ts"] = ts.timestamp()
        parsed.append(d)
    what = "the documented combined layout" if fmt == "combined" else \
        "a JSON object with exactly the 14 documented keys and types"
    rec(not bad, tag + " every line is " + what, "%d of %d" % (len(lines), len(lines)),
        "%d of %d%s" % (len(lines) - len(bad), len(lines), ("; first bad: " + bad[0]) if bad else ""))
    by_rid = {}
    for d in parsed:
        by_rid.setdefault(d["rid"], []).append(d)
    crids = sorted(c["rid"] for c in cl)
    rec(sorted(by_rid) == crids and all(len(v) == 1 for v in by_rid.values()),
        tag + " rid of every line = the X-Request-Id its client received, each once",
        "%d ids" % len(crids), "%d ids, %d matching" % (len(by_rid), len(set(by_rid) & set(crids))))
    checks = {
        "client address 127.0.0.1": lambda c, d: (d["remote_addr"], "127.0.0.1"),
        "status as the client saw it": lambda c, d: (d["status"], c["status"]),
        "bytes = response head + body as curl counted them":
            lambda c, d: (d["bytes"], str(int(c["hsize"]) + int(c["dsize"]))),
        "method, target, HTTP/1.1": lambda c, d: (
            (d["method"], d["target"], d["protocol"]),
            (c["method"], re.sub(r"^http://[^/]+", "", c["url"]), "HTTP/1.1")),
        "identity (api key name on the api_keys route, - / null elsewhere)":
            lambda c, d: (d["identity"], c["identity"]),
        "referer and user agent" + (" (\\x22 \\x5c escapes)" if fmt == "combined" else ""):
            lambda c, d: ((d["referer"], d["user_agent"]),
                          tuple(x if x == "-" else esc_combined(x) if fmt == "combined"
                                else x.encode().decode("latin-1")   # \u00HH per byte
                                for x in (c["referer"], c["ua"]))),
        "upstream (backend that answered; - / null for local answers)":
            lambda c, d: (d["upstream"], c["upstream"]),
        "route (- / null when unrouted)": lambda c, d: (d["route"], c["route"]),
        "time within the test's window": lambda c, d: (t0 - 2 <= d["ts"] <= t1 + 2, True),
        "rt in 0..5 s (>= 0.300 for sleep_ms=300)": lambda c, d: (
            0 <= float(d["rt"]) < 5 and ("sleep_ms=300" not in c["url"] or float(d["rt"]) >= 0.3), True),
    }
    # over the requests whose line was found (a missing line fails the rid check above)
    pairs = [(c, by_rid[c["rid"]][0]) for c in cl if c["rid"] in by_rid]
    for desc, f in checks.items():
        n, first = 0, ""
        for c, d in pairs:
            got, exp = f(c, d)
            if got == exp:
                n += 1
            elif not first:
                first = "; first: %s expected %r got %r" % (c["url"], exp, got)
        rec(pairs and n == len(pairs), tag + " " + desc, "all %d lines" % len(pairs),
            "%d%s" % (n, first))
    if series:
        # rt is the same duration as the histogram's, cut to ms: sum(rt) <= _sum < sum(rt) + n ms
        vals = dict(l.rstrip("\n").split("\t", 1) for l in open(series) if not l.startswith("#"))
        s = float(vals.get('td_gw_request_duration_seconds_sum{route="pub"}', "nan"))
        rts = [float(d["rt"]) for d in parsed if d["route"] == "pub"]
        lo, hi = sum(rts), sum(rts) + 0.001 * len(rts)
        rec(lo - 1e-6 <= s <= hi + 1e-6, tag + " histogram _sum of route pub agrees with the log's rt",
            "%.3f..%.3f" % (lo, hi), "%.6f" % s)

def cmd_rawrec(path, url):
    """client record of a client.py raw result (one response)"""
    d = json.load(open(path))["data"]
    head, _, body = d.partition("\r\n\r\n")
    h = {}
    for l in head.split("\r\n")[1:]:
        k, _, v = l.partition(":")
        h[k.strip().lower()] = v.strip()
    print("\t".join(["pub", "-", "127.0.0.1:9001", head[9:12], "1", str(len(head) + 4),
                     str(len(body)), "GET", url, h.get("x-request-id", "none"), "-", "-"]))

cmds = {"prom": cmd_prom, "mval": cmd_mval, "types": cmd_types, "log": cmd_log,
        "rawrec": cmd_rawrec}
cmds[sys.argv[1]](*sys.argv[2:])
EOF

KEY=metrics-key-$T_ID-0123456789abcdef
gw_backend b1 9001
gw_backend b2 9002
# 127.0.0.1:9009 stays closed: connections to it are refused
# cfg FORMAT: the test's config with the access log in FORMAT
cfg() {
	gw_config "gateway:
  listen: [ \"127.0.0.1:$GW\" ]
  workers: 2
  access_log: { path: $TMP/access.log, format: $1 }
  upstreams:
    alpha: { backends: [ \"127.0.0.1:9001\" ] }
    beta:
      backends: [ \"127.0.0.1:9002\", \"127.0.0.1:9009\" ]
      retries: 1
      outlier: { consecutive_failures: 2, ejection: 60s }
  routes:
    - { name: pub, match: { path_prefix: /pub }, upstream: alpha }
    - name: keyed
      match: { path_prefix: /keyed }
      upstream: beta
      auth: { api_keys: { keys: [ { name: ci-bot, sha256: $(printf %s "$KEY" | sha256sum | cut -d' ' -f1) } ] } }
    - name: limited
      match: { path_prefix: /limited }
      upstream: alpha
      rate_limit: { rate: 1, burst: 3, period: 60s }
    - { name: svc, match: { path_prefix: /svc }, upstream: beta }"
}
cfg combined
gw_start
U=http://127.0.0.1:$GW
UA=tdtest-metrics/1.0

# creq OUT ROUTE IDENTITY UPSTREAM UA REFERER CURL_ARGS... URL...: one curl process (one
# connection, keep-alive between its URLs); one client record per URL appended to OUT (see
# CLIENT_FIELDS in the checker); prints the status codes
creq() {
	local out=$1 route=$2 ident=$3 up=$4 ua=$5 ref=$6 a line codes=""
	shift 6
	local args=(-s -m 5 -A "$ua")
	[[ $ref != - ]] && args+=(-e "$ref")
	for a in "$@"; do
		[[ $a == http://* ]] && args+=(-o /dev/null)
		args+=("$a")
	done
	while IFS= read -r line; do
		printf '%s\t%s\t%s\n' "$line" "$ua" "$ref" >>"$out"
		codes+=" $(cut -f4 <<<"$line")"
	done < <(in_ns curl "${args[@]}" -w "$route\t$ident\t$up\t%{http_code}\t%{num_connects}\t%{size_header}\t%{size_download}\t%{method}\t%{url_effective}\t%header{x-request-id}\n")
	echo "${codes# }"
}
# words: stdin's lines joined with single spaces
words() { tr '\n' ' ' | sed 's/ $//'; }
# m NAME [LABEL=VALUE...]: value of one series of the last scrape ($TMP/m.series)
m() { python3 "$PY" mval "$TMP/m.series" "$@"; }
# scrape_check TAG: scrape, parse (checks recorded), series to $TMP/m.series
scrape_check() {
	sleep 0.2   # ops->done runs just after the last byte is written
	scrape >"$TMP/m-$1.prom"
	t_lines < <(python3 "$PY" prom "$TMP/m-$1.prom" "$TMP/m.series" | sed "s/\t/\t[$1] /")
}
C1=$TMP/c1.tsv
T0=$(date +%s.%N)

t_section "requests of every kind (combined access log)"
t_eq "pub: 3 requests on one keep-alive connection" "200 200 200" \
	"$(creq "$C1" pub - 127.0.0.1:9001 "$UA" 'http://ref.example/page?a=1' "$U/pub/ka1" "$U/pub/ka2?x=1" "$U/pub/ka3")"
t_eq "curl reused its connection (num_connects 1 0 0)" "1 0 0" "$(tail -n 3 "$C1" | cut -f5 | words)"
t_eq "pub with its own X-Request-Id and a quote and backslash in User-Agent" 200 \
	"$(creq "$C1" pub - 127.0.0.1:9001 'ua "q" \ end' - -H 'X-Request-Id: client-rid.metrics_1' "$U/pub/s1")"
t_eq "own X-Request-Id echoed" client-rid.metrics_1 "$(tail -n 1 "$C1" | cut -f10)"
t_eq "pub: backend answers 302, 404, 500" "302 404 500" "$(for s in 302 404 500; do
	creq "$C1" pub - 127.0.0.1:9001 "$UA" - "$U/pub/s?status=$s"; done | words)"
t_eq "pub: one slow request (300 ms)" 200 "$(creq "$C1" pub - 127.0.0.1:9001 "$UA" - "$U/pub/slow?sleep_ms=300")"
t_eq "unrouted: /nowhere, /pub2/x (not a segment prefix), DELETE /x" "404 404 404" "$({
	creq "$C1" - - - "$UA" - "$U/nowhere"
	creq "$C1" - - - "$UA" - "$U/pub2/x"
	creq "$C1" - - - "$UA" - -X DELETE "$U/x"; } | words)"
t_eq "api_keys route: no key twice, a wrong key once" "401 401 401" "$({
	creq "$C1" keyed - - "$UA" - "$U/keyed/a"
	creq "$C1" keyed - - "$UA" - "$U/keyed/b"
	creq "$C1" keyed - - "$UA" - -H 'X-API-Key: wrong-key-0123456789' "$U/keyed/c"; } | words)"
t_eq "api_keys route: 4 with the key (keep-alive; upstream beta)" "200 200 200 200" \
	"$(creq "$C1" keyed ci-bot 127.0.0.1:9002 "$UA" - -H "X-API-Key: $KEY" "$U/keyed/1" "$U/keyed/2" "$U/keyed/3" "$U/keyed/4")"
lim=""
for i in 1 2 3 4 5; do lim+=" $(creq "$TMP/lim.tsv" limited - 127.0.0.1:9001 "$UA" - "$U/limited/$i")"; done
t_eq "rate limited route (burst 3 per 60 s): 5 requests" "200 200 200 429 429" "${lim# }"
N429=$(cut -f4 "$TMP/lim.tsv" | grep -c '^429$')
# a 429 is a local answer: no upstream in its log line
awk -F'\t' -v OFS='\t' '$4 == 429 { $3 = "-" } { print }' "$TMP/lim.tsv" >>"$C1"
svc=""
for i in $(seq 1 8); do svc+=" $(creq "$C1" svc - 127.0.0.1:9002 "$UA" - "$U/svc/$i")"; done
t_eq "upstream beta (second backend refuses): 8 requests all 200 through the retry" \
	"200 200 200 200 200 200 200 200" "${svc# }"

t_section "a held keep-alive connection"
gclient raw --port "$GW" --data "GET /pub/hold HTTP/1.1\r\nHost: 127.0.0.1:$GW\r\n\r\n" --wait 2 \
	>"$TMP/hold.json" 2>&1 &
GW_PIDS+=($!)
hold_pid=$!
sleep 1
scrape >"$TMP/m-hold.prom"
t_ge "td_gw_connections_open while a client holds its connection" 1 \
	"$(awk '$1 == "td_gw_connections_open" { print $2 }' "$TMP/m-hold.prom")"
wait "$hold_pid"
python3 "$PY" rawrec "$TMP/hold.json" "$U/pub/hold" >>"$C1"
t_eq "held connection: 200 with an X-Request-Id" "200 32" \
	"$(tail -n 1 "$C1" | cut -f4) $(tail -n 1 "$C1" | cut -f10 | tr -d '\n' | wc -c)"
T1=$(date +%s.%N)
open=x
for i in $(seq 1 30); do
	open=$(scrape | awk '$1 == "td_gw_connections_open" { print $2 }')
	[[ $open == 0 ]] && break
	sleep 0.1
done
t_eq "td_gw_connections_open after every client closed" 0 "$open"

t_section "metrics: exact values"
scrape_check 1
t_eq "every documented td_gw_ family is exposed" \
	"td_gw_auth_failures_total td_gw_backend_ejected td_gw_backend_ejections_total td_gw_backend_in_flight td_gw_backend_up td_gw_connections_accepted_total td_gw_connections_open td_gw_connections_rejected_total td_gw_generation td_gw_header_timeouts_total td_gw_parse_errors_total td_gw_rate_limited_total td_gw_request_duration_seconds td_gw_requests_total td_gw_tls_handshake_errors_total td_gw_unrouted_total td_gw_upstream_connections_open td_gw_upstream_errors_total td_gw_upstream_requests_total td_gw_upstream_retries_total td_gw_upstream_reused_total" \
	"$(python3 "$PY" types "$TMP/m.series")"
t_eq "td_gw_generation" 1 "$(m td_gw_generation)"
# route class -> expected
declare -A REQ=(
	[pub 1xx]=0 [pub 2xx]=5 [pub 3xx]=1 [pub 4xx]=1 [pub 5xx]=1
	[keyed 1xx]=0 [keyed 2xx]=4 [keyed 3xx]=0 [keyed 4xx]=3 [keyed 5xx]=0
	[limited 1xx]=0 [limited 2xx]=3 [limited 3xx]=0 [limited 4xx]=2 [limited 5xx]=0
	[svc 1xx]=0 [svc 2xx]=8 [svc 3xx]=0 [svc 4xx]=0 [svc 5xx]=0
)
REQ[pub 2xx]=$((REQ[pub 2xx] + 1))     # the held connection's request
for r in pub keyed limited svc; do
	exp="" got="" n=0
	for c in 1xx 2xx 3xx 4xx 5xx; do
		exp+=" $c=${REQ[$r $c]}"
		got+=" $c=$(m td_gw_requests_total route=$r class=$c)"
		n=$((n + REQ[$r $c]))
	done
	t_eq "td_gw_requests_total{route=$r} by class" "${exp# }" "${got# }"
	t_eq "td_gw_request_duration_seconds_count{route=$r} = its requests" "$n" \
		"$(m td_gw_request_duration_seconds_count route=$r)"
	t_eq "td_gw_request_duration_seconds_bucket{route=$r,le=+Inf} = _count" "$n" \
		"$(m td_gw_request_duration_seconds_bucket route=$r le=+Inf)"
done
b=""
for le in 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 +Inf; do
	b+=" $(m td_gw_request_duration_seconds_bucket route=pub le=$le)"
done
t_true "pub buckets: all 14 documented le, monotonic, the 300 ms request above le=0.25" \
	"non-decreasing, le=0.25 <= 8, le=10 = 9" "${b# }" python3 -c '
import sys
v = [int(x) for x in sys.argv[1].split()]
sys.exit(not (len(v) == 14 and v == sorted(v) and v[7] <= 8 and v[12] == 9))' "${b# }"
psum=$(m td_gw_request_duration_seconds_sum route=pub)
t_true "pub _sum plausible: >= 0.3 (the slow request), < 0.3 + 9 x 0.25 s" "0.3..2.55" "$psum" \
	python3 -c 'import sys; sys.exit(not 0.3 <= float(sys.argv[1]) < 2.55)' "$psum"
ksum=$(m td_gw_request_duration_seconds_sum route=keyed)
t_true "keyed _sum plausible: > 0, < 7 x 0.25 s" "0..1.75" "$ksum" \
	python3 -c 'import sys; sys.exit(not 0 < float(sys.argv[1]) < 1.75)' "$ksum"
t_eq "td_gw_unrouted_total" 3 "$(m td_gw_unrouted_total)"
t_eq "td_gw_auth_failures_total by route (pub keyed limited svc)" "0 3 0 0" \
	"$(for r in pub keyed limited svc; do m td_gw_auth_failures_total route=$r; done | words)"
t_eq "td_gw_rate_limited_total{route=limited} = the 429s the client saw" "$N429" \
	"$(m td_gw_rate_limited_total route=limited)"
t_eq "td_gw_rate_limited_total of the other routes" "0 0 0" \
	"$(for r in pub keyed svc; do m td_gw_rate_limited_total route=$r; done | words)"
t_eq "td_gw_upstream_requests_total{upstream=alpha} 1xx..5xx" "0 9 1 1 1" \
	"$(for c in 1xx 2xx 3xx 4xx 5xx; do m td_gw_upstream_requests_total upstream=alpha class=$c; done | words)"
t_eq "td_gw_upstream_requests_total{upstream=beta} 1xx..5xx" "0 12 0 0 0" \
	"$(for c in 1xx 2xx 3xx 4xx 5xx; do m td_gw_upstream_requests_total upstream=beta class=$c; done | words)"
t_eq "backends received: b1 (alpha) 12, b2 (beta) 12" "12 12" "$(be_count b1) $(be_count b2)"
refused=$(m td_gw_upstream_errors_total upstream=beta kind=refused)
t_ge "td_gw_upstream_errors_total{beta,refused} > 0" 1 "$refused"
t_eq "refused = consecutive_failures (2): the dead backend ejected after exactly 2" 2 "$refused"
t_eq "td_gw_upstream_retries_total{beta} = refused attempts (each retried once on 9002)" "$refused" \
	"$(m td_gw_upstream_retries_total upstream=beta)"
t_eq "beta: no other error kind" "0 0 0 0 0 0" "$(for k in connect_timeout timeout reset protocol status other; do
	m td_gw_upstream_errors_total upstream=beta kind=$k; done | words)"
t_eq "alpha: no error of any kind, no retries (500 is not an error)" "0 0 0 0 0 0 0 0" "$({
	for k in refused connect_timeout timeout reset protocol status other; do
		m td_gw_upstream_errors_total upstream=alpha kind=$k
	done
	m td_gw_upstream_retries_total upstream=alpha; } | words)"
be() { m "$1" upstream=beta backend="$2"; }
t_eq "dead 127.0.0.1:9009: up 0, ejected 1, ejections 1, in flight 0" "0 1 1 0" \
	"$(be td_gw_backend_up 127.0.0.1:9009) $(be td_gw_backend_ejected 127.0.0.1:9009) $(be td_gw_backend_ejections_total 127.0.0.1:9009) $(be td_gw_backend_in_flight 127.0.0.1:9009)"
t_eq "live 127.0.0.1:9002: up 1, ejected 0, ejections 0, in flight 0" "1 0 0 0" \
	"$(be td_gw_backend_up 127.0.0.1:9002) $(be td_gw_backend_ejected 127.0.0.1:9002) $(be td_gw_backend_ejections_total 127.0.0.1:9002) $(be td_gw_backend_in_flight 127.0.0.1:9002)"
t_eq "alpha 127.0.0.1:9001: up 1, ejected 0" "1 0" \
	"$(m td_gw_backend_up upstream=alpha backend=127.0.0.1:9001) $(m td_gw_backend_ejected upstream=alpha backend=127.0.0.1:9001)"
t_eq "agent log: one ejection warning for 127.0.0.1:9009" 1 "$(grep -c 'backend 127.0.0.1:9009 ejected' "$LOG")"
nconn=$(awk -F'\t' '{ s += $5 } END { print s + 0 }' "$C1")
t_eq "td_gw_connections_accepted_total = connections the clients opened" "$nconn" \
	"$(m td_gw_connections_accepted_total)"
t_eq "td_gw_connections_open (nothing connected)" 0 "$(m td_gw_connections_open)"
t_ge "td_gw_upstream_reused_total > 0 after keep-alive requests" 1 "$(m td_gw_upstream_reused_total)"
t_ge "td_gw_upstream_connections_open (pooled)" 1 "$(m td_gw_upstream_connections_open)"
t_eq "rejected, parse errors, header timeouts, TLS errors" "0 0 0 0" \
	"$(m td_gw_connections_rejected_total) $(m td_gw_parse_errors_total) $(m td_gw_header_timeouts_total) $(m td_gw_tls_handshake_errors_total)"

t_section "access log: combined"
t_lines < <(python3 "$PY" log combined "$TMP/access.log" "$C1" 0 "$T0" "$T1" "$TMP/m.series")
N1=$(wc -l <"$TMP/access.log")

t_section "access log: format json after tdctl reload"
cfg json
out=$(gw_reload)
rc=$?
((rc == 0)) && out=""
t_eq "tdctl reload to format: json" "rc 0" "rc $rc${out:+ ($(head -c 160 <<<"$out" | tr '\n' ' '))}"
C2=$TMP/c2.tsv
T0=$(date +%s.%N)
t_eq "pub (quote, backslash, UTF-8 in User-Agent), keyed with and without key, unrouted" \
	"200 200 401 404" "$({
	creq "$C2" pub - 127.0.0.1:9001 'json "ua" \ é' 'http://ref.example/j' "$U/pub/j?q=%22x%22"
	creq "$C2" keyed ci-bot 127.0.0.1:9002 "$UA" - -H "X-API-Key: $KEY" "$U/keyed/j"
	creq "$C2" keyed - - "$UA" - "$U/keyed/j"
	creq "$C2" - - - "$UA" - "$U/nothing/j"; } | words)"
T1=$(date +%s.%N)
t_lines < <(python3 "$PY" log json "$TMP/access.log" "$C2" "$N1" "$T0" "$T1")
scrape_check 2
t_eq "td_gw_generation after the reload" 2 "$(m td_gw_generation)"
t_eq "counters kept over the reload: pub 2xx, keyed 2xx/4xx, unrouted, auth failures" "7 5 4 4 4" \
	"$(m td_gw_requests_total route=pub class=2xx) $(m td_gw_requests_total route=keyed class=2xx) $(m td_gw_requests_total route=keyed class=4xx) $(m td_gw_unrouted_total) $(m td_gw_auth_failures_total route=keyed)"
t_eq "backend state kept: 9009 still ejected, refused still 2" "1 2" \
	"$(m td_gw_backend_ejected upstream=beta backend=127.0.0.1:9009) $(m td_gw_upstream_errors_total upstream=beta kind=refused)"

t_section "access log: SIGUSR1 reopens a moved file"
N2=$(wc -l <"$TMP/access.log")
mv "$TMP/access.log" "$TMP/access.log.1"
nre=$(grep -c 'access log reopened' "$LOG")
kill -USR1 "$T_AGENT_PID"
for i in $(seq 1 30); do
	(($(grep -c 'access log reopened' "$LOG") > nre)) && break
	sleep 0.1
done
t_eq "agent logged the reopen" $((nre + 1)) "$(grep -c 'access log reopened' "$LOG")"
C3=$TMP/c3.tsv
T0=$(date +%s.%N)
t_eq "a request after SIGUSR1" 200 "$(creq "$C3" pub - 127.0.0.1:9001 "$UA" - "$U/pub/rotated")"
T1=$(date +%s.%N)
sleep 0.2
t_eq "a new access.log appeared" yes "$([[ -f $TMP/access.log ]] && echo yes || echo no)"
t_lines < <(python3 "$PY" log json "$TMP/access.log" "$C3" 0 "$T0" "$T1")
t_eq "the moved file got nothing more" "$N2" "$(wc -l <"$TMP/access.log.1")"
t_eq "agent still running" yes "$(kill -0 "$T_AGENT_PID" 2>/dev/null && echo yes || echo no)"
t_done
