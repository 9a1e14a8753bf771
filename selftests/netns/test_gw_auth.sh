#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Gateway authentication end to end: JWT HS256 / RS256 / ES256 / RS256 from a JWKS accepted;
# expired, nbf in the future, wrong audience, wrong issuer, alg confusion (HS256 signed with the
# RSA public key bytes against an RS256 route), alg none, tampered signature, another key,
# missing token all 401 with WWW-Authenticate and no backend touched; API keys good / bad /
# missing; Basic good / bad password / unknown user; the identity reaches the backend in
# identity_header and a client-sent one is removed. Usage: test_gw_auth.sh BUILD
set -uo pipefail
source "$(dirname "$0")/lib.sh"
if ! t_require_bins; then t_done; fi
source "$T_REPO/selftests/gw/gw_lib.sh"
JWT=$T_REPO/selftests/gw/jwt.py
gw_up

t_section "keys, tokens, users"
K=$TMP/keys
mkdir -p "$K"
genrsa() { openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null; }
genrsa "$K/rs.key" && openssl pkey -in "$K/rs.key" -pubout -out "$K/rs.pub"
genrsa "$K/other.key"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$K/ec.key" 2>/dev/null &&
	openssl pkey -in "$K/ec.key" -pubout -out "$K/ec.pub"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$K/ec-other.key" 2>/dev/null
head -c 48 /dev/urandom | base64 | tr -d '\n=+/' | head -c 48 >"$K/hs.key"   # no newline
printf '%s' "a-different-secret-of-enough-length-0123456789" >"$K/hs-other.key"
python3 "$JWT" jwks --pub "$K/rs.pub" --kid k1 >"$K/jwks.json"
APIKEY=td-test-key-$T_ID-0123456789
APISHA=$(printf %s "$APIKEY" | sha256sum | cut -d' ' -f1)
printf 'alice:%s\n' "$(openssl passwd -6 wonderland)" >"$K/users"
t_true "key material generated" "rs, ec, hs, jwks, users" "$(ls "$K" | tr '\n' ' ')" \
	test -s "$K/rs.pub" -a -s "$K/ec.pub" -a -s "$K/hs.key" -a -s "$K/jwks.json" -a -s "$K/users"

gw_backend b1 9001
ID='identity_header: X-Auth-Subject'
gw_config "gateway:
  listen: [ \"127.0.0.1:$GW\" ]
  workers: 2
  upstreams:
    one: { backends: [ \"127.0.0.1:9001\" ] }
  routes:
    - match: { path_prefix: /hs }
      upstream: one
      auth: { jwt: { alg: HS256, secret_file: $K/hs.key, audience: api }, $ID }
    - match: { path_prefix: /iss }
      upstream: one
      auth: { jwt: { alg: HS256, secret_file: $K/hs.key, audience: api, issuer: \"https://idp.test\" }, $ID }
    - match: { path_prefix: /rs }
      upstream: one
      auth: { jwt: { alg: RS256, key_file: $K/rs.pub }, $ID }
    - match: { path_prefix: /es }
      upstream: one
      auth: { jwt: { alg: ES256, key_file: $K/ec.pub }, $ID }
    - match: { path_prefix: /jwks }
      upstream: one
      auth: { jwt: { alg: RS256, jwks_file: $K/jwks.json }, $ID }
    - match: { path_prefix: /key }
      upstream: one
      auth: { api_keys: { header: X-API-Key, keys: [ { name: ci, sha256: $APISHA } ] }, $ID }
    - match: { path_prefix: /basic }
      upstream: one
      auth: { basic: { users_file: $K/users }, $ID }
    - { match: { path_prefix: /open }, upstream: one }"
gw_start
U=http://127.0.0.1:$GW

# tok ARGS...: a token from selftests/gw/jwt.py make; bearer ARGS...: its Authorization field
tok() { python3 "$JWT" make "$@"; }
bearer() { echo "Authorization: Bearer $(tok "$@")"; }
HS=(--alg HS256 --secret-file "$K/hs.key")
RS=(--alg RS256 --key "$K/rs.key")
ES=(--alg ES256 --key "$K/ec.key")
# accept DESC PATH TOKEN SUBJECT: 200 and the backend sees exactly SUBJECT in X-Auth-Subject
# (the client also sends a forged X-Auth-Subject: admin, which must be dropped)
accept() {
	local code
	code=$(req acc -H "Authorization: Bearer $3" -H 'X-Auth-Subject: admin' "$U$2")
	t_eq "$1: 200" 200 "$code"
	t_eq "$1: identity upstream, forged one removed" "[\"$4\"]" "$(jv "$TMP/acc.b" 'd["headers"].get("x-auth-subject")')"
}
# reject DESC PATH SCHEME [curl args...]: 401, WWW-Authenticate starts with SCHEME, backend untouched
reject() {
	local d=$1 p=$2 s=$3 n0 code
	shift 3
	n0=$(be_count b1)
	code=$(req rej "$@" "$U$p")
	t_eq "$d: 401" 401 "$code"
	t_eq "$d: WWW-Authenticate $s" "$s" "$(hdr "$TMP/rej.h" www-authenticate | cut -d' ' -f1)"
	t_eq "$d: backend not touched" "$n0" "$(be_count b1)"
}

t_section "JWT accepted"
accept "HS256" /hs "$(tok "${HS[@]}" --sub alice --aud api)" alice
accept "HS256, aud array" /hs "$(tok "${HS[@]}" --sub al2 --claims '{"aud":["x","api"]}')" al2
accept "HS256 + issuer" /iss "$(tok "${HS[@]}" --sub ivy --aud api --iss https://idp.test)" ivy
accept "RS256" /rs "$(tok "${RS[@]}" --sub bob)" bob
accept "ES256 (raw r||s)" /es "$(tok "${ES[@]}" --sub carol)" carol
accept "RS256 via JWKS" /jwks "$(tok "${RS[@]}" --sub dave --kid k1)" dave
accept "leeway: expired 10 s ago" /rs "$(tok "${RS[@]}" --sub eve --exp-in -10)" eve

t_section "JWT rejected"
reject "no token" /hs Bearer
reject "not Bearer" /hs Bearer -H "Authorization: Basic $(printf 'a:b' | base64)"
reject "expired (exp 120 s ago, leeway 30 s)" /hs Bearer -H "$(bearer "${HS[@]}" --sub a --aud api --exp-in -120)"
reject "nbf in the future" /hs Bearer -H "$(bearer "${HS[@]}" --sub a --aud api --nbf-in 3600)"
reject "wrong audience" /hs Bearer -H "$(bearer "${HS[@]}" --sub a --aud other)"
reject "no audience" /hs Bearer -H "$(bearer "${HS[@]}" --sub a)"
reject "wrong issuer" /iss Bearer -H "$(bearer "${HS[@]}" --sub a --aud api --iss https://evil.test)"
reject "HS256 with another secret" /hs Bearer -H "$(bearer --alg HS256 --secret-file "$K/hs-other.key" --sub a --aud api)"
reject "tampered HS256 signature" /hs Bearer -H "$(bearer "${HS[@]}" --sub a --aud api --tamper)"
reject "alg confusion: HS256 signed with the RSA public key PEM" /rs Bearer -H "$(bearer --alg HS256 --secret-file "$K/rs.pub" --sub a)"
reject "alg confusion: same, PEM without its newline" /rs Bearer -H "$(bearer --alg HS256 --secret-file "$K/rs.pub" --strip-newline --sub a)"
reject "alg none on an RS256 route" /rs Bearer -H "$(bearer --alg none --sub a)"
reject "alg none on an HS256 route" /hs Bearer -H "$(bearer --alg none --sub a --aud api)"
reject "RS256 header over an HS256 route" /hs Bearer -H "$(bearer "${RS[@]}" --sub a --aud api)"
reject "tampered RS256 signature" /rs Bearer -H "$(bearer "${RS[@]}" --sub a --tamper)"
reject "RS256 signed by another key" /rs Bearer -H "$(bearer --alg RS256 --key "$K/other.key" --sub a)"
reject "ES256 signed by another key" /es Bearer -H "$(bearer --alg ES256 --key "$K/ec-other.key" --sub a)"
reject "tampered ES256 signature" /es Bearer -H "$(bearer "${ES[@]}" --sub a --tamper)"
reject "JWKS: unknown kid" /jwks Bearer -H "$(bearer "${RS[@]}" --sub a --kid nope)"
reject "garbage token" /rs Bearer -H "Authorization: Bearer not.a.jwt"
code=$(req rej -H "$(bearer "${HS[@]}" --sub a --aud api --exp-in -120)" "$U/hs")
t_true "expired: WWW-Authenticate says invalid_token" 'error="invalid_token"' "$(hdr "$TMP/rej.h" www-authenticate)" \
	grep -q 'error="invalid_token"' "$TMP/rej.h"

t_section "API keys"
n0=$(be_count b1)
t_eq "good key" 200 "$(req k1 -H "X-API-Key: $APIKEY" -H 'X-Auth-Subject: admin' "$U/key")"
t_eq "good key: identity is the key name" '["ci"]' "$(jv "$TMP/k1.b" 'd["headers"].get("x-auth-subject")')"
reject "bad key" /key ApiKey -H "X-API-Key: $APIKEY-x"
reject "missing key" /key ApiKey
reject "key in another header" /key ApiKey -H "Authorization: Bearer $APIKEY"

t_section "Basic"
t_eq "alice:wonderland" 200 "$(req ba -u alice:wonderland -H 'X-Auth-Subject: admin' "$U/basic")"
t_eq "Basic: identity is the user" '["alice"]' "$(jv "$TMP/ba.b" 'd["headers"].get("x-auth-subject")')"
reject "wrong password" /basic Basic -u alice:wonderlan
reject "unknown user" /basic Basic -u mallory:wonderland
reject "no credentials" /basic Basic

t_section "open route and agent"
t_eq "route without auth" 200 "$(req op "$U/open")"
t_eq "agent still running" yes "$(kill -0 "$T_AGENT_PID" 2>/dev/null && echo yes || echo no)"
t_done
