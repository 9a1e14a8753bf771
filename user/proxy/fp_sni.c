/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Forward proxy: the server_name of a TLS ClientHello (RFC 8446 4.1.2, RFC 6066 3), no decryption. */
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "fp_internal.h"

#define TD_FP_HELLO_MAX	16384u	/* a ClientHello larger than this is refused */

/* bounds-checked reader over the reassembled handshake bytes */
struct td_fp_rd {
	const uint8_t *p;
	size_t len, pos;
	bool bad;
};

static uint32_t td_fp_get(struct td_fp_rd *r, unsigned int n)
{
	uint32_t v = 0;

	if (r->bad || r->len - r->pos < n) {
		r->bad = true;
		return 0;
	}
	for (unsigned int i = 0; i < n; i++)
		v = v << 8 | r->p[r->pos++];
	return v;
}

static void td_fp_skip(struct td_fp_rd *r, size_t n)
{
	if (r->bad || r->len - r->pos < n)
		r->bad = true;
	else
		r->pos += n;
}

int td_fp_sni_parse(const uint8_t *data, size_t len, char *out, size_t size)
{
	uint8_t hs[TD_FP_HELLO_MAX + 4];
	size_t hlen = 0, need = 0, off = 0;
	struct td_fp_rd r;
	uint32_t n, ext_end;

	/* reassemble the handshake message from as many handshake records as it spans */
	for (;;) {
		uint32_t rlen;

		if (len - off < 5)
			return -EAGAIN;
		if (data[off] != 22 || data[off + 1] != 3)
			return -EINVAL;	/* not a TLS handshake record */
		rlen = (uint32_t)data[off + 3] << 8 | data[off + 4];
		if (!rlen || rlen > 16384 + 2048)
			return -EINVAL;
		if (len - off - 5 < rlen) {
			/* take the partial record: enough when the hello is complete in it */
			rlen = (uint32_t)(len - off - 5);
			if (hlen + rlen > sizeof(hs))
				return -EINVAL;
			memcpy(hs + hlen, data + off + 5, rlen);
			hlen += rlen;
			if (hlen >= 4) {
				if (hs[0] != 1)
					return -EINVAL;
				need = 4 + ((size_t)hs[1] << 16 | (size_t)hs[2] << 8 | hs[3]);
				if (need > sizeof(hs))
					return -EINVAL;
			}
			if (!need || hlen < need)
				return -EAGAIN;
			break;
		}
		if (hlen + rlen > sizeof(hs))
			return -EINVAL;
		memcpy(hs + hlen, data + off + 5, rlen);
		hlen += rlen;
		off += 5 + rlen;
		if (hlen >= 4) {
			if (hs[0] != 1)
				return -EINVAL;	/* the first handshake message must be a ClientHello */
			need = 4 + ((size_t)hs[1] << 16 | (size_t)hs[2] << 8 | hs[3]);
			if (need > sizeof(hs))
				return -EINVAL;
			if (hlen >= need)
				break;
		}
	}
	r = (struct td_fp_rd){ .p = hs, .len = need };
	td_fp_skip(&r, 4);		/* msg_type, length */
	td_fp_skip(&r, 2 + 32);		/* legacy_version, random */
	td_fp_skip(&r, td_fp_get(&r, 1));	/* legacy_session_id */
	td_fp_skip(&r, td_fp_get(&r, 2));	/* cipher_suites */
	td_fp_skip(&r, td_fp_get(&r, 1));	/* legacy_compression_methods */
	if (r.bad)
		return -EINVAL;
	if (r.pos == r.len)
		return 0;			/* no extensions at all */
	n = td_fp_get(&r, 2);
	ext_end = (uint32_t)r.pos + n;	/* after the read: pos has moved */
	if (r.bad || ext_end > r.len)
		return -EINVAL;
	while (r.pos + 4 <= ext_end) {
		uint32_t type = td_fp_get(&r, 2), elen = td_fp_get(&r, 2), end = (uint32_t)r.pos + elen;
		uint32_t list_end;

		if (end > ext_end)
			return -EINVAL;
		if (type != 0) {
			td_fp_skip(&r, elen);
			continue;
		}
		/* server_name: ServerNameList of (type, HostName); the host_name (0) entry */
		n = td_fp_get(&r, 2);
		list_end = (uint32_t)r.pos + n;
		if (r.bad || list_end > end)
			return -EINVAL;
		while (r.pos + 3 <= list_end) {
			uint32_t nt = td_fp_get(&r, 1), nl = td_fp_get(&r, 2);

			if (r.bad || r.pos + nl > list_end)
				return -EINVAL;
			if (nt != 0) {
				td_fp_skip(&r, nl);
				continue;
			}
			if (!nl || nl >= size)
				return -EINVAL;
			for (uint32_t i = 0; i < nl; i++) {
				unsigned char ch = r.p[r.pos + i];

				if (!isalnum(ch) && ch != '-' && ch != '.' && ch != '_')
					return -EINVAL;
				out[i] = (char)tolower(ch);
			}
			out[nl] = '\0';
			if (nl > 1 && out[nl - 1] == '.')
				out[nl - 1] = '\0';
			return 1;
		}
		return 0;
	}
	return r.bad ? -EINVAL : 0;
}
