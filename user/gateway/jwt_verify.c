/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* JWT (compact JWS) verification with OpenSSL 3 EVP and json-c: pinned algorithm, exp/nbf/iss/aud. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "jwt_verify.h"

#define TD_JWT_MAX_FILE		(1024 * 1024)	/* secret, PEM and JWKS files */
#define TD_JWT_MAX_KEYS		64		/* keys kept from one JWKS */
#define TD_JWT_JSON_DEPTH	16
#define TD_JWT_HS256_LEN	32
#define TD_JWT_ES256_LEN	64		/* raw r || s, 32 bytes each (RFC 7518 3.4) */
#define TD_JWT_RSA_MIN_BITS	2048

/* one public key; kid NULL when the source had none (PEM file, JWKS entry without kid) */
struct td_jwt_key {
	char *kid;
	EVP_PKEY *pkey;
};

struct td_jwt_verifier {
	enum td_jwt_alg alg;
	unsigned char *secret;		/* HS256 */
	size_t secret_len;
	struct td_jwt_key *keys;	/* RS256 / ES256 */
	size_t nkeys;
	bool jwks;			/* keys came from a JWKS: kid selects */
	char *issuer;
	char *audience;
	unsigned int leeway;
	unsigned int max_len;
	bool exp_optional;
};

static const char *const td_jwt_reasons[TD_JWT_REASON_MAX] = {
	[TD_JWT_OK]		= "ok",
	[TD_JWT_MALFORMED]	= "malformed token",
	[TD_JWT_TOO_LONG]	= "token too long",
	[TD_JWT_BAD_ALG]	= "algorithm not allowed",
	[TD_JWT_UNSUPPORTED]	= "unsupported critical header",
	[TD_JWT_UNKNOWN_KID]	= "unknown key id",
	[TD_JWT_BAD_SIGNATURE]	= "invalid signature",
	[TD_JWT_EXPIRED]	= "token expired",
	[TD_JWT_NOT_YET_VALID]	= "token not yet valid",
	[TD_JWT_NO_EXP]		= "token has no expiry",
	[TD_JWT_BAD_ISSUER]	= "invalid issuer",
	[TD_JWT_BAD_AUDIENCE]	= "invalid audience",
	[TD_JWT_BAD_SUBJECT]	= "invalid subject",
	[TD_JWT_INTERNAL]	= "internal error",
};

const char *td_jwt_reason_str(enum td_jwt_reason r)
{
	if ((unsigned int)r >= TD_JWT_REASON_MAX)
		return "unknown";
	return td_jwt_reasons[r];
}

const char *td_jwt_alg_name(enum td_jwt_alg alg)
{
	switch (alg) {
	case TD_JWT_HS256: return "HS256";
	case TD_JWT_RS256: return "RS256";
	case TD_JWT_ES256: return "ES256";
	default: return NULL;
	}
}

enum td_jwt_alg td_jwt_alg_parse(const char *name)
{
	if (!name)
		return TD_JWT_ALG_NONE;
	if (!strcmp(name, "HS256"))
		return TD_JWT_HS256;
	if (!strcmp(name, "RS256"))
		return TD_JWT_RS256;
	if (!strcmp(name, "ES256"))
		return TD_JWT_ES256;
	return TD_JWT_ALG_NONE;
}

void td_jwt_config_default(struct td_jwt_config *c, enum td_jwt_alg alg)
{
	memset(c, 0, sizeof(*c));
	c->alg = alg;
	c->leeway = TD_JWT_DEF_LEEWAY;
	c->max_len = TD_JWT_DEF_MAX_LEN;
}

/* ---- base64url ---- */

static int td_b64url_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

long td_jwt_b64url_decode(const char *in, size_t len, unsigned char *out, size_t outsz)
{
	unsigned char tmp[1024];	/* standard alphabet, padded to a multiple of 4 */
	unsigned char dec[768];
	size_t rem = len % 4, full = len - rem, need, o = 0;
	int v = 0;

	if (rem == 1)
		return -EINVAL;
	need = full / 4 * 3 + (rem ? rem - 1 : 0);
	if (need > outsz)
		return -ENOSPC;
	for (size_t i = 0; i < len; i++) {
		v = td_b64url_val((unsigned char)in[i]);
		if (v < 0)
			return -EINVAL;
	}
	/* the unused low bits of the last character must be zero (one encoding per value) */
	if ((rem == 2 && (v & 0x0f)) || (rem == 3 && (v & 0x03)))
		return -EINVAL;

	for (size_t i = 0; i < len;) {
		size_t n = len - i > sizeof(tmp) ? sizeof(tmp) : len - i;
		size_t padded = (n + 3) & ~(size_t)3;
		int d;

		for (size_t j = 0; j < n; j++) {
			char c = in[i + j];

			tmp[j] = c == '-' ? '+' : c == '_' ? '/' : (unsigned char)c;
		}
		for (size_t j = n; j < padded; j++)
			tmp[j] = '=';
		/* EVP_DecodeBlock counts padding as zero bytes: drop one per '=' */
		d = EVP_DecodeBlock(dec, tmp, (int)padded);
		if (d < 0 || (size_t)d != padded / 4 * 3)
			return -EINVAL;
		memcpy(out + o, dec, (size_t)d - (padded - n));
		o += (size_t)d - (padded - n);
		i += n;
	}
	return (long)o;
}

long td_jwt_b64url_encode(const unsigned char *in, size_t len, char *out, size_t outsz)
{
	size_t need = 4 * ((len + 2) / 3) + 1;
	int n;

	if (outsz < need || len > INT32_MAX / 2)
		return -ENOSPC;
	n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
	for (int i = 0; i < n; i++) {
		if (out[i] == '+')
			out[i] = '-';
		else if (out[i] == '/')
			out[i] = '_';
	}
	return n;
}

/* ---- loading ---- */

/* whole file into a NUL-terminated heap buffer; 0 or -errno */
static int td_jwt_read_file(const char *path, unsigned char **buf, size_t *len)
{
	unsigned char *b = NULL;
	struct stat st;
	size_t n = 0;
	FILE *f;
	int err = 0;

	f = fopen(path, "rb");
	if (!f)
		return -errno;
	if (fstat(fileno(f), &st)) {
		err = -errno;
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > TD_JWT_MAX_FILE) {
		err = -EINVAL;
		goto cleanup;
	}
	b = malloc((size_t)st.st_size + 1);
	if (!b) {
		err = -ENOMEM;
		goto cleanup;
	}
	n = fread(b, 1, (size_t)st.st_size, f);
	if (ferror(f)) {
		err = -EIO;
		goto cleanup;
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	b = NULL;
cleanup:
	if (b) {
		OPENSSL_cleanse(b, (size_t)st.st_size);
		free(b);
	}
	fclose(f);
	return err;
}

/* strict JSON text to an object (NULL if not exactly one JSON object, trailing whitespace aside) */
static json_object *td_jwt_json_object(const char *s, size_t len)
{
	json_tokener *tok;
	json_object *o = NULL;
	size_t end;

	tok = json_tokener_new_ex(TD_JWT_JSON_DEPTH);
	if (!tok)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, s, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success)
		goto fail;
	end = json_tokener_get_parse_end(tok);
	for (; end < len; end++)
		if (s[end] != ' ' && s[end] != '\t' && s[end] != '\r' && s[end] != '\n')
			goto fail;
	if (!json_object_is_type(o, json_type_object))
		goto fail;
	json_tokener_free(tok);
	return o;
fail:
	json_object_put(o);
	json_tokener_free(tok);
	return NULL;
}

/* key acceptable for alg: RSA >= 2048 bits for RS256, EC P-256 for ES256; 0 or -EINVAL */
static int td_jwt_key_check(EVP_PKEY *pkey, enum td_jwt_alg alg)
{
	char group[64];
	EVP_PKEY_CTX *ctx;
	int ok;

	if (alg == TD_JWT_RS256) {
		if (!EVP_PKEY_is_a(pkey, "RSA") || EVP_PKEY_get_bits(pkey) < TD_JWT_RSA_MIN_BITS)
			return -EINVAL;
	} else if (alg == TD_JWT_ES256) {
		if (!EVP_PKEY_is_a(pkey, "EC") ||
		    !EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
						    sizeof(group), NULL) ||
		    (strcmp(group, "prime256v1") && strcmp(group, "P-256")))
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	if (!ctx)
		return -ENOMEM;
	ok = EVP_PKEY_public_check(ctx);
	EVP_PKEY_CTX_free(ctx);
	return ok == 1 ? 0 : -EINVAL;
}

static int td_jwt_add_key(struct td_jwt_verifier *v, EVP_PKEY *pkey, const char *kid)
{
	struct td_jwt_key *k;

	if (v->nkeys >= TD_JWT_MAX_KEYS)
		return -E2BIG;
	for (size_t i = 0; kid && i < v->nkeys; i++)
		if (v->keys[i].kid && !strcmp(v->keys[i].kid, kid))
			return -EEXIST;
	k = realloc(v->keys, (v->nkeys + 1) * sizeof(*k));
	if (!k)
		return -ENOMEM;
	v->keys = k;
	k[v->nkeys].kid = NULL;
	if (kid) {
		k[v->nkeys].kid = strdup(kid);
		if (!k[v->nkeys].kid)
			return -ENOMEM;
	}
	k[v->nkeys].pkey = pkey;
	v->nkeys++;
	return 0;
}

static int td_jwt_load_pem(struct td_jwt_verifier *v, const char *path)
{
	EVP_PKEY *pkey = NULL;
	BIO *bio;
	int err;

	bio = BIO_new_file(path, "r");
	if (!bio)
		return errno ? -errno : -ENOENT;
	pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (!pkey) {
		err = -EINVAL;
		goto cleanup;
	}
	err = td_jwt_key_check(pkey, v->alg);
	if (err)
		goto cleanup;
	err = td_jwt_add_key(v, pkey, NULL);
	if (!err)
		pkey = NULL;
cleanup:
	EVP_PKEY_free(pkey);
	ERR_clear_error();
	return err;
}

/* base64url member of a JWK into a heap buffer; 0 or -EINVAL / -ENOMEM */
static int td_jwk_bytes(json_object *jwk, const char *name, unsigned char **out, size_t *outlen)
{
	json_object *m;
	const char *s;
	size_t len;
	long n;

	if (!json_object_object_get_ex(jwk, name, &m) || !json_object_is_type(m, json_type_string))
		return -EINVAL;
	s = json_object_get_string(m);
	len = (size_t)json_object_get_string_len(m);
	if (!len)
		return -EINVAL;
	*out = malloc(len);
	if (!*out)
		return -ENOMEM;
	n = td_jwt_b64url_decode(s, len, *out, len);
	if (n <= 0) {
		free(*out);
		*out = NULL;
		return -EINVAL;
	}
	*outlen = (size_t)n;
	return 0;
}

/* EVP_PKEY from an RSA (n, e) or EC P-256 (x, y) JWK; 0 or -errno */
static int td_jwk_pkey(json_object *jwk, enum td_jwt_alg alg, EVP_PKEY **out)
{
	unsigned char *a = NULL, *b = NULL, pt[1 + 2 * 32];
	size_t alen = 0, blen = 0;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	BIGNUM *n = NULL, *e = NULL;
	EVP_PKEY *pkey = NULL;
	int err = -EINVAL;

	bld = OSSL_PARAM_BLD_new();
	if (!bld) {
		err = -ENOMEM;
		goto cleanup;
	}
	if (alg == TD_JWT_RS256) {
		err = td_jwk_bytes(jwk, "n", &a, &alen);
		if (!err)
			err = td_jwk_bytes(jwk, "e", &b, &blen);
		if (err)
			goto cleanup;
		err = -EINVAL;
		n = BN_bin2bn(a, (int)alen, NULL);
		e = BN_bin2bn(b, (int)blen, NULL);
		if (!n || !e || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
			goto cleanup;
		ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	} else {
		json_object *crv;

		if (!json_object_object_get_ex(jwk, "crv", &crv) ||
		    !json_object_is_type(crv, json_type_string) ||
		    strcmp(json_object_get_string(crv), "P-256"))
			goto cleanup;
		err = td_jwk_bytes(jwk, "x", &a, &alen);
		if (!err)
			err = td_jwk_bytes(jwk, "y", &b, &blen);
		if (err)
			goto cleanup;
		err = -EINVAL;
		if (alen != 32 || blen != 32)
			goto cleanup;
		pt[0] = 0x04;	/* uncompressed point */
		memcpy(pt + 1, a, 32);
		memcpy(pt + 33, b, 32);
		if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
		    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt)))
			goto cleanup;
		ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	}
	params = OSSL_PARAM_BLD_to_param(bld);
	if (!ctx || !params || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto cleanup;
	err = td_jwt_key_check(pkey, alg);
	if (err)
		goto cleanup;
	*out = pkey;
	pkey = NULL;
cleanup:
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	free(a);
	free(b);
	ERR_clear_error();
	return err;
}

/* optional string member: 1 present (in *s), 0 absent, -EINVAL present but not a string */
static int td_json_str(json_object *o, const char *name, const char **s)
{
	json_object *m;

	if (!json_object_object_get_ex(o, name, &m))
		return 0;
	if (!json_object_is_type(m, json_type_string))
		return -EINVAL;
	*s = json_object_get_string(m);
	return 1;
}

/*
 * JWKS: keep every key usable with the configured algorithm (kty RSA for RS256, EC P-256 for
 * ES256; "use" absent or "sig"; "alg" absent or equal). Others are skipped; a usable-looking key
 * that does not parse, a duplicate kid or no usable key at all is an error.
 */
static int td_jwt_load_jwks(struct td_jwt_verifier *v, const char *path)
{
	const char *want_kty = v->alg == TD_JWT_RS256 ? "RSA" : "EC";
	json_object *root = NULL, *keys;
	unsigned char *text = NULL;
	size_t len = 0, n;
	int err;

	err = td_jwt_read_file(path, &text, &len);
	if (err)
		return err;
	err = -EINVAL;
	root = td_jwt_json_object((const char *)text, len);
	if (!root || !json_object_object_get_ex(root, "keys", &keys) ||
	    !json_object_is_type(keys, json_type_array))
		goto cleanup;
	n = json_object_array_length(keys);
	for (size_t i = 0; i < n; i++) {
		json_object *jwk = json_object_array_get_idx(keys, i);
		const char *kty = NULL, *use = NULL, *alg = NULL, *kid = NULL;
		EVP_PKEY *pkey = NULL;

		err = -EINVAL;
		if (!json_object_is_type(jwk, json_type_object) || td_json_str(jwk, "kty", &kty) != 1 ||
		    td_json_str(jwk, "use", &use) < 0 || td_json_str(jwk, "alg", &alg) < 0 ||
		    td_json_str(jwk, "kid", &kid) < 0)
			goto cleanup;
		if (strcmp(kty, want_kty) || (use && strcmp(use, "sig")) ||
		    (alg && strcmp(alg, td_jwt_alg_name(v->alg))))
			continue;
		err = td_jwk_pkey(jwk, v->alg, &pkey);
		if (err)
			goto cleanup;
		err = td_jwt_add_key(v, pkey, kid);
		if (err) {
			EVP_PKEY_free(pkey);
			goto cleanup;
		}
	}
	err = v->nkeys ? 0 : -ENOKEY;
cleanup:
	json_object_put(root);
	free(text);
	return err;
}

static int td_jwt_load_secret(struct td_jwt_verifier *v, const char *path)
{
	unsigned char *b = NULL;
	size_t len = 0;
	int err;

	err = td_jwt_read_file(path, &b, &len);
	if (err)
		return err;
	if (len && b[len - 1] == '\n')
		len--;
	if (len && b[len - 1] == '\r')
		len--;
	if (len < TD_JWT_MIN_SECRET) {
		OPENSSL_cleanse(b, len);
		free(b);
		return -EINVAL;
	}
	v->secret = b;
	v->secret_len = len;
	return 0;
}

void td_jwt_verifier_free(struct td_jwt_verifier *v)
{
	if (!v)
		return;
	if (v->secret) {
		OPENSSL_cleanse(v->secret, v->secret_len);
		free(v->secret);
	}
	for (size_t i = 0; i < v->nkeys; i++) {
		EVP_PKEY_free(v->keys[i].pkey);
		free(v->keys[i].kid);
	}
	free(v->keys);
	free(v->issuer);
	free(v->audience);
	free(v);
}

struct td_jwt_verifier *td_jwt_verifier_new(const struct td_jwt_config *cfg)
{
	struct td_jwt_verifier *v = NULL;
	int err = -EINVAL;

	if (!cfg || !td_jwt_alg_name(cfg->alg))
		goto cleanup;
	if (cfg->alg == TD_JWT_HS256 ? (!cfg->secret_file || cfg->key_file || cfg->jwks_file) :
	    (cfg->secret_file || !cfg->key_file == !cfg->jwks_file))
		goto cleanup;
	v = calloc(1, sizeof(*v));
	if (!v) {
		err = -ENOMEM;
		goto cleanup;
	}
	v->alg = cfg->alg;
	v->leeway = cfg->leeway;
	v->max_len = cfg->max_len ? cfg->max_len : TD_JWT_DEF_MAX_LEN;
	v->exp_optional = cfg->exp_optional;
	if ((cfg->issuer && !(v->issuer = strdup(cfg->issuer))) ||
	    (cfg->audience && !(v->audience = strdup(cfg->audience)))) {
		err = -ENOMEM;
		goto cleanup;
	}
	if (cfg->alg == TD_JWT_HS256) {
		err = td_jwt_load_secret(v, cfg->secret_file);
	} else if (cfg->key_file) {
		err = td_jwt_load_pem(v, cfg->key_file);
	} else {
		v->jwks = true;
		err = td_jwt_load_jwks(v, cfg->jwks_file);
	}
cleanup:
	if (err) {
		td_jwt_verifier_free(v);
		errno = -err;
		return NULL;
	}
	return v;
}

size_t td_jwt_verifier_nkeys(const struct td_jwt_verifier *v)
{
	return v->alg == TD_JWT_HS256 ? (v->secret ? 1 : 0) : v->nkeys;
}

/* ---- verification ---- */

static enum td_jwt_reason td_jwt_check_hs256(const struct td_jwt_verifier *v, const char *in,
					     size_t inlen, const unsigned char *sig, size_t siglen)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	size_t maclen = 0;

	if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, v->secret, v->secret_len,
		       (const unsigned char *)in, inlen, mac, sizeof(mac), &maclen)) {
		ERR_clear_error();
		return TD_JWT_INTERNAL;
	}
	if (siglen != TD_JWT_HS256_LEN || maclen != TD_JWT_HS256_LEN ||
	    CRYPTO_memcmp(mac, sig, TD_JWT_HS256_LEN))
		return TD_JWT_BAD_SIGNATURE;
	return TD_JWT_OK;
}

static enum td_jwt_reason td_jwt_check_pkey(EVP_PKEY *pkey, enum td_jwt_alg alg, const char *in,
					    size_t inlen, const unsigned char *sig, size_t siglen)
{
	enum td_jwt_reason r = TD_JWT_INTERNAL;
	unsigned char *der = NULL;
	const unsigned char *s = sig;
	EVP_MD_CTX *md = NULL;
	ECDSA_SIG *es = NULL;
	BIGNUM *br = NULL, *bs = NULL;
	int derlen;

	if (alg == TD_JWT_ES256) {
		/* JWS carries raw r || s (RFC 7518 3.4); EVP wants DER */
		if (siglen != TD_JWT_ES256_LEN)
			return TD_JWT_BAD_SIGNATURE;
		es = ECDSA_SIG_new();
		br = BN_bin2bn(sig, 32, NULL);
		bs = BN_bin2bn(sig + 32, 32, NULL);
		if (!es || !br || !bs || !ECDSA_SIG_set0(es, br, bs))
			goto cleanup;
		br = bs = NULL;
		derlen = i2d_ECDSA_SIG(es, &der);
		if (derlen <= 0)
			goto cleanup;
		s = der;
		siglen = (size_t)derlen;
	}
	md = EVP_MD_CTX_new();
	if (!md || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) != 1)
		goto cleanup;
	r = EVP_DigestVerify(md, s, siglen, (const unsigned char *)in, inlen) == 1 ?
	    TD_JWT_OK : TD_JWT_BAD_SIGNATURE;
cleanup:
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	BN_free(br);
	BN_free(bs);
	ERR_clear_error();
	return r;
}

/* optional NumericDate: 1 present, 0 absent, -1 not a finite number */
static int td_jwt_numeric(json_object *o, const char *name, double *out)
{
	json_object *m;

	if (!json_object_object_get_ex(o, name, &m))
		return 0;
	if (json_object_is_type(m, json_type_int))
		*out = (double)json_object_get_int64(m);
	else if (json_object_is_type(m, json_type_double))
		*out = json_object_get_double(m);
	else
		return -1;
	return isfinite(*out) ? 1 : -1;
}

static enum td_jwt_reason td_jwt_check_claims(const struct td_jwt_verifier *v, json_object *p,
					      time_t now, struct td_jwt_claims *claims)
{
	double exp = 0, nbf = 0, t = (double)now;
	const char *iss = NULL, *sub = NULL;
	json_object *aud;
	int rc;

	rc = td_jwt_numeric(p, "exp", &exp);
	if (rc < 0)
		return TD_JWT_MALFORMED;
	if (rc == 0 && !v->exp_optional)
		return TD_JWT_NO_EXP;
	if (rc == 1 && t >= exp + v->leeway)
		return TD_JWT_EXPIRED;
	rc = td_jwt_numeric(p, "nbf", &nbf);
	if (rc < 0)
		return TD_JWT_MALFORMED;
	if (rc == 1 && t + v->leeway < nbf)
		return TD_JWT_NOT_YET_VALID;

	if (v->issuer) {
		if (td_json_str(p, "iss", &iss) != 1 || strcmp(iss, v->issuer))
			return TD_JWT_BAD_ISSUER;
	}
	if (v->audience) {
		bool found = false;

		if (!json_object_object_get_ex(p, "aud", &aud))
			return TD_JWT_BAD_AUDIENCE;
		if (json_object_is_type(aud, json_type_string)) {
			found = !strcmp(json_object_get_string(aud), v->audience);
		} else if (json_object_is_type(aud, json_type_array)) {
			size_t n = json_object_array_length(aud);

			for (size_t i = 0; i < n && !found; i++) {
				json_object *a = json_object_array_get_idx(aud, i);

				found = json_object_is_type(a, json_type_string) &&
					!strcmp(json_object_get_string(a), v->audience);
			}
		}
		if (!found)
			return TD_JWT_BAD_AUDIENCE;
	}

	rc = td_json_str(p, "sub", &sub);
	if (rc < 0)
		return TD_JWT_BAD_SUBJECT;
	if (rc == 1) {
		size_t n = strlen(sub);

		/* it may become a request header: no control characters, bounded */
		if (n >= TD_JWT_SUB_MAX || n != (size_t)json_object_get_string_len(
					json_object_object_get(p, "sub")))
			return TD_JWT_BAD_SUBJECT;
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)sub[i] < 0x20 || sub[i] == 0x7f)
				return TD_JWT_BAD_SUBJECT;
	}
	if (claims) {
		memset(claims, 0, sizeof(*claims));
		if (sub)
			memcpy(claims->sub, sub, strlen(sub) + 1);
		claims->exp = (long long)exp;
	}
	return TD_JWT_OK;
}

enum td_jwt_reason td_jwt_verify(const struct td_jwt_verifier *v, const char *token, size_t len,
				 time_t now, struct td_jwt_claims *claims)
{
	enum td_jwt_reason r = TD_JWT_MALFORMED;
	json_object *hdr = NULL, *pay = NULL;
	const char *d1, *d2, *alg = NULL, *kid = NULL;
	unsigned char *buf = NULL;
	EVP_PKEY *pkey = NULL;
	size_t hlen, plen, slen;
	long n;

	if (!v || !token)
		return TD_JWT_INTERNAL;
	if (len > v->max_len)
		return TD_JWT_TOO_LONG;
	d1 = memchr(token, '.', len);
	if (!d1)
		return TD_JWT_MALFORMED;
	d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token));
	if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
		return TD_JWT_MALFORMED;
	hlen = (size_t)(d1 - token);
	plen = (size_t)(d2 - d1 - 1);
	slen = len - (size_t)(d2 + 1 - token);
	if (!hlen || !plen || !slen)
		return TD_JWT_MALFORMED;
	buf = malloc(len);	/* decoded parts are shorter than their text */
	if (!buf)
		return TD_JWT_INTERNAL;

	/* header: alg pinned by config, no crit, kid only selects a JWKS key */
	n = td_jwt_b64url_decode(token, hlen, buf, len);
	if (n <= 0 || !(hdr = td_jwt_json_object((const char *)buf, (size_t)n)))
		goto cleanup;
	if (td_json_str(hdr, "alg", &alg) != 1 || td_json_str(hdr, "kid", &kid) < 0)
		goto cleanup;
	if (strcmp(alg, td_jwt_alg_name(v->alg))) {
		r = TD_JWT_BAD_ALG;
		goto cleanup;
	}
	if (json_object_object_get_ex(hdr, "crit", NULL)) {
		r = TD_JWT_UNSUPPORTED;
		goto cleanup;
	}
	if (v->alg != TD_JWT_HS256) {
		if (!v->jwks) {
			pkey = v->keys[0].pkey;
		} else if (kid) {
			for (size_t i = 0; i < v->nkeys && !pkey; i++)
				if (v->keys[i].kid && !strcmp(v->keys[i].kid, kid))
					pkey = v->keys[i].pkey;
		} else if (v->nkeys == 1) {
			pkey = v->keys[0].pkey;
		}
		if (!pkey) {
			r = TD_JWT_UNKNOWN_KID;
			goto cleanup;
		}
	}

	/* signature over "header.payload" before the payload is even decoded */
	n = td_jwt_b64url_decode(d2 + 1, slen, buf, len);
	if (n <= 0)
		goto cleanup;
	if (v->alg == TD_JWT_HS256)
		r = td_jwt_check_hs256(v, token, (size_t)(d2 - token), buf, (size_t)n);
	else
		r = td_jwt_check_pkey(pkey, v->alg, token, (size_t)(d2 - token), buf, (size_t)n);
	if (r != TD_JWT_OK)
		goto cleanup;

	r = TD_JWT_MALFORMED;
	n = td_jwt_b64url_decode(d1 + 1, plen, buf, len);
	if (n <= 0 || !(pay = td_jwt_json_object((const char *)buf, (size_t)n)))
		goto cleanup;
	r = td_jwt_check_claims(v, pay, now, claims);
cleanup:
	json_object_put(hdr);
	json_object_put(pay);
	free(buf);
	return r;
}
