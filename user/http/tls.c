/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Server-side TLS with OpenSSL 3: one SSL_CTX per certificate, picked by SNI; non-blocking I/O. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls.h"

/*
 * Design
 *  - Each certificate gets its own SSL_CTX with identical settings. A connection starts on the
 *    first (default) context; the servername callback, installed on that context only, moves it
 *    to the chosen one with SSL_set_SSL_CTX(). OpenSSL keeps the first context as the session
 *    context, so the session cache and ticket keys are those of the default context whatever the
 *    certificate; the session id context is the same on every context.
 *  - Settings that OpenSSL reads from the connection's current context after the switch (ALPN)
 *    are installed on every context.
 *  - An SSL holds references on its SSL_CTXs and each connection holds a reference on the td_tls
 *    (whose names table the servername callback reads), so unref by the creator while
 *    connections run is safe: everything goes when the last connection is freed.
 *  - EOF: SSL_OP_IGNORE_UNEXPECTED_EOF makes a FIN without close_notify after the handshake a
 *    clean EOF (0). HTTP/1.1 messages carry their own length, so the engine detects truncated
 *    ones itself; this is what browsers and most clients do (they rarely send close_notify).
 *    A FIN or reset during the handshake is -ECONNRESET (-EPIPE for td_tls_write).
 *  - The socket BIO writes with write(2): the process must ignore SIGPIPE (tdagent does).
 */

#define TD_TLS_SID_CTX	"td-http"

/* TLS 1.2 suites: forward secret AEAD only (TLS 1.3 suites are OpenSSL's defaults) */
#define TD_TLS_CIPHERS \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

struct td_tls_name {
	char *name;		/* lower case; "*.x.y" for a wildcard */
	size_t idx;		/* certificate index: the first certificate wins a duplicate name */
};

struct td_tls {
	int refs;		/* __atomic */
	size_t n;
	SSL_CTX **ctx;		/* n, ctx[0] is the default */
	struct td_tls_name *names;	/* sorted by (name, idx) */
	size_t nnames;
};

struct td_tls_conn {
	struct td_tls *tls;	/* reference */
	SSL *ssl;
	int want;
	bool fatal;		/* SSL_ERROR_SSL or SYSCALL seen: no SSL_shutdown() any more */
	const char *err;	/* static text or errbuf */
	char errbuf[160];
};

/* ---- names ---- */

static int name_cmp(const void *a, const void *b)
{
	const struct td_tls_name *x = a, *y = b;
	int r = strcmp(x->name, y->name);

	if (r)
		return r;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* index of the first certificate with this exact (lower case) name, or -1 */
static ssize_t name_find(const struct td_tls *t, const char *name)
{
	size_t lo = 0, hi = t->nnames;

	while (lo < hi) {	/* lower bound: the smallest idx among equal names */
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(t->names[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < t->nnames && !strcmp(t->names[lo].name, name))
		return (ssize_t)t->names[lo].idx;
	return -1;
}

static int name_add(struct td_tls *t, size_t *cap, const unsigned char *s, int len, size_t idx)
{
	struct td_tls_name *nn;
	char *name;

	/* skip empty names, embedded NULs and names no SNI could ever match */
	if (len <= 0 || len > 253 || memchr(s, 0, (size_t)len))
		return 0;
	if (t->nnames == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;

		nn = realloc(t->names, ncap * sizeof(*nn));
		if (!nn)
			return -ENOMEM;
		t->names = nn;
		*cap = ncap;
	}
	name = strndup((const char *)s, (size_t)len);
	if (!name)
		return -ENOMEM;
	for (char *p = name; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p += 'a' - 'A';
	t->names[t->nnames].name = name;
	t->names[t->nnames].idx = idx;
	t->nnames++;
	return 0;
}

/* DNS SANs; the subject CN only when there is no DNS SAN (RFC 6125) */
static int names_of_cert(struct td_tls *t, size_t *cap, X509 *x, size_t idx)
{
	GENERAL_NAMES *gens;
	X509_NAME *subj;
	int found = 0, err = 0, pos;

	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && !err; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		if (g->type != GEN_DNS)
			continue;
		found = 1;
		err = name_add(t, cap, ASN1_STRING_get0_data(g->d.dNSName),
			       ASN1_STRING_length(g->d.dNSName), idx);
	}
	GENERAL_NAMES_free(gens);
	if (err || found)
		return err;
	subj = X509_get_subject_name(x);
	pos = subj ? X509_NAME_get_index_by_NID(subj, NID_commonName, -1) : -1;
	if (pos >= 0) {
		ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, pos));

		err = name_add(t, cap, ASN1_STRING_get0_data(cn), ASN1_STRING_length(cn), idx);
	}
	return err;
}

/* certificate for a server name: exact, then the one-label wildcard; default 0 */
static size_t tls_pick(const struct td_tls *t, const char *sni)
{
	char buf[256 + 2];
	size_t len;
	ssize_t i;
	char *dot;

	if (!sni)
		return 0;
	len = strlen(sni);
	if (len && sni[len - 1] == '.')
		len--;			/* absolute form */
	if (!len || len > 253)
		return 0;
	for (size_t k = 0; k < len; k++) {
		char ch = sni[k];

		buf[k] = ch >= 'A' && ch <= 'Z' ? ch + 'a' - 'A' : ch;
	}
	buf[len] = 0;
	i = name_find(t, buf);
	if (i >= 0)
		return (size_t)i;
	dot = strchr(buf, '.');
	if (!dot || dot == buf || !dot[1])
		return 0;
	/* "*.rest": two chars in place of the first label, which is at least one long */
	dot -= 1;
	dot[0] = '*';
	i = name_find(t, dot);
	return i >= 0 ? (size_t)i : 0;
}

/* ---- callbacks ---- */

static int tls_servername_cb(SSL *ssl, int *alert, void *arg)
{
	struct td_tls *t = arg;
	size_t i = tls_pick(t, SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name));

	if (i && !SSL_set_SSL_CTX(ssl, t->ctx[i])) {
		*alert = SSL_AD_INTERNAL_ERROR;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	return SSL_TLSEXT_ERR_OK;
}

/* "http/1.1" if the client offers it; otherwise no ALPN at all (never h2) */
static int tls_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	static const char want[] = "http/1.1";

	for (unsigned int off = 0; off < inlen;) {
		unsigned int l = in[off];

		if (off + 1 + l > inlen)
			break;
		if (l == sizeof(want) - 1 && !memcmp(in + off + 1, want, l)) {
			*out = in + off + 1;
			*outlen = (unsigned char)l;
			return SSL_TLSEXT_ERR_OK;
		}
		off += 1 + l;
	}
	return SSL_TLSEXT_ERR_NOACK;
}

/* encrypted keys fail to load instead of prompting on a terminal */
static int tls_no_passwd_cb(char *buf, int size, int rwflag, void *u)
{
	return 0;
}

/* ---- context ---- */

static void ssl_err_text(char *buf, size_t len)
{
	unsigned long e = ERR_peek_error();	/* the first one is the cause */
	const char *r;

	if (!e) {
		snprintf(buf, len, "unknown OpenSSL error");
		return;
	}
	if (ERR_SYSTEM_ERROR(e)) {	/* e.g. a missing file: the errno text */
		snprintf(buf, len, "%s", strerror(ERR_GET_REASON(e)));
		return;
	}
	r = ERR_reason_error_string(e);
	if (r)
		snprintf(buf, len, "%s", r);
	else
		ERR_error_string_n(e, buf, len);
}

/* NULL with the reason in buf */
static SSL_CTX *ctx_new(const struct td_tls_cert *c, char *buf, size_t len)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx)
		goto ssl_error;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION |
			    SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
	SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
			 SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	if (!SSL_CTX_set_session_id_context(ctx, (const unsigned char *)TD_TLS_SID_CTX,
					    sizeof(TD_TLS_SID_CTX) - 1) ||
	    !SSL_CTX_set_cipher_list(ctx, TD_TLS_CIPHERS))
		goto ssl_error;
	SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_cb, NULL);
	SSL_CTX_set_default_passwd_cb(ctx, tls_no_passwd_cb);

	if (!c->cert || !c->key) {
		snprintf(buf, len, "certificate and key files are both required");
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, c->cert) != 1) {
		snprintf(buf, len, "cannot load the certificate chain: ");
		ssl_err_text(buf + strlen(buf), len - strlen(buf));
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, c->key, SSL_FILETYPE_PEM) != 1) {
		unsigned long e = ERR_peek_error();

		if (ERR_GET_LIB(e) == ERR_LIB_X509 &&
		    ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH) {
			snprintf(buf, len, "key %s does not match the certificate", c->key);
			goto fail;
		}
		snprintf(buf, len, "cannot load key %s: ", c->key);
		ssl_err_text(buf + strlen(buf), len - strlen(buf));
		goto fail;
	}
	/* a key of another type lands in another slot: this catches it too */
	if (SSL_CTX_check_private_key(ctx) != 1 || !SSL_CTX_get0_certificate(ctx)) {
		snprintf(buf, len, "key %s does not match the certificate", c->key);
		goto fail;
	}
	return ctx;

ssl_error:
	ssl_err_text(buf, len);
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static void tls_free(struct td_tls *t)
{
	for (size_t i = 0; i < t->n; i++)
		SSL_CTX_free(t->ctx[i]);
	for (size_t i = 0; i < t->nnames; i++)
		free(t->names[i].name);
	free(t->names);
	free(t->ctx);
	free(t);
}

struct td_tls *td_tls_new(const struct td_tls_cert *certs, size_t n, char *err, size_t errlen)
{
	struct td_tls *t = NULL;
	char why[256];
	size_t cap = 0;
	int e = EINVAL;

	if (err && errlen)
		err[0] = 0;
	if (!certs || !n) {
		if (err)
			snprintf(err, errlen, "no certificate");
		goto fail;
	}
	e = ENOMEM;
	t = calloc(1, sizeof(*t));
	if (!t || !(t->ctx = calloc(n, sizeof(*t->ctx))))
		goto fail;
	t->refs = 1;
	for (size_t i = 0; i < n; i++, t->n++) {
		int r;

		ERR_clear_error();
		t->ctx[i] = ctx_new(&certs[i], why, sizeof(why));
		ERR_clear_error();
		if (!t->ctx[i]) {
			if (err)
				snprintf(err, errlen, "cert %zu (%s): %s", i,
					 certs[i].cert ? certs[i].cert : "-", why);
			e = EINVAL;
			goto fail;
		}
		r = names_of_cert(t, &cap, SSL_CTX_get0_certificate(t->ctx[i]), i);
		if (r)
			goto fail;
	}
	qsort(t->names, t->nnames, sizeof(*t->names), name_cmp);
	/* only the first context sees the ClientHello's server name */
	SSL_CTX_set_tlsext_servername_callback(t->ctx[0], tls_servername_cb);
	SSL_CTX_set_tlsext_servername_arg(t->ctx[0], t);
	return t;

fail:
	if (t)
		tls_free(t);
	if (e == ENOMEM && err)
		snprintf(err, errlen, "out of memory");
	errno = e;
	return NULL;
}

struct td_tls *td_tls_ref(struct td_tls *t)
{
	if (t)
		__atomic_add_fetch(&t->refs, 1, __ATOMIC_RELAXED);
	return t;
}

void td_tls_unref(struct td_tls *t)
{
	if (t && __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) == 0)
		tls_free(t);
}

/* ---- connections ---- */

struct td_tls_conn *td_tls_conn_new(struct td_tls *t, int fd)
{
	struct td_tls_conn *c;

	if (!t || fd < 0) {
		errno = EINVAL;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	ERR_clear_error();
	c->ssl = SSL_new(t->ctx[0]);
	if (!c->ssl || !SSL_set_fd(c->ssl, fd)) {
		SSL_free(c->ssl);
		free(c);
		ERR_clear_error();
		errno = ENOMEM;
		return NULL;
	}
	SSL_set_accept_state(c->ssl);
	c->tls = td_tls_ref(t);
	c->err = "no error";
	return c;
}

/* maps the result of SSL_read/SSL_write (r <= 0) to the contract's codes */
static ssize_t conn_fail(struct td_tls_conn *c, int r, int eof_err, int sys_err)
{
	int saved = errno;
	int e = SSL_get_error(c->ssl, r);
	unsigned long le;

	switch (e) {
	case SSL_ERROR_WANT_READ:
		c->want = TD_TLS_WANT_READ;
		c->err = "want read";
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		c->want = TD_TLS_WANT_WRITE;
		c->err = "want write";
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		/* OpenSSL 3.0 reports a FIN as close_notify even inside the handshake */
		if (!SSL_is_init_finished(c->ssl)) {
			c->fatal = true;
			c->err = "connection closed during handshake";
			return -eof_err;
		}
		c->err = "closed by peer";
		return 0;
	case SSL_ERROR_SYSCALL:
		c->fatal = true;
		if (ERR_peek_error()) {
			ssl_err_text(c->errbuf, sizeof(c->errbuf));
			c->err = c->errbuf;
			return -EPROTO;
		}
		if (!saved || saved == ECONNRESET || saved == EPIPE) {
			c->err = saved ? strerror(saved) : "unexpected EOF";
			return saved ? -sys_err : -eof_err;
		}
		snprintf(c->errbuf, sizeof(c->errbuf), "%s", strerror(saved));
		c->err = c->errbuf;
		return -sys_err;
	default:
		c->fatal = true;
		le = ERR_peek_error();
		if (ERR_GET_LIB(le) == ERR_LIB_SSL &&
		    ERR_GET_REASON(le) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			c->err = "connection closed during handshake";
			return -eof_err;
		}
		ssl_err_text(c->errbuf, sizeof(c->errbuf));
		c->err = c->errbuf;
		return -EPROTO;
	}
}

ssize_t td_tls_read(struct td_tls_conn *c, void *buf, size_t len)
{
	size_t got = 0;
	int r;

	if (c->fatal)
		return -EPROTO;
	ERR_clear_error();
	errno = 0;
	r = SSL_read_ex(c->ssl, buf, len, &got);
	if (r > 0) {
		c->want = 0;
		return (ssize_t)got;
	}
	return conn_fail(c, r, ECONNRESET, ECONNRESET);
}

/*
 * After -EAGAIN, call again with the same start and at least the same length (the bytes may move
 * but not change): OpenSSL may already have sent whole records of them and only counts them in the
 * result of the call that completes.
 */
ssize_t td_tls_write(struct td_tls_conn *c, const void *buf, size_t len)
{
	size_t done = 0;
	ssize_t r;

	if (c->fatal)
		return -EPROTO;
	if (!len)
		return 0;
	ERR_clear_error();
	errno = 0;
	r = SSL_write_ex(c->ssl, buf, len, &done);
	if (r > 0) {
		c->want = 0;
		return (ssize_t)done;
	}
	r = conn_fail(c, (int)r, EPIPE, EPIPE);
	/* a peer's close_notify while we write: nothing more can be sent */
	return r == 0 ? -EPIPE : r;
}

int td_tls_want(const struct td_tls_conn *c)
{
	return c->want;
}

bool td_tls_established(const struct td_tls_conn *c)
{
	return SSL_is_init_finished(c->ssl);
}

const char *td_tls_sni(const struct td_tls_conn *c)
{
	return SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
}

const char *td_tls_error(const struct td_tls_conn *c)
{
	return c->err;
}

void td_tls_conn_free(struct td_tls_conn *c)
{
	if (!c)
		return;
	ERR_clear_error();
	/* once, non-blocking: sends close_notify if the socket takes it, never waits for the peer's */
	if (!c->fatal && SSL_is_init_finished(c->ssl))
		SSL_shutdown(c->ssl);
	ERR_clear_error();
	SSL_free(c->ssl);
	td_tls_unref(c->tls);
	free(c);
}
