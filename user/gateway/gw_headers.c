/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Gateway forwarded headers: X-Forwarded-*, RFC 7239 Forwarded, request ids, trusted proxies. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/rand.h>

#include "gw_internal.h"

int td_gw_peer_addr(const struct sockaddr *sa, union td_addr *addr, uint8_t *family)
{
	const struct sockaddr_in6 *s6;

	memset(addr, 0, sizeof(*addr));
	if (!sa)
		return -EAFNOSUPPORT;
	if (sa->sa_family == AF_INET) {
		memcpy(&addr->v4, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		*family = TD_AF_INET;
		return 0;
	}
	if (sa->sa_family != AF_INET6)
		return -EAFNOSUPPORT;
	s6 = (const struct sockaddr_in6 *)sa;
	if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		/* a dual-stack listener: log, match and hash the IPv4 client as IPv4 */
		memcpy(&addr->v4, &s6->sin6_addr.s6_addr[12], 4);
		*family = TD_AF_INET;
		return 0;
	}
	memcpy(addr->bytes, &s6->sin6_addr, 16);
	*family = TD_AF_INET6;
	return 0;
}

bool td_gw_trusted(const struct td_gw_cidr *c, size_t n, const union td_addr *a, uint8_t family)
{
	int af = family == TD_AF_INET ? AF_INET : AF_INET6;

	for (size_t i = 0; i < n; i++) {
		unsigned int bits = c[i].prefix, full = bits / 8, rest = bits % 8;

		if (c[i].family != af)
			continue;
		if (memcmp(c[i].addr, a->bytes, full))
			continue;
		if (rest && ((c[i].addr[full] ^ a->bytes[full]) & (0xffu << (8 - rest)) & 0xffu))
			continue;
		return true;
	}
	return false;
}

/*
 * Every field named name joined with ", " (RFC 9110 5.3) into out. Returns the length, -ENOENT
 * when absent, -ENOSPC when it does not fit.
 */
static int td_gw_join(const struct td_http_msg *m, const char *buf, const char *name, char *out,
		      size_t size)
{
	size_t len = 0;
	int i = -1, found = 0;

	while ((i = td_http_header_find(m, buf, name, (unsigned int)(i + 1))) >= 0) {
		const struct td_http_slice v = m->hdr[i].value;

		if (!v.len)
			continue;
		if (len + (found ? 2 : 0) + v.len + 1 > size)
			return -ENOSPC;
		if (found) {
			memcpy(out + len, ", ", 2);
			len += 2;
		}
		memcpy(out + len, buf + v.off, v.len);
		len += v.len;
		found = 1;
	}
	if (!found)
		return -ENOENT;
	out[len] = '\0';
	return (int)len;
}

bool td_gw_rid_sane(const char *s, size_t len)
{
	if (!len || len > TD_GW_RID_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

void td_gw_rid_generate(char *out)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char r[16];

	/* OpenSSL 3's DRBG is per thread: no lock on this path */
	if (RAND_bytes(r, sizeof(r)) != 1 && getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		memset(r, 0, sizeof(r));
	for (size_t i = 0; i < sizeof(r); i++) {
		out[2 * i] = hex[r[i] >> 4];
		out[2 * i + 1] = hex[r[i] & 15];
	}
	out[32] = '\0';
}

/* append s as a token, or a quoted-string when it has other bytes (RFC 7239 4) */
static size_t td_gw_fwd_value(char *out, size_t size, size_t len, const char *s, size_t slen)
{
	bool token = slen > 0;

	for (size_t i = 0; i < slen; i++)
		if (!td_http_is_tchar((unsigned char)s[i]))
			token = false;
	if (token) {
		len += (size_t)snprintf(out + len, len < size ? size - len : 0, "%.*s", (int)slen, s);
		return len;
	}
	if (len + 1 < size)
		out[len] = '"';
	len++;
	for (size_t i = 0; i < slen; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			continue;
		if (c == '"' || c == '\\') {
			if (len + 1 < size)
				out[len] = '\\';
			len++;
		}
		if (len + 1 < size)
			out[len] = (char)c;
		len++;
	}
	if (len + 1 < size)
		out[len] = '"';
	len++;
	if (size)
		out[len < size ? len : size - 1] = '\0';
	return len;
}

static bool td_gw_proto_sane(const char *s, size_t len)
{
	if (!len || len > 8)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
			return false;
	return true;
}

int td_gw_forwarded(const struct td_gw_fwd_in *in, struct td_gw_fwd_out *out)
{
	const struct td_http_msg *m = in->msg;
	struct td_route_req rq;
	char node[TD_ADDRSTRLEN + 4], mine[TD_GW_HOST_LEN + TD_ADDRSTRLEN + 64];
	const char *host = NULL;
	size_t host_len = 0, ml;
	int n, i;

	memset(out, 0, offsetof(struct td_gw_fwd_out, xff));
	out->xff[0] = out->xfh[0] = out->fwd[0] = '\0';
	out->rid_generated = false;
	n = td_gw_peer_addr(in->peer, &out->addr, &out->family);
	if (n)
		return n;
	td_addr_format(&out->addr, out->family, out->client, sizeof(out->client));
	out->trusted = td_gw_trusted(in->trusted, in->n_trusted, &out->addr, out->family);

	/* X-Forwarded-For: the client's list is only believed from a trusted proxy */
	n = -ENOENT;
	if (out->trusted)
		n = td_gw_join(m, in->buf, "X-Forwarded-For", out->xff,
			       sizeof(out->xff) - strlen(out->client) - 2);
	if (n > 0)
		snprintf(out->xff + n, sizeof(out->xff) - (size_t)n, ", %s", out->client);
	else
		snprintf(out->xff, sizeof(out->xff), "%s", out->client);

	/* X-Forwarded-Proto */
	snprintf(out->proto, sizeof(out->proto), "%s", in->tls ? "https" : "http");
	if (out->trusted && (i = td_http_header_find(m, in->buf, "X-Forwarded-Proto", 0)) >= 0 &&
	    td_gw_proto_sane(in->buf + m->hdr[i].value.off, m->hdr[i].value.len))
		snprintf(out->proto, sizeof(out->proto), "%.*s", (int)m->hdr[i].value.len,
			 in->buf + m->hdr[i].value.off);

	/* X-Forwarded-Host: the Host the client asked for */
	if (!td_route_req_from_msg(&rq, m, in->buf) && rq.host && rq.host_len) {
		host = rq.host;
		host_len = rq.host_len;
	}
	n = -ENOENT;
	if (out->trusted)
		n = td_gw_join(m, in->buf, "X-Forwarded-Host", out->xfh, sizeof(out->xfh));
	if (n <= 0) {
		if (host && host_len < sizeof(out->xfh))
			snprintf(out->xfh, sizeof(out->xfh), "%.*s", (int)host_len, host);
		else
			out->xfh[0] = '\0';
	}

	/* Forwarded: for=...;proto=...;host=... (an IPv6 node is quoted "[v6]") */
	if (out->family == TD_AF_INET6)
		snprintf(node, sizeof(node), "\"[%s]\"", out->client);
	else
		snprintf(node, sizeof(node), "%s", out->client);
	ml = (size_t)snprintf(mine, sizeof(mine), "for=%s;proto=%s", node,
			      in->tls ? "https" : "http");
	if (host && host_len <= TD_GW_HOST_LEN) {
		ml += (size_t)snprintf(mine + ml, sizeof(mine) - ml, ";host=");
		ml = td_gw_fwd_value(mine, sizeof(mine), ml, host, host_len);
	}
	n = -ENOENT;
	if (out->trusted)
		n = td_gw_join(m, in->buf, "Forwarded", out->fwd, sizeof(out->fwd) - ml - 2);
	if (n > 0)
		snprintf(out->fwd + n, sizeof(out->fwd) - (size_t)n, ", %s", mine);
	else
		snprintf(out->fwd, sizeof(out->fwd), "%s", mine);

	/* request id: the one given (retry), a sane client one, or a new one */
	if (in->rid) {
		snprintf(out->rid, sizeof(out->rid), "%s", in->rid);
		return 0;
	}
	i = td_http_header_find(m, in->buf, in->rid_header, 0);
	if (i >= 0 && td_http_header_find(m, in->buf, in->rid_header, (unsigned int)i + 1) < 0 &&
	    td_gw_rid_sane(in->buf + m->hdr[i].value.off, m->hdr[i].value.len)) {
		memcpy(out->rid, in->buf + m->hdr[i].value.off, m->hdr[i].value.len);
		out->rid[m->hdr[i].value.len] = '\0';
		return 0;
	}
	td_gw_rid_generate(out->rid);
	out->rid_generated = true;
	return 0;
}
