/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Server-side TLS with OpenSSL 3: certificates chosen by SNI, non-blocking reads and writes. */
#ifndef TD_HTTP_TLS_H
#define TD_HTTP_TLS_H

/*
 * Contract
 *  - td_tls_new() loads every certificate (PEM chain) and key, checks each pair matches, and
 *    indexes the names of each certificate (DNS SANs, else the CN; "*.example" wildcards match
 *    one label). A ClientHello's server name picks the certificate (exact name, then wildcard);
 *    no SNI or no match gets the first certificate. TLS 1.2 and 1.3 only, server cipher
 *    preference, session tickets on, ALPN "http/1.1" (h2 is never offered).
 *  - A struct td_tls is refcounted: each connection holds a reference, so a reload can drop
 *    the old context while its connections go on.
 *  - A connection wraps a non-blocking fd (not owned). The handshake runs inside the first
 *    td_tls_read()/td_tls_write() calls. -EAGAIN means: wait until td_tls_want() is readable
 *    (TD_TLS_WANT_READ) or writable (TD_TLS_WANT_WRITE), then call again the same function.
 *    Partial writes are allowed and the buffer may move between calls.
 *  - Idle connections release OpenSSL's read/write buffers (SSL_MODE_RELEASE_BUFFERS).
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define TD_TLS_WANT_READ	1
#define TD_TLS_WANT_WRITE	2

struct td_tls;
struct td_tls_conn;

struct td_tls_cert {
	const char *cert;	/* PEM file: certificate then chain */
	const char *key;	/* PEM private key file */
};

/* NULL + errno (EINVAL: bad file or mismatched key; err holds "cert N (FILE): why") */
struct td_tls *td_tls_new(const struct td_tls_cert *certs, size_t n, char *err, size_t errlen);
struct td_tls *td_tls_ref(struct td_tls *t);
void td_tls_unref(struct td_tls *t);	/* NULL is ignored */

/* a server connection on fd; NULL + errno */
struct td_tls_conn *td_tls_conn_new(struct td_tls *t, int fd);
/* >0 bytes, 0 clean EOF (close_notify or FIN), -EAGAIN (see td_tls_want), -EPROTO, -ECONNRESET */
ssize_t td_tls_read(struct td_tls_conn *c, void *buf, size_t len);
/* >0 bytes written, -EAGAIN, -EPIPE, -EPROTO */
ssize_t td_tls_write(struct td_tls_conn *c, const void *buf, size_t len);
/* TD_TLS_WANT_READ or TD_TLS_WANT_WRITE after -EAGAIN */
int td_tls_want(const struct td_tls_conn *c);
/* the handshake is complete */
bool td_tls_established(const struct td_tls_conn *c);
/* server name from the ClientHello, NULL if none */
const char *td_tls_sni(const struct td_tls_conn *c);
/* why the last call failed (static or per-connection text, for logs) */
const char *td_tls_error(const struct td_tls_conn *c);
/* best-effort close_notify (non-blocking), then free; does not close fd. NULL is ignored */
void td_tls_conn_free(struct td_tls_conn *c);

#endif
