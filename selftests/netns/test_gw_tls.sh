#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Gateway TLS end to end (certificates from selftests/gw/mkcerts.sh: root -> intermediate ->
# leaves): SNI picks the certificate (exact name, wildcard, EC key, CN-only certificate, unknown
# name and no SNI -> the first (default) one), the chain verifies against the root with curl and
# openssl s_client, requests work over TLS with keep-alive, the backend sees X-Forwarded-Proto
# https (http on the plain listener), host routing works over TLS, plain HTTP on the TLS port is
# not served. Usage: test_gw_tls.sh BUILD
set -uo pipefail
source "$(dirname "$0")/lib.sh"
if ! t_require_bins; then t_done; fi
source "$T_REPO/selftests/gw/gw_lib.sh"
gw_up

C=$TMP/certs
if ! sh "$T_REPO/selftests/gw/mkcerts.sh" "$C" >"$TMP/mkcerts.log" 2>&1; then
	_t_record FAIL "mkcerts.sh" "certificates" "$(tail -n 2 "$TMP/mkcerts.log" | tr '\n' ' ')"
	t_done
fi
t_true "test PKI made" "ca.pem and 5 leaves" "$(ls "$C" | tr '\n' ' ')" \
	test -s "$C/ca.pem" -a -s "$C/api.pem" -a -s "$C/wild.pem" -a -s "$C/default.pem" -a -s "$C/ec.pem" -a -s "$C/cn.pem"
TLS=8443
gw_backend b1 9001
gw_backend b2 9002
cert() { echo "{ cert: $C/$1.pem, key: $C/$1.key }"; }
gw_config "gateway:
  listen: [ \"127.0.0.1:$GW\" ]
  workers: 2
  tls:
    listen: \"127.0.0.1:$TLS\"
    certs: [ $(cert default), $(cert api), $(cert wild), $(cert ec), $(cert cn) ]
  upstreams:
    one: { backends: [ \"127.0.0.1:9001\" ] }
    two: { backends: [ \"127.0.0.1:9002\" ] }
  routes:
    - { match: { host: \"*.wild.example\" }, upstream: two }
    - { match: { path_prefix: / }, upstream: one }"
gw_start
gw_wait_port "$TLS" || _t_record FAIL "TLS listener" "127.0.0.1:$TLS" "not listening"

# subj SNI|-: the subject CN of the certificate the gateway presents ("-": no SNI)
subj() {
	local sni=(-servername "$1")
	[[ $1 == - ]] && sni=(-noservername)
	in_ns timeout 5 openssl s_client -connect "127.0.0.1:$TLS" "${sni[@]}" -CAfile "$C/ca.pem" \
		</dev/null 2>/dev/null | openssl x509 -noout -subject -nameopt RFC2253 2>/dev/null | sed 's/^subject=//'
}
# verify SNI: s_client's verify result with the root as the only anchor
verify() {
	in_ns timeout 5 openssl s_client -connect "127.0.0.1:$TLS" -servername "$1" -CAfile "$C/ca.pem" \
		-verify_hostname "$1" </dev/null 2>/dev/null | grep -o 'Verify return code: [0-9]* ([^)]*)' | head -1
}

t_section "SNI picks the certificate (openssl s_client)"
t_eq "SNI api.example" "CN=api.example" "$(subj api.example)"
t_eq "SNI a.wild.example" "CN=*.wild.example" "$(subj a.wild.example)"
t_eq "SNI ec.example (EC key)" "CN=ec.example" "$(subj ec.example)"
t_eq "SNI cn.example (CN only, no SAN)" "CN=cn.example" "$(subj cn.example)"
t_eq "SNI default.example" "CN=default.example" "$(subj default.example)"
t_eq "unknown SNI -> the first certificate" "CN=default.example" "$(subj nothing.example)"
t_eq "no SNI -> the first certificate" "CN=default.example" "$(subj -)"
t_eq "api.example chain verifies to the root" "Verify return code: 0 (ok)" "$(verify api.example)"
t_eq "b.wild.example chain verifies to the root" "Verify return code: 0 (ok)" "$(verify b.wild.example)"
t_eq "ec.example chain verifies to the root" "Verify return code: 0 (ok)" "$(verify ec.example)"

t_section "requests over TLS (curl --resolve --cacert)"
tcurl() { # tcurl NAME HOST PATH [curl args]: request over TLS; prints the code
	local n=$1 h=$2 p=$3
	shift 3
	in_ns curl -s -m 5 --cacert "$C/ca.pem" --resolve "$h:$TLS:127.0.0.1" -D "$TMP/$n.h" \
		-o "$TMP/$n.b" -w '%{http_code}' "$@" "https://$h:$TLS$p"
}
t_eq "https://api.example/x" 200 "$(tcurl t1 api.example /x)"
t_eq "backend sees X-Forwarded-Proto https" '["https"]' "$(jv "$TMP/t1.b" 'd["headers"].get("x-forwarded-proto")')"
fwd=$(jv "$TMP/t1.b" '"|".join(d["headers"].get("forwarded", []))')
t_true "Forwarded says proto=https" "proto=https" "$fwd" eval '[[ $fwd == *proto=https* ]]'
t_eq "host api.example routed to b1" b1 "$(jv "$TMP/t1.b" 'd["id"]')"
t_eq "https://x.wild.example/" 200 "$(tcurl t2 x.wild.example /)"
t_eq "wildcard host routed to b2 over TLS" b2 "$(jv "$TMP/t2.b" 'd["id"]')"
t_eq "https://ec.example/ (EC certificate)" 200 "$(tcurl t3 ec.example /)"
t_eq "TLS client spoofing X-Forwarded-Proto: http" '["https"]' \
	"$(tcurl t4 api.example /y -H 'X-Forwarded-Proto: http' >/dev/null; jv "$TMP/t4.b" 'd["headers"].get("x-forwarded-proto")')"
B=https://api.example:$TLS
n=$(in_ns curl -s -m 5 --cacert "$C/ca.pem" --resolve "api.example:$TLS:127.0.0.1" \
	-w '%{http_code}/%{num_connects} ' -o /dev/null "$B/a" -o /dev/null "$B/b" -o /dev/null "$B/c")
t_eq "3 requests on one TLS connection (keep-alive)" "200/1 200/0 200/0" "${n% }"
t_eq "wrong name for the certificate: curl refuses" 60 \
	"$(in_ns curl -s -m 5 --cacert "$C/ca.pem" --resolve "other.example:$TLS:127.0.0.1" -o /dev/null "https://other.example:$TLS/"; echo $?)"
t_eq "plain listener: X-Forwarded-Proto http" '["http"]' \
	"$(req p1 "http://127.0.0.1:$GW/z" >/dev/null; jv "$TMP/p1.b" 'd["headers"].get("x-forwarded-proto")')"
t_true "plain HTTP on the TLS port is not served" "not 200" "$(gcode "http://127.0.0.1:$TLS/")" \
	test "$(gcode "http://127.0.0.1:$TLS/")" != 200
t_eq "TLS still works after that" 200 "$(tcurl t5 api.example /after)"
t_eq "agent still running" yes "$(kill -0 "$T_AGENT_PID" 2>/dev/null && echo yes || echo no)"
t_done
