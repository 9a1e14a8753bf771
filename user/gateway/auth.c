/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Gateway route authentication: Bearer JWT, SHA-256 API keys and htpasswd Basic via crypt_r. */
#include <crypt.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "auth.h"

#define TD_AUTH_SHA256_LEN	32
#define TD_AUTH_MAX_ENTRIES	100000	/* keys or users from one file */

/* one API key: identity and SHA-256 of the key */
struct td_auth_key {
	char *name;
	unsigned char hash[TD_AUTH_SHA256_LEN];
};

/* one htpasswd entry */
struct td_auth_user {
	char *user;
	char *hash;
};

struct td_auth {
	enum td_auth_kind kind;
	char *realm;
	struct td_jwt_verifier *jwt;
	char *key_header;
	struct td_auth_key *keys;
	size_t nkeys;
	struct td_auth_user *users;
	size_t nusers;
};

static const char *const td_auth_reasons[TD_AUTH_REASON_MAX] = {
	[TD_AUTH_OK]		= "ok",
	[TD_AUTH_MISSING]	= "missing credentials",
	[TD_AUTH_MALFORMED]	= "malformed credentials",
	[TD_AUTH_UNKNOWN_KEY]	= "unknown api key",
	[TD_AUTH_BAD_USER]	= "unknown user",
	[TD_AUTH_BAD_PASSWORD]	= "wrong password",
	[TD_AUTH_BAD_TOKEN]	= "invalid token",
	[TD_AUTH_INTERNAL]	= "internal error",
};

const char *td_auth_reason_str(const struct td_auth_result *res)
{
	if (res->reason == TD_AUTH_BAD_TOKEN)
		return td_jwt_reason_str(res->jwt);
	if ((unsigned int)res->reason >= TD_AUTH_REASON_MAX)
		return "unknown";
	return td_auth_reasons[res->reason];
}

enum td_auth_kind td_auth_kind_of(const struct td_auth *a)
{
	return a->kind;
}

const char *td_auth_key_header(const struct td_auth *a)
{
	return a->key_header;
}

/* printable ASCII/UTF-8 without controls, '"' and '\\' (safe inside a quoted-string) */
static bool td_auth_text_ok(const char *s, size_t len, bool allow_quote)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f || (!allow_quote && (c == '"' || c == '\\')))
			return false;
	}
	return true;
}

static int td_auth_hex32(const char *s, size_t len, unsigned char *out)
{
	if (len != 2 * TD_AUTH_SHA256_LEN)
		return -EINVAL;
	for (size_t i = 0; i < TD_AUTH_SHA256_LEN; i++) {
		int v = 0;

		for (int j = 0; j < 2; j++) {
			char c = s[2 * i + j];

			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= c - '0';
			else if (c >= 'a' && c <= 'f')
				v |= c - 'a' + 10;
			else if (c >= 'A' && c <= 'F')
				v |= c - 'A' + 10;
			else
				return -EINVAL;
		}
		out[i] = (unsigned char)v;
	}
	return 0;
}

static int td_auth_add_key(struct td_auth *a, const char *name, size_t nlen, const char *hex,
			   size_t hlen)
{
	struct td_auth_key *k;

	if (!nlen || nlen >= TD_AUTH_IDENTITY_MAX || !td_auth_text_ok(name, nlen, false))
		return -EINVAL;
	if (a->nkeys >= TD_AUTH_MAX_ENTRIES)
		return -E2BIG;
	k = realloc(a->keys, (a->nkeys + 1) * sizeof(*k));
	if (!k)
		return -ENOMEM;
	a->keys = k;
	k += a->nkeys;
	if (td_auth_hex32(hex, hlen, k->hash))
		return -EINVAL;
	k->name = strndup(name, nlen);
	if (!k->name)
		return -ENOMEM;
	a->nkeys++;
	return 0;
}

/* each line of path without its newline: fn(a, line, len, lineno); '#' and empty lines skipped */
static int td_auth_read_lines(struct td_auth *a, const char *path,
			      int (*fn)(struct td_auth *a, char *line, size_t len))
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int err = 0;
	FILE *f;

	f = fopen(path, "re");
	if (!f)
		return -errno;
	while ((n = getline(&line, &cap, f)) >= 0) {
		size_t len = (size_t)n;

		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (!len || line[0] == '#')
			continue;
		err = fn(a, line, len);
		if (err)
			goto cleanup;
	}
	if (ferror(f))
		err = -EIO;
cleanup:
	if (line) {
		OPENSSL_cleanse(line, cap);
		free(line);
	}
	fclose(f);
	return err;
}

/* keys file line: "name sha256-hex" (one or more spaces or tabs between) */
static int td_auth_key_line(struct td_auth *a, char *line, size_t len)
{
	size_t nlen = strcspn(line, " \t"), h;

	if (nlen == len)
		return -EINVAL;
	h = nlen + strspn(line + nlen, " \t");
	return td_auth_add_key(a, line, nlen, line + h, len - h);
}

/* the hash methods we accept, and libxcrypt must consider the setting sound */
static bool td_auth_hash_ok(const char *hash)
{
	if (strncmp(hash, "$2y$", 4) && strncmp(hash, "$2b$", 4) && strncmp(hash, "$6$", 3) &&
	    strncmp(hash, "$y$", 3))
		return false;
	return crypt_checksalt(hash) == CRYPT_SALT_OK;
}

/* users file line: "user:hash" */
static int td_auth_user_line(struct td_auth *a, char *line, size_t len)
{
	char *colon = memchr(line, ':', len);
	struct td_auth_user *u;
	size_t ulen;

	if (!colon)
		return -EINVAL;
	ulen = (size_t)(colon - line);
	if (!ulen || ulen >= TD_AUTH_IDENTITY_MAX || !td_auth_text_ok(line, ulen, false) ||
	    !td_auth_hash_ok(colon + 1) || strchr(colon + 1, ':'))
		return -EINVAL;
	for (size_t i = 0; i < a->nusers; i++)
		if (strlen(a->users[i].user) == ulen && !memcmp(a->users[i].user, line, ulen))
			return -EEXIST;
	if (a->nusers >= TD_AUTH_MAX_ENTRIES)
		return -E2BIG;
	u = realloc(a->users, (a->nusers + 1) * sizeof(*u));
	if (!u)
		return -ENOMEM;
	a->users = u;
	u += a->nusers;
	u->user = strndup(line, ulen);
	u->hash = strdup(colon + 1);
	if (!u->user || !u->hash) {
		free(u->user);
		free(u->hash);
		return -ENOMEM;
	}
	a->nusers++;
	return 0;
}

void td_auth_free(struct td_auth *a)
{
	if (!a)
		return;
	td_jwt_verifier_free(a->jwt);
	for (size_t i = 0; i < a->nkeys; i++)
		free(a->keys[i].name);
	for (size_t i = 0; i < a->nusers; i++) {
		free(a->users[i].user);
		free(a->users[i].hash);
	}
	free(a->keys);
	free(a->users);
	free(a->realm);
	free(a->key_header);
	free(a);
}

struct td_auth *td_auth_new(const struct td_auth_config *cfg)
{
	const char *realm = cfg && cfg->realm ? cfg->realm : TD_AUTH_DEF_REALM;
	struct td_auth *a = NULL;
	int err = -EINVAL;

	if (!cfg || !td_auth_text_ok(realm, strlen(realm), false))
		goto cleanup;
	a = calloc(1, sizeof(*a));
	if (!a || !(a->realm = strdup(realm))) {
		err = -ENOMEM;
		goto cleanup;
	}
	a->kind = cfg->kind;
	switch (cfg->kind) {
	case TD_AUTH_JWT:
		a->jwt = td_jwt_verifier_new(&cfg->jwt);
		err = a->jwt ? 0 : -errno;
		break;
	case TD_AUTH_API_KEY: {
		const char *h = cfg->key_header ? cfg->key_header : TD_AUTH_DEF_KEY_HEADER;

		err = -EINVAL;
		if (!*h)
			goto cleanup;
		for (const char *p = h; *p; p++)
			if (!td_http_is_tchar((unsigned char)*p))
				goto cleanup;
		a->key_header = strdup(h);
		if (!a->key_header) {
			err = -ENOMEM;
			goto cleanup;
		}
		err = 0;
		for (size_t i = 0; i < cfg->nkeys && !err; i++)
			err = cfg->keys[i].name && cfg->keys[i].sha256 ?
			      td_auth_add_key(a, cfg->keys[i].name, strlen(cfg->keys[i].name),
					      cfg->keys[i].sha256, strlen(cfg->keys[i].sha256)) :
			      -EINVAL;
		if (!err && cfg->keys_file)
			err = td_auth_read_lines(a, cfg->keys_file, td_auth_key_line);
		if (!err && !a->nkeys)
			err = -ENOKEY;
		break;
	}
	case TD_AUTH_BASIC:
		err = -EINVAL;
		if (!cfg->users_file)
			goto cleanup;
		err = td_auth_read_lines(a, cfg->users_file, td_auth_user_line);
		if (!err && !a->nusers)
			err = -ENOKEY;
		break;
	default:
		err = -EINVAL;
	}
cleanup:
	if (err) {
		td_auth_free(a);
		errno = -err;
		return NULL;
	}
	return a;
}

/* ---- checks ---- */

static enum td_auth_reason td_auth_set(struct td_auth_result *res, enum td_auth_reason r)
{
	res->reason = r;
	return r;
}

static enum td_auth_reason td_auth_api_key(const struct td_auth *a, const char *val, size_t len,
					   struct td_auth_result *res)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t found = a->nkeys;

	if (!len)
		return td_auth_set(res, TD_AUTH_MISSING);
	if (!EVP_Digest(val, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != TD_AUTH_SHA256_LEN)
		return td_auth_set(res, TD_AUTH_INTERNAL);
	/* every hash is compared, in constant time each: no early exit */
	for (size_t i = 0; i < a->nkeys; i++)
		if (!CRYPTO_memcmp(md, a->keys[i].hash, TD_AUTH_SHA256_LEN))
			found = i;
	if (found == a->nkeys)
		return td_auth_set(res, TD_AUTH_UNKNOWN_KEY);
	snprintf(res->identity, sizeof(res->identity), "%s", a->keys[found].name);
	return td_auth_set(res, TD_AUTH_OK);
}

/* "<scheme> 1*SP <rest>": pointer to rest (non-empty) or NULL */
static const char *td_auth_scheme(const char *val, size_t len, const char *scheme, size_t *rest)
{
	size_t n = strlen(scheme), i;

	if (len <= n || strncasecmp(val, scheme, n) || val[n] != ' ')
		return NULL;
	for (i = n; i < len && val[i] == ' '; i++)
		;
	if (i == len)
		return NULL;
	*rest = len - i;
	return val + i;
}

/* crypt_r(pw, hash) == hash, compared in constant time; 1 match, 0 no, -ENOMEM */
static int td_auth_crypt_match(const char *pw, const char *hash)
{
	struct crypt_data *cd;
	const char *out;
	size_t hlen = strlen(hash);
	int ok;

	cd = calloc(1, sizeof(*cd));
	if (!cd)
		return -ENOMEM;
	out = crypt_r(pw, hash, cd);
	ok = out && out[0] != '*' && strlen(out) == hlen && !CRYPTO_memcmp(out, hash, hlen);
	OPENSSL_cleanse(cd, sizeof(*cd));
	free(cd);
	return ok;
}

static enum td_auth_reason td_auth_basic(const struct td_auth *a, const char *val, size_t len,
					 struct td_auth_result *res)
{
	enum td_auth_reason r = TD_AUTH_MALFORMED;
	const struct td_auth_user *u = NULL;
	unsigned char *dec = NULL;
	const char *b64, *colon;
	size_t blen = 0, pad = 0, dlen, ulen;
	int d, m;

	b64 = td_auth_scheme(val, len, "Basic", &blen);
	if (!b64)
		return td_auth_set(res, TD_AUTH_MALFORMED);
	if (blen % 4)
		return td_auth_set(res, TD_AUTH_MALFORMED);
	while (pad < 2 && b64[blen - 1 - pad] == '=')
		pad++;
	for (size_t i = 0; i < blen - pad; i++) {
		unsigned char c = (unsigned char)b64[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '+' || c == '/'))
			return td_auth_set(res, TD_AUTH_MALFORMED);
	}
	dec = malloc(blen / 4 * 3 + 1);
	if (!dec)
		return td_auth_set(res, TD_AUTH_INTERNAL);
	d = EVP_DecodeBlock(dec, (const unsigned char *)b64, (int)blen);
	if (d < 0 || (size_t)d < pad)
		goto cleanup;
	dlen = (size_t)d - pad;
	dec[dlen] = '\0';
	/* user-id ":" password; no controls (RFC 7617 2), so no NUL either */
	colon = memchr(dec, ':', dlen);
	if (!colon || !td_auth_text_ok((const char *)dec, dlen, true))
		goto cleanup;
	ulen = (size_t)(colon - (const char *)dec);
	if (!ulen)
		goto cleanup;
	for (size_t i = 0; i < a->nusers && !u; i++)
		if (strlen(a->users[i].user) == ulen && !memcmp(a->users[i].user, dec, ulen))
			u = &a->users[i];
	/* an unknown user costs one hash too, so timing does not tell users apart */
	m = td_auth_crypt_match(colon + 1, u ? u->hash : a->users[0].hash);
	if (m < 0) {
		r = TD_AUTH_INTERNAL;
	} else if (!u) {
		r = TD_AUTH_BAD_USER;
	} else if (!m) {
		r = TD_AUTH_BAD_PASSWORD;
	} else {
		snprintf(res->identity, sizeof(res->identity), "%s", u->user);
		r = TD_AUTH_OK;
	}
cleanup:
	OPENSSL_cleanse(dec, blen / 4 * 3 + 1);
	free(dec);
	return td_auth_set(res, r);
}

static enum td_auth_reason td_auth_bearer(const struct td_auth *a, const char *val, size_t len,
					  time_t now, struct td_auth_result *res)
{
	struct td_jwt_claims claims;
	const char *tok;
	size_t tlen = 0;

	tok = td_auth_scheme(val, len, "Bearer", &tlen);
	if (!tok)
		return td_auth_set(res, TD_AUTH_MALFORMED);
	res->jwt = td_jwt_verify(a->jwt, tok, tlen, now, &claims);
	if (res->jwt == TD_JWT_INTERNAL)
		return td_auth_set(res, TD_AUTH_INTERNAL);
	if (res->jwt != TD_JWT_OK)
		return td_auth_set(res, TD_AUTH_BAD_TOKEN);
	memcpy(res->identity, claims.sub, sizeof(claims.sub));
	return td_auth_set(res, TD_AUTH_OK);
}

enum td_auth_reason td_auth_check_value(const struct td_auth *a, const char *val, size_t len,
					time_t now, struct td_auth_result *res)
{
	memset(res, 0, sizeof(*res));
	if (!val || !len)
		return td_auth_set(res, TD_AUTH_MISSING);
	if (len > TD_AUTH_MAX_CRED)
		return td_auth_set(res, TD_AUTH_MALFORMED);
	switch (a->kind) {
	case TD_AUTH_JWT:
		return td_auth_bearer(a, val, len, now, res);
	case TD_AUTH_API_KEY:
		return td_auth_api_key(a, val, len, res);
	case TD_AUTH_BASIC:
		return td_auth_basic(a, val, len, res);
	}
	return td_auth_set(res, TD_AUTH_INTERNAL);
}

enum td_auth_reason td_auth_check(const struct td_auth *a, const struct td_http_msg *m,
				  const char *buf, time_t now, struct td_auth_result *res)
{
	const char *name = a->kind == TD_AUTH_API_KEY ? a->key_header : "Authorization";
	int i;

	memset(res, 0, sizeof(*res));
	i = td_http_header_find(m, buf, name, 0);
	if (i < 0)
		return td_auth_set(res, TD_AUTH_MISSING);
	/* two credentials fields: ambiguous, refuse rather than pick one */
	if (td_http_header_find(m, buf, name, (unsigned int)i + 1) >= 0)
		return td_auth_set(res, TD_AUTH_MALFORMED);
	return td_auth_check_value(a, td_http_ptr(buf, m->hdr[i].value), m->hdr[i].value.len, now,
				   res);
}

int td_auth_challenge(const struct td_auth *a, const struct td_auth_result *res, char *out,
		      size_t size)
{
	switch (a->kind) {
	case TD_AUTH_JWT:
		/* RFC 6750 3: no error attribute when the request had no token at all */
		if (res->reason == TD_AUTH_MISSING)
			return snprintf(out, size, "Bearer realm=\"%s\"", a->realm);
		return snprintf(out, size,
				"Bearer realm=\"%s\", error=\"invalid_token\", error_description=\"%s\"",
				a->realm, td_auth_reason_str(res));
	case TD_AUTH_BASIC:
		return snprintf(out, size, "Basic realm=\"%s\", charset=\"UTF-8\"", a->realm);
	case TD_AUTH_API_KEY:
		return snprintf(out, size, "ApiKey realm=\"%s\", header=\"%s\"", a->realm,
				a->key_header);
	}
	return -EINVAL;
}
