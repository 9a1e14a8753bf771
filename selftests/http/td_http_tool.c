/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* td_http_tool: runs the HTTP engine with a trivial forwarding handler, for the engine tests. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "log.h"
#include "server.h"
#include "tls.h"

/*
 * Handler:
 *   /__local       404 answered by td_hs_respond (body "local\n")
 *   /__stats       200 JSON: engine counters and the handler's own (requests seen, done calls)
 *   /__fetch?P     td_hs_fetch("GET P") on the upstream, then 200 with the fetched body and
 *                  X-Fetch-Status / X-Fetch-Err headers
 *   /__tag         200 "tag N" (td_hs_req_listener_tag: 1 for --listen, 2 for --raw)
 *   /__respond_ex  203 "Custom Reason" by td_hs_respond_ex with its own Date and an ETag
 *                  (no_date); "?close" adds close_after
 *   CONNECT h:p    with --connect: td_hs_tunnel to the numeric h:p (idle --tunnel-idle ms);
 *                  without it: forwarded like the rest (the upstream's answer is refused: 502)
 *   http://h:p/x   absolute-form: forwarded (with --connect to h:p, else to --upstream) with
 *                  target "/x" and Host replaced by "h:p"
 *   anything else  forwarded to --upstream with edits: X-Td-Tool added, X-Drop removed;
 *                  response X-Td-Resp added, X-Resp-Drop removed. On a failed attempt that
 *                  may be retried, --fallback (if set) gets a second try.
 * --raw ADDR:PORT: a RAW listener; ops->raw waits for 4 bytes, closes on "QUIT", else tunnels
 * everything to --upstream. --tee: the response hooks hash every forwarded response body and
 * print "tee: status S bytes N sha256 H complete C" per response.
 */

struct tool {
	struct td_hs *hs;
	struct sockaddr_storage up, fb;
	socklen_t uplen, fblen;
	uint32_t connect_ms, response_ms, max_idle, tunnel_idle;
	bool connect, tee;
	atomic_ulong seen, done, aborted, upcalls, retries, tee_ends, raw_calls;
};

/* per request (td_hs_req_set_data) */
#define TREQ_MAGIC 0x7472657au
struct treq {
	uint32_t magic;
	EVP_MD_CTX *md;		/* --tee: the body hash */
	uint64_t tee_bytes;
	unsigned int tee_status;
	char host[300];		/* absolute-form: the Host written upstream */
	char target[1024];
};

static struct tool T;

static int parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[128];
	const char *colon = strrchr(s, ':');
	struct sockaddr_in *a = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	size_t hl;

	if (!colon)
		return -EINVAL;
	hl = (size_t)(colon - s);
	if (hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, hl);
	host[hl] = 0;
	memset(ss, 0, sizeof(*ss));
	if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
		host[hl - 1] = 0;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)atoi(colon + 1));
		*len = sizeof(*a6);
		return inet_pton(AF_INET6, host + 1, &a6->sin6_addr) == 1 ? 0 : -EINVAL;
	}
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)atoi(colon + 1));
	*len = sizeof(*a);
	return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -EINVAL;
}

static bool path_is(const struct td_http_msg *m, const char *buf, const char *p)
{
	size_t n = strlen(p);

	return m->target.len >= n && !memcmp(buf + m->target.off, p, n) &&
	       (m->target.len == n || buf[m->target.off + n] == '?');
}

static void tool_forward(struct td_hs_req *r, const struct sockaddr_storage *ss, socklen_t len)
{
	static const char *const rm[] = { "X-Drop", "Host" };
	static const char *const rrm[] = { "X-Resp-Drop" };
	struct treq *q = td_hs_req_data(r);
	struct td_hs_hdr add[] = { { "X-Td-Tool", "1" }, { "Host", q->host } };
	static const struct td_hs_hdr radd[] = { { "X-Td-Resp", "1" } };
	struct td_hs_upstream u = {
		.addr = (const struct sockaddr *)ss,
		.addrlen = len,
		.connect_timeout_ms = T.connect_ms,
		.response_timeout_ms = T.response_ms,
		.max_idle = T.max_idle,
		.tag = (void *)ss,
	};
	struct td_hs_edit e = {
		.remove = rm, .nremove = 1, .add = add, .nadd = 1,
		.resp_add = radd, .nresp_add = 1, .resp_remove = rrm, .nresp_remove = 1,
	};

	if (q->target[0]) {
		/* absolute-form: origin-form target, Host from the URI */
		e.target = q->target;
		e.nremove = 2;
		e.nadd = 2;
	}
	int rc = td_hs_forward(r, &u, &e);

	if (rc < 0)
		td_hs_respond(r, 500, NULL, 0, "forward failed\n", 15, false);
}

static void tool_stats(struct td_hs_req *r)
{
	struct td_hs_stats st;
	static const struct td_hs_hdr ct = { "Content-Type", "application/json" };
	char body[1024];
	int n;

	td_hs_stats_get(T.hs, &st);
	n = snprintf(body, sizeof(body),
		     "{\"conns_accepted\":%llu,\"conns_rejected\":%llu,\"conns_open\":%llu,"
		     "\"requests\":%llu,\"parse_errors\":%llu,\"header_timeouts\":%llu,"
		     "\"idle_closed\":%llu,\"upstream_conns_open\":%llu,\"upstream_reused\":%llu,"
		     "\"upstream_errors\":%llu,\"tls_handshake_errors\":%llu,\"seen\":%lu,"
		     "\"done\":%lu,\"aborted\":%lu,\"upcalls\":%lu,\"retries\":%lu,\"workers\":%u,"
		     "\"tunnels\":%llu,\"tunnels_open\":%llu,\"tee_ends\":%lu,\"raw_calls\":%lu}\n",
		     (unsigned long long)st.conns_accepted, (unsigned long long)st.conns_rejected,
		     (unsigned long long)st.conns_open, (unsigned long long)st.requests,
		     (unsigned long long)st.parse_errors, (unsigned long long)st.header_timeouts,
		     (unsigned long long)st.idle_closed, (unsigned long long)st.upstream_conns_open,
		     (unsigned long long)st.upstream_reused, (unsigned long long)st.upstream_errors,
		     (unsigned long long)st.tls_handshake_errors, atomic_load(&T.seen),
		     atomic_load(&T.done), atomic_load(&T.aborted), atomic_load(&T.upcalls),
		     atomic_load(&T.retries), td_hs_workers(T.hs),
		     (unsigned long long)st.tunnels, (unsigned long long)st.tunnels_open,
		     atomic_load(&T.tee_ends), atomic_load(&T.raw_calls));
	td_hs_respond(r, 200, &ct, 1, body, (size_t)n, false);
}

static void tool_fetched(struct td_hs_req *r, void *arg, const struct td_hs_fetch_res *res)
{
	char st[16], er[16];
	struct td_hs_hdr h[3] = { { "X-Fetch-Status", st }, { "X-Fetch-Err", er },
				  { "Content-Type", res->content_type ? res->content_type : "none" } };

	snprintf(st, sizeof(st), "%u", res->status);
	snprintf(er, sizeof(er), "%d", res->err);
	td_hs_respond(r, res->err ? 502 : 200, h, 3, res->body, res->err ? 0 : res->body_len, false);
}

static void tool_fetch(struct td_hs_req *r)
{
	const struct td_http_msg *m = td_hs_req_msg(r);
	const char *buf = td_hs_req_buf(r);
	const char *end = buf + m->target.off + m->target.len;
	const char *q = memchr(buf + m->target.off, '?', m->target.len);
	const char *path = "/";
	int plen = 1;
	char head[1024];
	int n, rc;

	if (q && q + 1 < end) {
		path = q + 1;
		plen = (int)(end - path);
	}
	n = snprintf(head, sizeof(head), "GET %.*s HTTP/1.1\r\nHost: backend\r\n\r\n", plen, path);
	rc = td_hs_fetch(r, (struct sockaddr *)&T.up, T.uplen, head, (size_t)n,
			 T.response_ms ? T.response_ms : 5000, 1 << 20, tool_fetched, NULL);
	if (rc < 0)
		td_hs_respond(r, 500, NULL, 0, "fetch failed\n", 13, false);
}

static struct treq *treq_new(struct td_hs_req *r)
{
	struct treq *q = calloc(1, sizeof(*q));

	if (q) {
		q->magic = TREQ_MAGIC;
		atomic_fetch_add(&T.seen, 1);
		td_hs_req_set_data(r, q);
	}
	return q;
}

static void tool_respond_ex(struct td_hs_req *r, bool close_after)
{
	static const struct td_hs_hdr h[] = {
		{ "Date", "Mon, 01 Jan 2001 00:00:00 GMT" }, { "ETag", "\"v1\"" },
		{ "Content-Type", "text/plain" },
	};
	struct td_hs_resp_opts o = { .reason = "Custom Reason", .no_date = true,
				     .close_after = close_after };

	if (td_hs_respond_ex(r, 203, h, 3, "respond_ex\n", 11, &o) < 0)
		td_hs_respond(r, 500, NULL, 0, "respond_ex failed\n", 18, false);
}

/* "h:p" (numeric IPv4 or [IPv6]) at s, len bytes */
static int authority_addr(const char *s, size_t len, struct sockaddr_storage *ss, socklen_t *sl)
{
	char a[300];

	if (len >= sizeof(a))
		return -EINVAL;
	memcpy(a, s, len);
	a[len] = 0;
	return parse_addr(a, ss, sl);
}

static void tool_connect(struct td_hs_req *r, const struct td_http_msg *m, const char *buf)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct td_hs_upstream u = { .connect_timeout_ms = T.connect_ms, .tag = (void *)&T.seen };
	int rc;

	if (authority_addr(buf + m->target.off, m->target.len, &ss, &sl) < 0) {
		td_hs_respond(r, 400, NULL, 0, "numeric host:port only\n", 23, true);
		return;
	}
	u.addr = (struct sockaddr *)&ss;
	u.addrlen = sl;
	rc = td_hs_tunnel(r, &u, T.tunnel_idle);
	if (rc < 0)
		td_hs_respond(r, 500, NULL, 0, "tunnel failed\n", 14, true);
}

/* absolute-form: remember target and Host; with --connect, forward to the URI's authority */
static void tool_absolute(struct td_hs_req *r, struct treq *q, const struct td_http_msg *m,
			  const char *buf)
{
	const char *t = buf + m->target.off, *end = t + m->target.len;
	const char *a = memmem(t, m->target.len, "://", 3), *path;
	struct sockaddr_storage ss;
	socklen_t sl;

	a += 3;
	for (path = a; path < end && *path != '/' && *path != '?'; path++)
		;
	snprintf(q->host, sizeof(q->host), "%.*s", (int)(path - a), a);
	snprintf(q->target, sizeof(q->target), "%s%.*s", path < end && *path == '?' ? "/" : "",
		 (int)(end - path), path);
	if (!q->target[0])
		snprintf(q->target, sizeof(q->target), "/");
	if (T.connect && authority_addr(a, (size_t)(path - a), &ss, &sl) == 0) {
		tool_forward(r, &ss, sl);	/* the address is copied: the tag is compared only */
		return;
	}
	tool_forward(r, &T.up, T.uplen);
}

static void tool_request(struct td_hs_req *r)
{
	const struct td_http_msg *m = td_hs_req_msg(r);
	const char *buf = td_hs_req_buf(r);
	struct treq *q = treq_new(r);
	char tag[32];
	int n;

	if (!q) {
		td_hs_respond(r, 500, NULL, 0, "oom\n", 4, true);
		return;
	}
	if (m->method == TD_HTTP_M_CONNECT && T.connect) {
		tool_connect(r, m, buf);
		return;
	}
	if (m->target_form == TD_HTTP_T_ABSOLUTE) {
		tool_absolute(r, q, m, buf);
		return;
	}
	if (path_is(m, buf, "/__tag")) {
		n = snprintf(tag, sizeof(tag), "tag %u\n", td_hs_req_listener_tag(r));
		td_hs_respond(r, 200, NULL, 0, tag, (size_t)n, false);
		return;
	}
	if (path_is(m, buf, "/__respond_ex")) {
		tool_respond_ex(r, m->target.len > 13 && !memcmp(buf + m->target.off + 13, "?close", 6));
		return;
	}
	if (path_is(m, buf, "/__local")) {
		td_hs_respond(r, 404, NULL, 0, "local\n", 6, false);
		return;
	}
	if (path_is(m, buf, "/__stats")) {
		tool_stats(r);
		return;
	}
	if (path_is(m, buf, "/__fetch")) {
		tool_fetch(r);
		return;
	}
	tool_forward(r, &T.up, T.uplen);
}

static int tool_upstream(struct td_hs_req *r, void *tag, int err, unsigned int status, bool may_retry)
{
	atomic_fetch_add(&T.upcalls, 1);
	if (err < 0 && may_retry && T.fblen && tag == (void *)&T.up) {
		atomic_fetch_add(&T.retries, 1);
		tool_forward(r, &T.fb, T.fblen);
		return 1;
	}
	return 0;
}

static void tool_done(struct td_hs_req *r)
{
	struct treq *q = td_hs_req_data(r);

	if (!q || q->magic != TREQ_MAGIC) {
		td_err("done() without request()");
		return;
	}
	atomic_fetch_add(&T.done, 1);
	if (td_hs_req_aborted(r))
		atomic_fetch_add(&T.aborted, 1);
	if (q->md)
		td_err("response_end() missing before done()");
	q->magic = 0;
	free(q);
}

static int tool_raw(struct td_hs_req *r, const char *data, size_t len)
{
	struct treq *q = td_hs_req_data(r);
	struct td_hs_upstream u = {
		.addr = (const struct sockaddr *)&T.up, .addrlen = T.uplen,
		.connect_timeout_ms = T.connect_ms, .tag = (void *)&T.up,
	};

	atomic_fetch_add(&T.raw_calls, 1);
	if (!q && !(q = treq_new(r)))
		return -ENOMEM;
	if (len < 4)
		return -EAGAIN;
	if (!memcmp(data, "QUIT", 4))
		return td_hs_respond(r, 400, NULL, 0, NULL, 0, true);
	return td_hs_tunnel(r, &u, T.tunnel_idle);
}

static bool tool_response(struct td_hs_req *r, const struct td_http_msg *m, const char *buf)
{
	struct treq *q = td_hs_req_data(r);

	if (!T.tee || !q)
		return false;
	q->md = EVP_MD_CTX_new();
	if (!q->md || !EVP_DigestInit_ex(q->md, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(q->md);
		q->md = NULL;
		return false;
	}
	q->tee_status = m->status;
	return true;
}

static void tool_response_body(struct td_hs_req *r, const char *data, size_t len)
{
	struct treq *q = td_hs_req_data(r);

	EVP_DigestUpdate(q->md, data, len);
	q->tee_bytes += len;
}

static void tool_response_end(struct td_hs_req *r, bool complete)
{
	struct treq *q = td_hs_req_data(r);
	unsigned char d[32];
	char hex[65];
	unsigned int dl = 0;

	EVP_DigestFinal_ex(q->md, d, &dl);
	EVP_MD_CTX_free(q->md);
	q->md = NULL;
	for (unsigned int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
	printf("tee: status %u bytes %llu sha256 %s complete %d\n", q->tee_status,
	       (unsigned long long)q->tee_bytes, hex, complete);
	fflush(stdout);
	atomic_fetch_add(&T.tee_ends, 1);
}

static const struct td_hs_ops tool_ops = {
	.request = tool_request,
	.upstream = tool_upstream,
	.done = tool_done,
	.raw = tool_raw,
	.response = tool_response,
	.response_body = tool_response_body,
	.response_end = tool_response_end,
};

static void usage(void)
{
	fprintf(stderr,
		"usage: td_http_tool --listen ADDR:PORT --upstream ADDR:PORT [--fallback ADDR:PORT]\n"
		"  [--workers N] [--header-timeout MS] [--idle-timeout MS] [--body-timeout MS]\n"
		"  [--max-body N] [--max-conns N] [--connect-timeout MS] [--response-timeout MS]\n"
		"  [--max-idle N] [--drain MS] [--tls CERT,KEY] [--connect] [--raw ADDR:PORT]\n"
		"  [--tunnel-idle MS] [--tee] [-v]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "upstream", required_argument, NULL, 'u' },
		{ "fallback", required_argument, NULL, 'f' },
		{ "workers", required_argument, NULL, 'w' },
		{ "header-timeout", required_argument, NULL, 'H' },
		{ "idle-timeout", required_argument, NULL, 'I' },
		{ "body-timeout", required_argument, NULL, 'B' },
		{ "max-body", required_argument, NULL, 'm' },
		{ "max-conns", required_argument, NULL, 'c' },
		{ "connect-timeout", required_argument, NULL, 'C' },
		{ "response-timeout", required_argument, NULL, 'R' },
		{ "max-idle", required_argument, NULL, 'i' },
		{ "drain", required_argument, NULL, 'd' },
		{ "tls", required_argument, NULL, 't' },
		{ "connect", no_argument, NULL, 'X' },
		{ "raw", required_argument, NULL, 'r' },
		{ "tunnel-idle", required_argument, NULL, 'T' },
		{ "tee", no_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct td_hs_conf conf = { .ops = &tool_ops, .name = "tool" };
	struct td_hs_listener l = { .tag = 1 }, rl = { .mode = TD_HS_LISTEN_RAW, .tag = 2 };
	struct td_tls *tls = NULL;
	const char *listen = NULL, *tls_arg = NULL, *raw = NULL;
	uint32_t drain = 2000;
	int o, verbose = 0, rc = 1, sig;
	sigset_t ss;

	td_hs_limits_default(&conf.lim);
	while ((o = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (o) {
		case 'l': listen = optarg; break;
		case 'u':
			if (parse_addr(optarg, &T.up, &T.uplen) < 0)
				goto bad;
			break;
		case 'f':
			if (parse_addr(optarg, &T.fb, &T.fblen) < 0)
				goto bad;
			break;
		case 'w': conf.workers = (unsigned int)atoi(optarg); break;
		case 'H': conf.lim.header_timeout_ms = (uint32_t)atoi(optarg); break;
		case 'I': conf.lim.idle_timeout_ms = (uint32_t)atoi(optarg); break;
		case 'B': conf.lim.body_timeout_ms = (uint32_t)atoi(optarg); break;
		case 'm': conf.lim.http.max_body = strtoull(optarg, NULL, 0); break;
		case 'c': conf.lim.max_conns = (uint32_t)atoi(optarg); break;
		case 'C': T.connect_ms = (uint32_t)atoi(optarg); break;
		case 'R': T.response_ms = (uint32_t)atoi(optarg); break;
		case 'i': T.max_idle = (uint32_t)atoi(optarg); break;
		case 'd': drain = (uint32_t)atoi(optarg); break;
		case 't': tls_arg = optarg; break;
		case 'X': T.connect = true; break;
		case 'r': raw = optarg; break;
		case 'T': T.tunnel_idle = (uint32_t)atoi(optarg); break;
		case 'e': T.tee = true; break;
		case 'v': verbose++; break;
		default:
			usage();
			return o == 'h' ? 0 : 2;
		}
	}
	if (!listen || !T.uplen || parse_addr(listen, &l.ss, &l.sslen) < 0 ||
	    (raw && parse_addr(raw, &rl.ss, &rl.sslen) < 0))
		goto bad;
	td_log_init("td_http_tool", verbose ? TD_LOG_DEBUG : TD_LOG_INFO);
	if (tls_arg) {
		char cert[512], err[256];
		const char *comma = strchr(tls_arg, ',');
		struct td_tls_cert c;

		if (!comma || (size_t)(comma - tls_arg) >= sizeof(cert))
			goto bad;
		memcpy(cert, tls_arg, (size_t)(comma - tls_arg));
		cert[comma - tls_arg] = 0;
		c.cert = cert;
		c.key = comma + 1;
		tls = td_tls_new(&c, 1, err, sizeof(err));
		if (!tls) {
			fprintf(stderr, "tls: %s\n", err);
			return 1;
		}
		l.tls = tls;
	}

	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGUSR1);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	signal(SIGPIPE, SIG_IGN);

	T.hs = td_hs_new(&conf);
	if (!T.hs) {
		fprintf(stderr, "td_hs_new: %s\n", strerror(errno));
		goto out;
	}
	o = td_hs_listen(T.hs, &l);
	if (o < 0) {
		fprintf(stderr, "listen %s: %s\n", listen, strerror(-o));
		goto out;
	}
	if (raw && (rc = td_hs_listen(T.hs, &rl)) < 0) {
		fprintf(stderr, "listen %s: %s\n", raw, strerror(-rc));
		rc = 1;
		goto out;
	}
	rc = td_hs_start(T.hs);
	if (rc < 0) {
		fprintf(stderr, "start: %s\n", strerror(-rc));
		rc = 1;
		goto out;
	}
	rc = 1;
	printf("ready: %s workers %u\n", listen, td_hs_workers(T.hs));
	fflush(stdout);
	/* SIGUSR1: a reload as the agent does it, a new listener first, then the old one goes */
	while (!sigwait(&ss, &sig) && sig == SIGUSR1) {
		int id = td_hs_listen(T.hs, &l);

		if (id < 0) {
			fprintf(stderr, "reload listen: %s\n", strerror(-id));
			continue;
		}
		td_hs_unlisten(T.hs, o);
		td_hs_set_limits(T.hs, &conf.lim);
		o = id;
		printf("reloaded: listener %d\n", id);
		fflush(stdout);
	}
	rc = 0;
out:
	td_hs_free(T.hs, drain);
	td_tls_unref(tls);
	if (!rc) {
		printf("stopped: seen %lu done %lu\n", atomic_load(&T.seen), atomic_load(&T.done));
		rc = atomic_load(&T.seen) == atomic_load(&T.done) ? 0 : 3;
	}
	return rc;
bad:
	usage();
	return 2;
}
