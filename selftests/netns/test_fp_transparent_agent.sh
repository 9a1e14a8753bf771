#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Transparent forward proxy end to end through tdagent (issue 6): forward_proxy.transparent lists
# a cgroup folder of this test; a curl in it with no proxy setting at all (no -x, no environment)
# reaches http://10.77.0.2/ through td (Via at the origin, Squid access-log line, td_fp_
# metrics) and https://NAME/ through the TLS listener (allowed names tunnelled, deny_domains
# names refused and logged); a process outside the cgroup and port 22 go direct; tdctl status
# and metrics show the transparent listeners; a reload without `transparent` detaches the
# programs, a reload with it attaches them again; SIGTERM detaches them too (bpftool cgroup
# show lists no td_fp program, the cgroup's processes connect directly again).
# Topology and helpers: selftests/fp/fp_lib.sh. Usage: test_fp_transparent_agent.sh BUILD
set -uo pipefail
source "$(dirname "$0")/lib.sh"
if ! t_require_bins; then t_done; fi
# "no proxy setting": nothing from the caller's environment either
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

CG_MNT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
if [[ -z $CG_MNT ]]; then
	_t_record FAIL "cgroup2 mounted" "a cgroup2 line in /proc/mounts" "none"
	t_done
fi
CG_REL=tdt-fpta-$T_ID-$$           # relative to mesh.cgroup_root (default: the cgroup2 mount)
CGR=$CG_MNT/$CG_REL
CGA=$CGR/app                       # listed in forward_proxy.transparent.cgroups
CGO=$CGR/other                     # not listed
TPORT=3129
TTLS=3130
PROGS="td_fp_connect4 td_fp_connect6 td_fp_getpeer4 td_fp_getpeer6 td_fp_sockops "   # progs()

source "$T_REPO/selftests/fp/fp_lib.sh"
# fp_lib's trap, plus the cgroup folders: processes killed first, folders removed last
fpta_cleanup() {
	t_agent_stop TERM
	t_cgroup_kill "$CGR"
	fp_cleanup
	# the agent detaches on SIGTERM; a crashed one may not have: detach before rmdir
	if [[ -d $CGR ]] && bpftool cgroup show "$CGA" 2>/dev/null | grep -q td_fp_; then
		bpftool cgroup show "$CGA" 2>/dev/null | awk '/td_fp_/ { print $1, $2 }' |
			while read -r id hook; do bpftool cgroup detach "$CGA" "$hook" id "$id"; done
	fi
	t_cgroup_remove "$CGR"
}
trap fpta_cleanup EXIT
trap 'fpta_cleanup; exit 130' INT TERM

if ! mkdir -p "$CGA" "$CGO"; then
	_t_record FAIL "cgroup folders created" "$CGA, $CGO" "mkdir failed"
	t_done
fi
fp_up

# in_cg DIR CMD...: CMD in cgroup folder DIR and the client netns; the shell joins the cgroup
# before it execs, so CMD's sockets are the cgroup's from the first one
in_cg() {
	local cg=$1
	shift
	bash -c 'echo $BASHPID >"$1/cgroup.procs" && shift && exec nsenter --net="/run/netns/$0" "$@"' \
		"$NS" "$cg" "$@"
}
# ccurl DIR ARGS...: a plain curl (no proxy) in cgroup DIR ("" = the test's own cgroup); prints
# "<http_code> <exit status>"
ccurl() {
	local cg=$1 out rc
	shift
	if [[ -n $cg ]]; then
		out=$(in_cg "$cg" curl -s -m 5 -o /dev/null -w '%{http_code}' "$@")
	else
		out=$(in_ns curl -s -m 5 -o /dev/null -w '%{http_code}' "$@")
	fi
	rc=$?
	echo "$out $rc"
}
# alog_has RE: the access log has a line matching the extended regex RE (lines are flushed per
# request; give the worker a moment)
alog_has() {
	for _ in $(seq 1 20); do
		grep -qE "$1" "$ALOG" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
# progs: td_fp programs bpftool lists on the listed cgroup (their names, sorted, one line)
progs() { bpftool cgroup show "$CGA" 2>/dev/null | awk '/td_fp_/ { print $NF }' | sort | tr '\n' ' '; }
# via_of PATH: "<peer> <Via or absent>" of the origin's last request for PATH
via_of() { olast ext "$1" 'r["peer"] + " " + h.get("via", "absent")'; }

# transparent_cfg ON: the config; ON=1 with the transparent block
transparent_cfg() {
	local tr=""
	(($1)) && tr="
  transparent:
    listen: \"127.0.0.1:$TPORT\"
    tls_listen: \"127.0.0.1:$TTLS\"
    cgroups: [ \"$CG_REL/app\" ]
    ports: [ 80, 443 ]"
	fp_config "forward_proxy:
  listen: [ \"127.0.0.1:$FPORT\" ]
  deny_domains: [ blocked.example, \"*.ads.example\" ]
  deny_private_destinations: false    # the origins are on 10.77.0.2 (RFC 1918)
  access_log: { path: $ALOG, format: squid }$tr"
}

t_section "tdagent with forward_proxy.transparent on $CG_REL/app"
transparent_cfg 1
fp_start "transparent"
for p in $TPORT $TTLS; do
	fp_wait_port "$NS" $p 50
	t_eq "transparent listener 127.0.0.1:$p up" "0" "$?"
done
t_eq "td_fp programs attached to the listed cgroup" \
	"$PROGS" "$(progs)"
t_eq "nothing attached to the unlisted sibling cgroup" "" \
	"$(bpftool cgroup show "$CGO" 2>/dev/null | grep td_fp_)"

t_section "port 80: a curl in the cgroup, no proxy configured"
t_eq "curl http://10.77.0.2/t/x in the cgroup: 200" "200 0" "$(ccurl "$CGA" http://10.77.0.2/t/x)"
t_eq "origin got it from the proxy (veth address) with Via: 1.1 td" "10.77.0.1 1.1 td" \
	"$(via_of /t/x)"
t_true "access log: squid line 127.0.0.1 TCP_MISS/200 GET http://10.77.0.2/t/x HIER_DIRECT/10.77.0.2" \
	"a matching line" "$(grep -F '/t/x ' "$ALOG" 2>/dev/null | head -n 1)" \
	alog_has '^[0-9]+\.[0-9]{3} +[0-9]+ 127\.0\.0\.1 TCP_[A-Z_]*MISS/200 [0-9]+ GET http://10\.77\.0\.2/t/x - HIER_DIRECT/10\.77\.0\.2 '
c=$(in_cg "$CGA" curl -s -m 5 -H 'Host: www.origin.test' -o "$TMP/h.b" -w '%{http_code}' \
	http://10.77.0.2/t/host)
t_eq "Host names the site, the original destination is used: 200" "200" "$c"
t_true "access log names the URL by its Host" "GET http://www.origin.test/t/host" \
	"$(grep -F '/t/host ' "$ALOG" 2>/dev/null | head -n 1)" \
	alog_has ' GET http://www\.origin\.test/t/host '
c=$(in_cg "$CGA" curl -s -m 5 -H 'Host: blocked.example' -o "$TMP/d.b" -w '%{http_code}' \
	http://10.77.0.2/t/denied)
t_eq "Host in deny_domains: 403 from td" "403" "$c"
t_eq "... never reached the origin" "0" "$(ocount ext /t/denied)"
t_true "... logged TCP_DENIED/403" "TCP_DENIED/403 GET http://blocked.example/t/denied" \
	"$(grep -F '/t/denied' "$ALOG" 2>/dev/null | head -n 1)" \
	alog_has 'TCP_DENIED/403 [0-9]+ GET http://blocked\.example/t/denied '
c=$(in_cg "$CGA" curl -s -m 5 -d 'a=1&b=2' -o /dev/null -w '%{http_code}' http://10.77.0.2/t/post)
t_eq "POST in the cgroup: 200" "200" "$c"
t_eq "... the origin got the 7 bytes through td" "7 1.1 td" \
	"$(olast ext /t/post 'str(r["body_len"]) + " " + h.get("via", "absent")')"

t_section "port 443: TLS listener, SNI checked against the domain rules"
c=$(in_cg "$CGA" curl -s -m 5 --resolve api.example:443:10.77.0.2 --cacert "$CERTS/ca.pem" \
	-o "$TMP/tls.b" -w '%{http_code}' https://api.example/t/tls)
t_eq "curl https://api.example/t/tls in the cgroup (certificate checked end to end): 200" "200" "$c"
t_eq "the TLS origin got it, tunnelled by the proxy (veth address, no Via inside TLS)" \
	"10.77.0.1 absent" "$(olast tls /t/tls 'r["peer"] + " " + h.get("via", "absent")')"
t_true "access log: TCP_TUNNEL CONNECT api.example:443 HIER_DIRECT/10.77.0.2 (SNI names it)" \
	"a matching line" "$(grep -F 'api.example:443' "$ALOG" 2>/dev/null | head -n 1)" \
	alog_has ' TCP_TUNNEL/[0-9]{3} [0-9]+ CONNECT api\.example:443 - HIER_DIRECT/10\.77\.0\.2 '
t_true "... with status 200 like an explicit CONNECT (and Squid's spliced TLS)" "TCP_TUNNEL/200" \
	"$(grep -F 'api.example:443' "$ALOG" | grep -oE 'TCP_TUNNEL/[0-9]+' | head -n 1)" \
	grep -qE ' TCP_TUNNEL/200 [0-9]+ CONNECT api\.example:443 ' "$ALOG"
n0=$(ocount tls /t/)
out=$(ccurl "$CGA" --resolve blocked.example:443:10.77.0.2 --cacert "$CERTS/ca.pem" \
	https://blocked.example/t/tls-denied)
t_true "https://blocked.example/ (deny_domains) in the cgroup: refused, no HTTP answer" \
	"000 and curl exit != 0" "$out" test "${out%% *}" = 000 -a "${out##* }" != 0
out=$(ccurl "$CGA" --resolve x.ads.example:443:10.77.0.2 -k https://x.ads.example/t/tls-ads)
t_true "https://x.ads.example/ (*.ads.example) in the cgroup: refused" \
	"000 and curl exit != 0" "$out" test "${out%% *}" = 000 -a "${out##* }" != 0
t_eq "denied TLS names never reached the TLS origin" "$n0" "$(ocount tls /t/)"
t_true "access log: TCP_DENIED CONNECT blocked.example:443" "a matching line" \
	"$(grep -F 'blocked.example:443' "$ALOG" 2>/dev/null | head -n 1)" \
	alog_has 'TCP_DENIED/[0-9]+ [0-9]+ CONNECT blocked\.example:443 '
t_true "... as TCP_DENIED/403 with HIER_NONE/- (nothing was contacted), like a denied CONNECT" \
	"TCP_DENIED/403 ... HIER_NONE/-" \
	"$(grep -F 'blocked.example:443' "$ALOG" | head -n 1 | tr -s ' ' | cut -d' ' -f4-)" \
	grep -qE 'TCP_DENIED/403 [0-9]+ CONNECT blocked\.example:443 - HIER_NONE/- ' "$ALOG"

t_section "not redirected"
t_eq "a curl outside the cgroup (sibling folder): 200" "200 0" \
	"$(ccurl "$CGO" http://10.77.0.2/t/outside)"
t_eq "... straight to the origin (no Via)" "10.77.0.1 absent" "$(via_of /t/outside)"
t_eq "a curl in the test's own cgroup: 200, no Via" "200 0 10.77.0.1 absent" \
	"$(ccurl "" http://10.77.0.2/t/own) $(via_of /t/own)"
t_eq "port 22 (not in ports) from the cgroup: 200 direct, no Via" "200 0 10.77.0.1 absent" \
	"$(ccurl "$CGA" http://10.77.0.2:22/t/p22) $(via_of /t/p22)"
t_eq "port 8080 (not in ports) from the cgroup: 200 direct" "200 0 absent" \
	"$(ccurl "$CGA" http://10.77.0.2:8080/t/p8080) $(olast ext /t/p8080 'h.get("via", "absent")')"
sleep 0.3
t_eq "no access-log line for the direct requests" "0" \
	"$(grep -cE '/t/(outside|own|p22|p8080)' "$ALOG" 2>/dev/null)"

t_section "status and metrics"
st=$(in_ns "$TDCTL" --bpffs "$BPFFS" status 2>&1)
t_true "tdctl status: the proxy line lists the transparent listeners" \
	"127.0.0.1:$TPORT (transparent) 127.0.0.1:$TTLS (transparent_tls)" "$(grep '^proxy' <<<"$st")" \
	grep -qE "^proxy .*127\.0\.0\.1:$TPORT \(transparent\) 127\.0\.0\.1:$TTLS \(transparent_tls\)" <<<"$st"
# tdctl --json status leaves the agent's forward_proxy object out: ask the admin socket
python3 - "$ADMIN" >"$TMP/status.json" 2>&1 <<'EOF'
import json, socket, sys
with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
    s.settimeout(5)
    s.connect(sys.argv[1])
    s.sendall(b'{"cmd":"status"}\n')
    buf = b""
    while not buf.endswith(b"\n"):
        d = s.recv(65536)
        if not d:
            break
        buf += d
print(json.dumps(json.loads(buf)))
EOF
t_eq "admin status: forward_proxy listener kinds" '["proxy", "transparent", "transparent_tls"]' \
	"$(t_json "$TMP/status.json" 'sorted(l["kind"] for l in d["forward_proxy"]["listeners"])')"
t_eq "admin status: the proxy holds the original-destination map" "True" \
	"$(t_json "$TMP/status.json" 'd["forward_proxy"]["transparent_map"]')"
M=$(scrape)
t_ge "td_fp_requests_total counts the transparent GET/POST requests" 4 \
	"$(msum "$M" '^td_fp_requests_total')"
t_eq "td_fp_tunnels_total counts the transparent TLS tunnel (not the refused ones)" 1 \
	"$(msum "$M" '^td_fp_tunnels_total')"
t_eq "td_fp_requests_total CONNECT 2xx: the one tunnel (the SNI denials are no successes)" 1 \
	"$(msum "$M" '^td_fp_requests_total\{method="CONNECT",class="2xx"')"
t_ge "td_fp_denied_total{rule=domain} counts the Host and SNI denials" 3 \
	"$(msum "$M" '^td_fp_denied_total\{rule="domain')"

t_section "reload without transparent: detached; with it again: attached"
# mapfds: the agent's open BPF map descriptors (each transparent reload must not add one)
mapfds() { find "/proc/$T_AGENT_PID/fd" -lname 'anon_inode:bpf-map' 2>/dev/null | wc -l; }
n0=$(mapfds)
for i in 1 2 3; do in_ns "$TDCTL" reload >/dev/null 2>&1; done
t_eq "three reloads of the same transparent config: no BPF map descriptor leaked" "$n0" "$(mapfds)"
t_eq "... still redirected after them" "200 0 10.77.0.1 1.1 td" \
	"$(ccurl "$CGA" http://10.77.0.2/t/reloaded) $(via_of /t/reloaded)"
transparent_cfg 0
out=$(in_ns "$TDCTL" reload 2>&1)
t_eq "tdctl reload (transparent removed)" "0" "$?"
t_eq "no td_fp program on the cgroup after the reload" "" "$(progs)"
t_eq "the cgroup's curl goes direct (no Via), no 502 from a missing listener" "200 0 10.77.0.1 absent" \
	"$(ccurl "$CGA" http://10.77.0.2/t/after-reload) $(via_of /t/after-reload)"
t_eq "the explicit proxy still works" "200" "$(pcode http://www.origin.test/t/explicit)"
t_true "transparent listeners closed" "nothing on :$TPORT" "$(in_ns ss -Hltn "sport = :$TPORT")" \
	test -z "$(in_ns ss -Hltn "sport = :$TPORT")"
transparent_cfg 1
out=$(in_ns "$TDCTL" reload 2>&1)
t_eq "tdctl reload (transparent back)" "0" "$?"
fp_wait_port "$NS" $TPORT 50
t_eq "td_fp programs attached again" \
	"$PROGS" "$(progs)"
t_eq "the cgroup's curl goes through td again" "200 0 10.77.0.1 1.1 td" \
	"$(ccurl "$CGA" http://10.77.0.2/t/again) $(via_of /t/again)"

t_section "SIGTERM detaches"
t_agent_stop TERM
t_eq "tdagent exits cleanly on SIGTERM" "0" "$T_AGENT_RC"
t_eq "bpftool cgroup show: no td_fp program on the cgroup" "" "$(progs)"
t_eq "a curl in the cgroup connects directly again" "200 0 10.77.0.1 absent" \
	"$(ccurl "$CGA" http://10.77.0.2/t/stopped) $(via_of /t/stopped)"
t_eq "... and https too" "200" "$(in_cg "$CGA" curl -s -m 5 --resolve api.example:443:10.77.0.2 \
	--cacert "$CERTS/ca.pem" -o /dev/null -w '%{http_code}' https://api.example/t/stopped-tls)"
t_done
