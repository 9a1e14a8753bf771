/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* JWT (compact JWS) verification for the gateway: pinned HS256/RS256/ES256, keys from files or JWKS. */
#ifndef TD_GW_JWT_H
#define TD_GW_JWT_H

#include <stddef.h>
#include <stdbool.h>
#include <time.h>

#define TD_JWT_DEF_MAX_LEN	8192u	/* default max_len: bytes of the compact token */
#define TD_JWT_DEF_LEEWAY	30u	/* default leeway: seconds of clock skew for exp/nbf */
#define TD_JWT_SUB_MAX		256u	/* sub buffer incl. NUL; a longer sub is rejected */
#define TD_JWT_MIN_SECRET	32u	/* HS256 secret: at least 256 bits (RFC 7518 3.2) */

/* the one algorithm a verifier accepts; set by config, never by the token */
enum td_jwt_alg {
	TD_JWT_ALG_NONE = 0,	/* invalid: never accepted */
	TD_JWT_HS256,
	TD_JWT_RS256,
	TD_JWT_ES256,
};

/* why a token was rejected (TD_JWT_OK: accepted) */
enum td_jwt_reason {
	TD_JWT_OK = 0,
	TD_JWT_MALFORMED,	/* not three strict base64url parts, bad JSON, wrong types */
	TD_JWT_TOO_LONG,	/* over max_len */
	TD_JWT_BAD_ALG,		/* header alg differs from the configured one (incl. "none") */
	TD_JWT_UNSUPPORTED,	/* header has "crit" */
	TD_JWT_UNKNOWN_KID,	/* JWKS: no key with this kid (or no kid and several keys) */
	TD_JWT_BAD_SIGNATURE,	/* signature does not verify */
	TD_JWT_EXPIRED,		/* now >= exp + leeway */
	TD_JWT_NOT_YET_VALID,	/* now + leeway < nbf */
	TD_JWT_NO_EXP,		/* exp missing while required */
	TD_JWT_BAD_ISSUER,	/* iss missing or different */
	TD_JWT_BAD_AUDIENCE,	/* aud missing or does not contain the configured audience */
	TD_JWT_BAD_SUBJECT,	/* sub not a string, too long or has control characters */
	TD_JWT_INTERNAL,	/* out of memory or an OpenSSL failure */
	TD_JWT_REASON_MAX,
};

/* configuration of one verifier (strings are copied by td_jwt_verifier_new) */
struct td_jwt_config {
	enum td_jwt_alg alg;		/* required */
	const char *secret_file;	/* HS256: raw secret bytes (one trailing newline stripped) */
	const char *key_file;		/* RS256/ES256: PEM public key (SubjectPublicKeyInfo) */
	const char *jwks_file;		/* RS256/ES256: JWKS JSON ({"keys": [...]}) instead of key_file */
	const char *issuer;		/* NULL: iss not checked */
	const char *audience;		/* NULL: aud not checked */
	unsigned int leeway;		/* seconds for exp/nbf; use TD_JWT_DEF_LEEWAY for the default */
	unsigned int max_len;		/* token bytes; 0: TD_JWT_DEF_MAX_LEN */
	bool exp_optional;		/* false (default): a token without exp is rejected */
};

/* the verified claims the caller may pass upstream */
struct td_jwt_claims {
	char sub[TD_JWT_SUB_MAX];	/* "" when the token has no sub */
	long long exp;			/* 0 when absent */
};

struct td_jwt_verifier;

/* fill c with the defaults (leeway 30 s, max_len 8192, exp required) and alg */
void td_jwt_config_default(struct td_jwt_config *c, enum td_jwt_alg alg);

/* load keys and copy the config; NULL + errno (EINVAL: bad config or key, ENOENT, ENOMEM...) */
struct td_jwt_verifier *td_jwt_verifier_new(const struct td_jwt_config *cfg);
void td_jwt_verifier_free(struct td_jwt_verifier *v);

/* number of usable keys loaded (1 for a secret or PEM key, n for a JWKS) */
size_t td_jwt_verifier_nkeys(const struct td_jwt_verifier *v);

/*
 * Verify token[0..len) (the compact JWS, without "Bearer ") at time now. TD_JWT_OK fills claims
 * (may be NULL). Read-only on v: one verifier may be shared by threads.
 */
enum td_jwt_reason td_jwt_verify(const struct td_jwt_verifier *v, const char *token, size_t len,
				 time_t now, struct td_jwt_claims *claims);

/* short static text for the log and error_description (no quotes or backslashes) */
const char *td_jwt_reason_str(enum td_jwt_reason r);

/* "HS256" ... or NULL; and the reverse (TD_JWT_ALG_NONE for anything else, "none" included) */
const char *td_jwt_alg_name(enum td_jwt_alg alg);
enum td_jwt_alg td_jwt_alg_parse(const char *name);

/*
 * Strict base64url (RFC 4648 5, no padding, no whitespace, zero unused bits): decode in[0..len)
 * into out (room for len * 3 / 4 bytes). Returns the decoded length or -EINVAL / -ENOSPC.
 */
long td_jwt_b64url_decode(const char *in, size_t len, unsigned char *out, size_t outsz);
/* encode in[0..len) into out (room for 4 * ((len + 2) / 3) + 1); NUL-terminated; length or -ENOSPC */
long td_jwt_b64url_encode(const unsigned char *in, size_t len, char *out, size_t outsz);

#endif
