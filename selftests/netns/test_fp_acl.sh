#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Forward proxy access control end to end, one proxy config after the other:
#  1. allow_clients 127.0.0.1/32: 127.0.0.2 and a client across the veth refused; CONNECT to a
#     port not in connect_ports (22, 80) 403; deny_domains exact and "*.x" (subdomains only, not
#     the apex; case and a trailing dot do not bypass), also for CONNECT; DNS failure 502.
#  2. allow_domains (+ deny_domains { file: }): only the allowed names; deny wins over allow.
#  3. defaults (deny_private_destinations unset = true): loopback, 10/8 literal addresses and
#     names resolving to them refused, nothing reaches those origins.
#  4. auth basic + anonymize: 407 with Proxy-Authenticate without / with wrong credentials, 200
#     with; the stripped headers never reach the origin, no Via.
# Refusals are 403 with a short body naming the rule; the origins count what reached them.
# Topology and helpers: selftests/fp/fp_lib.sh. Usage: test_fp_acl.sh BUILD
set -uo pipefail
source "$(dirname "$0")/lib.sh"
if [[ ${TD_FP_PEER:-td} == td ]] && ! t_require_bins; then t_done; fi
source "$T_REPO/selftests/fp/fp_lib.sh"
fp_up

# refused DESC CODE BODYRE URL...: a request through the proxy is refused with CODE and a body
# matching BODYRE (case-insensitive)
refused() {
	local d=$1 want=$2 re=$3 c
	shift 3
	c=$(preq r "$@")
	t_eq "$d: $want" "$want" "$c"
	t_true "$d: body names the rule (/$re/)" "/$re/" "$(head -c 120 "$TMP/r.b" 2>/dev/null | tr '\n' ' ')" \
		grep -qiE "$re" "$TMP/r.b"
}

# connect_code ARGS...: the proxy's answer to curl's CONNECT (-p tunnels even http://)
connect_code() { in_ns curl -s -m 5 -p -x "$PX" -o /dev/null -w '%{http_connect}' "$@"; }

t_section "1. allow_clients, connect_ports, deny_domains, DNS failure"
fp_config "forward_proxy:
  listen: [ \"127.0.0.1:$FPORT\", \"10.77.0.1:$FPORT\" ]
  allow_clients: [ 127.0.0.1/32 ]
  deny_domains: [ blocked.example, \"*.ads.example\" ]
  deny_private_destinations: false    # the origins are on 10.77.0.2 (RFC 1918)
  access_log: { path: $ALOG, format: squid }"
fp_start "acl 1"
t_eq "allowed client 127.0.0.1: 200" "200" "$(pcode http://www.origin.test/a1/ok)"
n0=$(ocount ext /a1/)
c=$(pcode --interface 127.0.0.2 http://www.origin.test/a1/lo2)
t_true "client 127.0.0.2 (outside allow_clients) refused: 403 or connection closed" "403|000" "$c" \
	test "$c" = 403 -o "$c" = 000
c=$(in_ons curl -s -m 5 -x "http://10.77.0.1:$FPORT" -o /dev/null -w '%{http_code}' http://www.origin.test/a1/veth)
t_true "client 10.77.0.2 across the veth refused: 403 or connection closed" "403|000" "$c" \
	test "$c" = 403 -o "$c" = 000
t_eq "refused clients' requests never reached the origin" "$n0" "$(ocount ext /a1/)"

c=$(connect_code http://www.origin.test:22/a1/ssh)
t_eq "CONNECT to port 22 (not in connect_ports): 403" "403" "$c"
c=$(connect_code http://www.origin.test:80/a1/p80)
t_eq "CONNECT to port 80 (default connect_ports is 443 only): 403" "403" "$c"
t_eq "nothing reached the origin on :22 or through :80 tunnels" "0" \
	"$(grep -cE '"listen": "10.77.0.2:22"|/a1/(ssh|p80)' "$TMP/o-ext.log")"
c=$(in_ns curl -s -m 5 -x "$PX" --cacert "$CERTS/ca.pem" -o /dev/null -w '%{http_connect} %{http_code}' https://api.example/a1/tls)
t_eq "CONNECT to 443: 200 and the TLS request answered" "200 200" "$c"
t_eq "plain GET to a non-443 port (:22 is not a CONNECT): allowed" "200" "$(pcode http://www.origin.test:22/a1/get22)"

refused "deny_domains exact blocked.example" 403 'deny.domains|blocked' http://blocked.example/a1/b1
refused "deny_domains exact, upper case BLOCKED.Example" 403 'deny.domains|blocked' http://BLOCKED.Example/a1/b2
refused "deny_domains exact, trailing dot blocked.example." 403 'deny.domains|blocked' http://blocked.example./a1/b3
refused "deny_domains *.ads.example: x.ads.example" 403 'deny.domains|ads' http://x.ads.example/a1/b4
refused "deny_domains *.ads.example: y.x.ads.example" 403 'deny.domains|ads' http://y.x.ads.example/a1/b5
t_eq "deny_domains *.ads.example does not cover the apex ads.example: 200" "200" \
	"$(pcode http://ads.example/a1/apex)"
t_eq "CONNECT blocked.example:443: 403" "403" "$(connect_code https://blocked.example/a1/b6)"
t_eq "CONNECT x.ads.example:443: 403" "403" "$(connect_code https://x.ads.example/a1/b7)"
t_eq "denied names never reached the origin" "0" "$(grep -cE '/a1/b[0-9]' "$TMP/o-ext.log" "$TMP/o-tls.log" | awk -F: '{ s += $NF } END { print s }')"

# the test's resolv.conf points at 127.0.0.1 where nothing listens: the lookup fails at once
PCURL_MAX=12 refused "DNS failure (nosuch.invalid)" 502 'dns|resolv|nosuch' http://nosuch.invalid/a1/dns
t_eq "CONNECT to a name that does not resolve: 502" "502" "$(connect_code https://nosuch.invalid/)"

sleep 0.3
t_true "access log: denials logged as TCP_DENIED/403" "TCP_DENIED/403 ... blocked.example" \
	"$(grep -c 'TCP_DENIED/403' "$ALOG" 2>/dev/null) lines" grep -qE 'TCP_DENIED/403 [0-9]+ GET http://blocked\.example/' "$ALOG"
M=$(scrape)
t_ge "metrics: td_fp_ denial samples count the refusals" 9 "$(msum "$M" '^td_fp_.*den')"

t_section "2. allow_domains, deny_domains from a file"
printf '# denied although allowed by the wildcard\nbad.allowed.test\n\n' >"$TMP/deny.txt"
printf '# one pattern a line\n*.allowed.test\nwww.origin.test\n' >"$TMP/allow.txt"
fp_config "forward_proxy:
  listen: [ \"127.0.0.1:$FPORT\" ]
  allow_domains: [ \"*.allowed.test\", www.origin.test ]
  deny_domains: { file: $TMP/deny.txt }
  deny_private_destinations: false"
fp_restart "acl 2"
t_eq "allow_domains www.origin.test: 200" "200" "$(pcode http://www.origin.test/a2/ok)"
t_eq "allow_domains *.allowed.test: good.allowed.test 200" "200" "$(pcode http://good.allowed.test/a2/ok2)"
refused "name outside allow_domains (other.test)" 403 'allow.domains|not allowed|other' http://other.test/a2/d1
t_eq "CONNECT to a name outside allow_domains (api.example): 403" "403" "$(connect_code https://api.example/a2/d2)"
refused "deny_domains file entry wins over allow_domains (bad.allowed.test)" 403 'deny.domains|bad' \
	http://bad.allowed.test/a2/d3
t_eq "names outside allow_domains never reached an origin" "0" \
	"$(cat "$TMP/o-ext.log" "$TMP/o-tls.log" | grep -c '/a2/d')"
fp_config "forward_proxy:
  listen: [ \"127.0.0.1:$FPORT\" ]
  allow_domains: { file: $TMP/allow.txt }
  deny_private_destinations: false"
fp_restart "acl 2b"
t_eq "allow_domains from a file: listed name 200" "200" "$(pcode http://good.allowed.test/a2/f1)"
t_eq "allow_domains from a file: other name 403" "403" "$(pcode http://other.test/a2/d4)"

t_section "3. private destinations (default deny_private_destinations: true)"
fp_config "forward_proxy:
  listen: [ \"127.0.0.1:$FPORT\" ]"
fp_restart "acl 3"
refused "name resolving to 127.0.0.1 (loop.test:8080)" 403 'private' http://loop.test:8080/a3/p1
refused "literal 127.0.0.1:8080" 403 'private' http://127.0.0.1:8080/a3/p2
refused "name resolving to 10.77.0.2 (ten.test)" 403 'private' http://ten.test/a3/p3
refused "literal 10.77.0.2" 403 'private' http://10.77.0.2/a3/p4
c=$(pcode -g 'http://[::1]:8080/a3/p5')
t_eq "literal [::1]:8080: 403" "403" "$c"
c=$(pcode http://2130706433:8080/a3/p6)
t_true "decimal 127.0.0.1 (2130706433:8080) not forwarded" "4xx/5xx" "$c" test "${c:0:1}" = 4 -o "${c:0:1}" = 5
t_eq "CONNECT to api.example:443 (resolves to 10.77.0.2): 403" "403" "$(connect_code https://api.example/a3/p7)"
t_eq "CONNECT to 10.77.0.2:443: 403" "403" "$(connect_code https://10.77.0.2/a3/p8)"
t_eq "nothing reached the loopback origin" "0" "$(ocount loop /a3/)"
t_eq "nothing reached the 10.77.0.2 origins" "0" "$(cat "$TMP/o-ext.log" "$TMP/o-tls.log" | grep -c '/a3/')"

t_section "4. auth basic, anonymize"
printf 'alice:%s\n' "$(openssl passwd -6 wonderland)" >"$TMP/users.htpasswd"
fp_config "forward_proxy:
  listen: [ \"127.0.0.1:$FPORT\" ]
  deny_private_destinations: false
  anonymize: true
  auth: { basic: { users_file: $TMP/users.htpasswd } }"
fp_restart "acl 4"
c=$(preq au1 http://www.origin.test/a4/none)
t_eq "no Proxy-Authorization: 407" "407" "$c"
t_true "407 carries Proxy-Authenticate: Basic realm=..." 'Basic realm="td"' "$(hdr "$TMP/au1.h" Proxy-Authenticate)" \
	grep -qiE '^basic +realm=' <<<"$(hdr "$TMP/au1.h" Proxy-Authenticate)"
t_eq "wrong password: 407" "407" "$(pcode -U alice:queen http://www.origin.test/a4/bad)"
t_eq "unknown user: 407" "407" "$(pcode -U bob:wonderland http://www.origin.test/a4/bad2)"
t_eq "refused requests never reached the origin" "0" "$(($(ocount ext /a4/bad) + $(ocount ext /a4/none)))"
t_eq "good credentials: 200" "200" "$(pcode -U alice:wonderland http://www.origin.test/a4/good)"
t_eq "Proxy-Authorization not forwarded to the origin" "absent" \
	"$(olast ext /a4/good 'h.get("proxy-authorization", "absent")')"
t_eq "CONNECT without credentials: 407" "407" "$(connect_code https://api.example/a4/t1)"
c=$(in_ns curl -s -m 5 -x "$PX" -U alice:wonderland --cacert "$CERTS/ca.pem" -o /dev/null \
	-w '%{http_connect} %{http_code}' https://api.example/a4/t2)
t_eq "CONNECT with credentials: 200 and the TLS request answered" "200 200" "$c"
t_lines < <(in_ns python3 "$FP_DIR/fpcheck.py" anon --proxy "http://alice:wonderland@127.0.0.1:$FPORT" \
	--tmp "$TMP" --tag A)
t_eq "anonymize: the origin log agrees (no Via, X-Forwarded-For, Forwarded, From, X-Real-IP, Client-IP)" "[]" \
	"$(olast ext /a/A/anon 'sorted(k for k in h if k in ("via", "x-forwarded-for", "forwarded", "from", "x-real-ip", "client-ip"))')"

t_agent_stop TERM
t_eq "proxy exits cleanly on SIGTERM" "0" "$T_AGENT_RC"
t_done
