#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Forward proxy cache end to end (RFC 9111 shared cache, RFC 9211 Cache-Status), the origin
# counting what reaches it: a second GET is a hit without an origin request (Age, same body);
# max-age=1 expires; revalidation with ETag and with Last-Modified is a 304 at the origin and a
# 200 (the stored body) to the client; Vary keeps variants apart; no-store, private, requests
# with Authorization, objects over max_object, POST and CONNECT (https) are not served from the
# cache; a POST invalidates the stored GET; request no-cache goes to the origin; 100 concurrent
# misses of one URL are one origin request; Cache-Status values; the Squid-format access log
# (TCP_MISS / TCP_HIT / TCP_REFRESH_*) and td_fp_ cache metrics.
# Topology and helpers: selftests/fp/fp_lib.sh. Usage: test_fp_cache.sh BUILD
set -uo pipefail
source "$(dirname "$0")/lib.sh"
if [[ ${TD_FP_PEER:-td} == td ]] && ! t_require_bins; then t_done; fi
source "$T_REPO/selftests/fp/fp_lib.sh"
fp_up

fp_config "forward_proxy:
  listen: [ \"127.0.0.1:$FPORT\" ]
  deny_private_destinations: false    # the origins are on 10.77.0.2 (RFC 1918)
  cache: { memory: 64MiB, max_object: 8MiB }
  access_log: { path: $ALOG, format: squid }"
fp_start

O=http://www.origin.test
# cs NAME: the Cache-Status of response NAME
cs() { hdr "$TMP/$1.h" Cache-Status; }
# is_hit / is_fwd VALUE: an RFC 9211 entry of td saying hit / forwarded (fwd=...)
is_hit() { grep -qiE '^td *;( *[a-z-]+(=[^;]*)? *;)* *hit( *;|$)' <<<"$1"; }
is_fwd() { grep -qiE '^td *;.*fwd=' <<<"$1" && ! grep -qiE '(^|;) *hit( *;|$)' <<<"$1"; }
# body_n NAME: the origin's request number in body NAME (the same number = the same answer)
body_n() { t_json "$TMP/$1.b" 'd["n"]'; }
# second_start: wait for the start of a wall-clock second (Date has second resolution: a short
# freshness lifetime is then not cut short by a second boundary between two requests)
second_start() { sleep "$(python3 -c 'import time; print("%.3f" % (1.02 - time.time() % 1))')"; }

t_section "hit after miss"
U="$O/k/hit?cc=max-age=60"
t_eq "first GET: 200" "200" "$(preq h1 "$U")"
t_true "first GET: Cache-Status td; fwd=miss" "td; fwd=miss" "$(cs h1)" grep -qiE '^td *;.*fwd=(uri-)?miss' <<<"$(cs h1)"
t_eq "second GET: 200" "200" "$(preq h2 "$U")"
t_true "second GET: Cache-Status td; hit" "td; hit" "$(cs h2)" is_hit "$(cs h2)"
t_eq "second GET: no origin request (origin count 1)" "1" "$(ocount ext /k/hit)"
t_eq "second GET: the stored body" "$(body_n h1)" "$(body_n h2)"
t_true "second GET: Age header present" "Age: N" "$(hdr "$TMP/h2.h" Age)" grep -qE '^[0-9]+$' <<<"$(hdr "$TMP/h2.h" Age)"
t_eq "third GET, another client connection: still a hit" "200 1" \
	"$(preq h3 "$U") $(ocount ext /k/hit)"
t_eq "HEAD of a stored GET: served without the origin" "200 1" \
	"$(in_ns curl -s -m 5 -x "$PX" -I -o /dev/null -w '%{http_code}' "$U") $(ocount ext /k/hit)"
t_eq "same URL, another query string: a miss" "200 2" \
	"$(preq h4 "$O/k/hit?cc=max-age=60&v=2") $(ocount ext /k/hit)"

t_section "expiry (max-age=1)"
U="$O/k/exp?cc=max-age=1"
second_start
preq e1 "$U" >/dev/null
preq e2 "$U" >/dev/null
t_eq "within a second: hit" "1" "$(ocount ext /k/exp)"
sleep 2.2
t_eq "after 2 s: 200" "200" "$(preq e3 "$U")"
t_eq "after 2 s: the origin asked again" "2" "$(ocount ext /k/exp)"
t_true "after 2 s: Cache-Status forwarded (fwd=stale|miss)" "td; fwd=stale" "$(cs e3)" is_fwd "$(cs e3)"

t_section "revalidation"
U="$O/k/etag?cc=max-age=2&etag=v1"
preq r1 "$U" >/dev/null
sleep 3.1
t_eq "stale with ETag: 200 to the client" "200" "$(preq r2 "$U")"
t_eq "stale with ETag: the origin got a conditional request" '"v1"' "$(olast ext /k/etag 'h.get("if-none-match")')"
t_eq "stale with ETag: the origin answered 304" "304" "$(olast ext /k/etag 'r["status"]')"
t_eq "stale with ETag: the client got the stored body" "$(body_n r1)" "$(body_n r2)"
t_true "stale with ETag: Cache-Status fwd=stale (fwd-status=304)" "td; fwd=stale; fwd-status=304" "$(cs r2)" \
	grep -qiE '^td *;.*fwd=stale' <<<"$(cs r2)"
t_true "after the 304 the refreshed entry is a hit" "td; hit" "$(preq r3 "$U" >/dev/null; cs r3)" is_hit "$(cs r3)"
t_eq "... still two origin requests" "2" "$(ocount ext /k/etag)"
U="$O/k/cond?cc=max-age=600&etag=c1&lm=1700000000"
preq c0 "$U" >/dev/null
t_eq "client If-None-Match matching the stored ETag: 304 from the cache" "304" \
	"$(preq c1 "$U" -H 'If-None-Match: "x", W/"c1"')"
t_true "... and it was a hit" "td; hit" "$(cs c1)" is_hit "$(cs c1)"
t_eq "... with the stored ETag and no body" "\"c1\" 0" "$(hdr "$TMP/c1.h" ETag) $(cat "$TMP/c1.b" 2>/dev/null | wc -c)"
t_eq "client If-None-Match not matching: 200 from the cache" "200" \
	"$(preq c2 "$U" -H 'If-None-Match: "other"')"
t_eq "client If-Modified-Since after Last-Modified: 304" "304" \
	"$(preq c3 "$U" -H 'If-Modified-Since: Wed, 15 Nov 2023 00:00:00 GMT')"
t_eq "client If-Modified-Since before Last-Modified: 200" "200" \
	"$(preq c4 "$U" -H 'If-Modified-Since: Mon, 13 Nov 2023 00:00:00 GMT')"
t_eq "conditional hits never reached the origin (1 request)" "1" "$(ocount ext /k/cond)"
U="$O/k/merge?cc=max-age=2&etag=m1&stamp=1"
preq m1 "$U" >/dev/null
sleep 3.1
preq m2 "$U" >/dev/null
t_eq "304 merge: the stored response first carried X-Origin-Count 1" "1" "$(hdr "$TMP/m1.h" X-Origin-Count)"
t_eq "304 merge: the 304's X-Origin-Count 2 replaces the stored field (RFC 9111 4.3.4)" "2" \
	"$(hdr "$TMP/m2.h" X-Origin-Count)"
t_eq "304 merge: a hit afterwards serves the merged head" "2" \
	"$(preq m3 "$U" >/dev/null; hdr "$TMP/m3.h" X-Origin-Count)"
U="$O/k/lm?cc=max-age=2&lm=1700000000"
preq l1 "$U" >/dev/null
sleep 3.1
t_eq "stale with Last-Modified: 200 to the client" "200" "$(preq l2 "$U")"
t_true "stale with Last-Modified: If-Modified-Since sent" "Tue, 14 Nov 2023 22:13:20 GMT" \
	"$(olast ext /k/lm 'h.get("if-modified-since")')" \
	test "$(olast ext /k/lm 'h.get("if-modified-since")')" = "Tue, 14 Nov 2023 22:13:20 GMT"
t_eq "stale with Last-Modified: 304 at the origin, the stored body to the client" "304 $(body_n l1)" \
	"$(olast ext /k/lm 'r["status"]') $(body_n l2)"
U="$O/k/nc?cc=max-age=60&etag=w"
preq n1 "$U" >/dev/null
preq n2 "$U" -H 'Cache-Control: no-cache' >/dev/null
t_eq "request Cache-Control: no-cache goes to the origin" "2" "$(ocount ext /k/nc)"
t_true "request no-cache: Cache-Status fwd=request" "td; fwd=request" "$(cs n2)" grep -qiE '^td *;.*fwd=request' <<<"$(cs n2)"

t_section "Vary"
U="$O/k/vary?cc=max-age=60&vary=Accept-Language"
preq v1 "$U" -H 'Accept-Language: en' >/dev/null
preq v2 "$U" -H 'Accept-Language: fr' >/dev/null
preq v3 "$U" -H 'Accept-Language: en' >/dev/null
preq v4 "$U" -H 'Accept-Language: fr' >/dev/null
t_eq "Vary: the variants' bodies (en fr en fr)" "en fr en fr" \
	"$(for n in v1 v2 v3 v4; do t_json "$TMP/$n.b" 'd["vary"]'; done | tr '\n' ' ' | sed 's/ $//')"
t_eq "Vary: two origin requests for four GETs" "2" "$(ocount ext /k/vary)"
t_true "Vary: the repeats are hits" "hit hit" "$(cs v3) / $(cs v4)" eval 'is_hit "$(cs v3)" && is_hit "$(cs v4)"'
preq v5 "$U" >/dev/null
t_eq "Vary: a request without the header is a third variant" "3" "$(ocount ext /k/vary)"

t_section "never stored"
# never_stored NAME QUERY [CURL ARGS...]: two identical GETs both reach the origin
never_stored() {
	local name=$1 q=$2
	shift 2
	preq s1 "$O/k/$name?$q" "$@" >/dev/null
	preq s2 "$O/k/$name?$q" "$@" >/dev/null
	t_eq "$name: two GETs, two origin requests" "2" "$(ocount ext "/k/$name")"
	t_true "$name: second GET not a hit" "not hit" "$(cs s2)" eval '! is_hit "$(cs s2)"'
}
never_stored nostore "cc=no-store"
never_stored private "cc=private,max-age=60"
never_stored auth "cc=max-age=60" -H 'Authorization: Basic eDp5'
never_stored big "cc=max-age=60&size=9000000"
t_eq "object over max_object (9 MB > 8 MiB) passed on whole" "9000000" "$(stat -c %s "$TMP/s2.b" 2>/dev/null)"
U="$O/k/post?cc=max-age=60"
in_ns curl -s -m 5 -x "$PX" -o /dev/null -d x=1 "$U"
in_ns curl -s -m 5 -x "$PX" -o /dev/null -d x=1 "$U"
t_eq "POST is never answered from the cache" "2" "$(ocount ext /k/post)"
U="$O/k/inv?cc=max-age=60"
preq i1 "$U" >/dev/null
preq i2 "$U" >/dev/null
in_ns curl -s -m 5 -x "$PX" -o /dev/null -X PUT -d x=1 "$U"
preq i3 "$U" >/dev/null
t_eq "a PUT to a stored URL invalidates it (GET hit, PUT, GET miss: 3 origin requests)" "3" "$(ocount ext /k/inv)"
for _ in 1 2; do
	in_ns curl -s -m 5 -x "$PX" --cacert "$CERTS/ca.pem" -o /dev/null "https://api.example/k/tls?cc=max-age=60"
done
t_eq "https through CONNECT is end to end (not cached)" "2" "$(ocount tls /k/tls)"

t_section "100 concurrent misses"
fpcheck collapse --tag C -n 100
t_eq "100 concurrent misses: one origin request" "1" "$(ocount ext /c/C/collapse)"

t_section "access log, metrics"
sleep 0.3
t_true "access log: the first GET is a TCP_MISS" "TCP_MISS/200 ... GET $O/k/hit?cc=max-age=60" \
	"$(grep -F " $O/k/hit?cc=max-age=60 " "$ALOG" 2>/dev/null | head -n 1)" \
	grep -qE "TCP_MISS/200 [0-9]+ GET http://www\.origin\.test/k/hit\?cc=max-age=60 - HIER_DIRECT/10\.77\.0\.2 " "$ALOG"
t_true "access log: the second GET is a TCP_HIT or TCP_MEM_HIT with HIER_NONE" "TCP_MEM_HIT/200 ... HIER_NONE/-" \
	"$(grep -F " $O/k/hit?cc=max-age=60 " "$ALOG" 2>/dev/null | sed -n 2p)" \
	grep -qE "TCP_(MEM_)?HIT/200 [0-9]+ GET http://www\.origin\.test/k/hit\?cc=max-age=60 - HIER_NONE/- " "$ALOG"
t_true "access log: the ETag revalidation is TCP_REFRESH_UNMODIFIED" "TCP_REFRESH_UNMODIFIED/200" \
	"$(grep -F " $O/k/etag?" "$ALOG" 2>/dev/null | sed -n 2p)" \
	grep -qE "TCP_REFRESH_UNMODIFIED/200 [0-9]+ GET http://www\.origin\.test/k/etag" "$ALOG"
RE='^[0-9]+\.[0-9]{3} +[0-9]+ [0-9a-f.:]+ [A-Z_]+/[0-9]{3} [0-9]+ [A-Z]+ [^ ]+ [^ ]+ [A-Z_]+/[^ ]+ [^ ]+$'
t_eq "every access-log line has the 10 squid fields" "0 bad" "$(grep -cvE "$RE" "$ALOG" 2>/dev/null) bad"
M=$(scrape)
t_ge "metrics: td_fp_ cache hit samples" 5 "$(msum "$M" '^td_fp_cache.*hit')"
t_ge "metrics: td_fp_ cache miss samples" 10 "$(msum "$M" '^td_fp_cache.*miss')"
t_ge "metrics: td_fp_ cache bytes in use" 1 "$(msum "$M" '^td_fp_cache_bytes')"
t_ge "metrics: td_fp_ collapsed misses (the 100 concurrent GETs)" 1 "$(msum "$M" '^td_fp_cache_collapsed')"
t_ge "metrics: td_fp_ revalidations answered 304" 2 "$(msum "$M" '^td_fp_cache_revalidated_unmodified')"

t_agent_stop TERM
t_eq "proxy exits cleanly on SIGTERM" "0" "$T_AGENT_RC"
t_done
