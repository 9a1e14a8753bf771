/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Gateway route authentication: JWT bearer tokens, API keys (SHA-256) and HTTP Basic (crypt hashes). */
#ifndef TD_GW_AUTH_H
#define TD_GW_AUTH_H

#include <stddef.h>
#include <time.h>

#include "jwt_verify.h"
#include "parser.h"

#define TD_AUTH_IDENTITY_MAX	256u	/* identity buffer incl. NUL */
#define TD_AUTH_DEF_REALM	"td"
#define TD_AUTH_DEF_KEY_HEADER	"X-API-Key"
#define TD_AUTH_MAX_CRED	4096u	/* Authorization / API key field value bytes */

enum td_auth_kind {
	TD_AUTH_JWT = 1,
	TD_AUTH_API_KEY,
	TD_AUTH_BASIC,
};

/* outcome of td_auth_check(); everything but TD_AUTH_OK is answered with 401 */
enum td_auth_reason {
	TD_AUTH_OK = 0,
	TD_AUTH_MISSING,	/* no credentials in the request */
	TD_AUTH_MALFORMED,	/* duplicate field, wrong scheme, bad base64, no ':' ... */
	TD_AUTH_UNKNOWN_KEY,	/* API key matches no configured hash */
	TD_AUTH_BAD_USER,	/* Basic: user not in the users file */
	TD_AUTH_BAD_PASSWORD,	/* Basic: password does not match */
	TD_AUTH_BAD_TOKEN,	/* JWT rejected: see td_auth_result.jwt */
	TD_AUTH_INTERNAL,	/* out of memory, crypto failure */
	TD_AUTH_REASON_MAX,
};

/* one inline API key: identity name and the hex SHA-256 of the key */
struct td_auth_api_key {
	const char *name;
	const char *sha256;
};

/* configuration of one route's auth (strings and keys are copied) */
struct td_auth_config {
	enum td_auth_kind kind;
	const char *realm;			/* NULL: TD_AUTH_DEF_REALM; no '"', '\\' or controls */
	struct td_jwt_config jwt;		/* TD_AUTH_JWT */
	const char *key_header;			/* TD_AUTH_API_KEY; NULL: TD_AUTH_DEF_KEY_HEADER */
	const struct td_auth_api_key *keys;	/* inline keys (may be combined with keys_file) */
	size_t nkeys;
	const char *keys_file;			/* lines "name sha256-hex", '#' comments */
	const char *users_file;			/* TD_AUTH_BASIC: htpasswd "user:hash" lines */
};

/* result of one check */
struct td_auth_result {
	enum td_auth_reason reason;
	enum td_jwt_reason jwt;			/* TD_AUTH_BAD_TOKEN: why */
	char identity[TD_AUTH_IDENTITY_MAX];	/* OK: JWT sub, API key name or Basic user */
};

struct td_auth;

/* build from cfg, loading key and users files; NULL + errno (EINVAL for bad config or files) */
struct td_auth *td_auth_new(const struct td_auth_config *cfg);
void td_auth_free(struct td_auth *a);

/*
 * Check the request head m (slices into buf) at time now; fills res and returns res->reason.
 * Read-only on a: may be shared by threads. Basic runs crypt_r (slow by design: tens of ms for
 * bcrypt/yescrypt), so callers on an event loop should run it off the loop.
 */
enum td_auth_reason td_auth_check(const struct td_auth *a, const struct td_http_msg *m,
				  const char *buf, time_t now, struct td_auth_result *res);

/* the same for one credential value already extracted (value of Authorization or key header) */
enum td_auth_reason td_auth_check_value(const struct td_auth *a, const char *val, size_t len,
					time_t now, struct td_auth_result *res);

/*
 * The value of the WWW-Authenticate field of the 401 for res (no CRLF), e.g.
 * Bearer realm="td", error="invalid_token", error_description="token expired".
 * Returns its length (snprintf semantics: >= size means truncated) or -EINVAL.
 */
int td_auth_challenge(const struct td_auth *a, const struct td_auth_result *res, char *out,
		      size_t size);

/* static text for the log: the auth reason, or the JWT reason for TD_AUTH_BAD_TOKEN */
const char *td_auth_reason_str(const struct td_auth_result *res);

enum td_auth_kind td_auth_kind_of(const struct td_auth *a);
/* the configured API key header name (TD_AUTH_API_KEY) */
const char *td_auth_key_header(const struct td_auth *a);

#endif
