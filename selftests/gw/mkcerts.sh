#!/bin/sh
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Test PKI for TLS tests: root CA -> intermediate CA -> leaf certificates, written into DIR.
#
# usage: mkcerts.sh DIR        (prints nothing on success; exit status non-zero on failure)
#
# DIR/ca.pem                    root CA (trust anchor for clients), DIR/ca.key
# DIR/int.pem, DIR/int.key      intermediate CA
# DIR/NAME.pem                  leaf certificate followed by the intermediate (a chain file)
# DIR/NAME.key                  leaf private key (PEM, unencrypted)
#   api      SAN DNS:api.example (CN api.example)                 RSA 2048
#   wild     SAN DNS:*.wild.example (CN *.wild.example)           RSA 2048
#   default  SAN DNS:default.example (CN default.example)         RSA 2048
#   ec       SAN DNS:ec.example (CN ec.example)                   EC P-256
#   cn       no SAN, CN cn.example (the CN fallback)              RSA 2048
set -eu

dir=${1:?usage: mkcerts.sh DIR}
mkdir -p "$dir"
cd "$dir"
log=mkcerts.log
: >"$log"
# on failure the collected openssl output goes to stderr; the work files go in any case
finish() {
	st=$?
	if [ "$st" -ne 0 ]; then cat "$log" >&2; fi
	rm -f ./*.csr ./*.ext ./*.srl "$log"
	exit "$st"
}
trap finish EXIT

days=3650
rsa() { openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>>"$log"; }

rsa ca.key
openssl req -x509 -new -key ca.key -sha256 -days $days -subj "/CN=td test root CA" \
	-addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" \
	-out ca.pem >>"$log" 2>&1

rsa int.key
openssl req -new -key int.key -subj "/CN=td test intermediate CA" -out int.csr >>"$log" 2>&1
printf '%s\n' "basicConstraints=critical,CA:true,pathlen:0" "keyUsage=critical,keyCertSign,cRLSign" \
	"subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid" >int.ext
openssl x509 -req -in int.csr -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days $days \
	-extfile int.ext -out int.pem >>"$log" 2>&1

# leaf NAME CN SAN-or-empty KEYTYPE
leaf() {
	if [ "$4" = ec ]; then
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>>"$log"
	else
		rsa "$1.key"
	fi
	openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr" >>"$log" 2>&1
	printf '%s\n' "basicConstraints=CA:false" "keyUsage=critical,digitalSignature,keyEncipherment" \
		"extendedKeyUsage=serverAuth" "subjectKeyIdentifier=hash" \
		"authorityKeyIdentifier=keyid" >"$1.ext"
	if [ -n "$3" ]; then echo "subjectAltName=$3" >>"$1.ext"; fi
	openssl x509 -req -in "$1.csr" -CA int.pem -CAkey int.key -CAcreateserial -sha256 \
		-days $days -extfile "$1.ext" -out "$1.crt" >>"$log" 2>&1
	cat "$1.crt" int.pem >"$1.pem"
	rm -f "$1.crt"
}

leaf api api.example "DNS:api.example" rsa
leaf wild '*.wild.example' "DNS:*.wild.example" rsa
leaf default default.example "DNS:default.example" rsa
leaf ec ec.example "DNS:ec.example" ec
leaf cn cn.example "" rsa
