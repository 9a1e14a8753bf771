/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Forward proxy internals: generations, rules, DNS pool, cache glue, log and metrics helpers. */
#ifndef TD_FP_INTERNAL_H
#define TD_FP_INTERNAL_H

/*
 * The pure helpers (URI, domain sets, private ranges, SNI, log line, Cache-Status, generation
 * build) call no td_hs_* function, so selftests/unit/test_fproxy.c tests them without workers.
 * fproxy.c glues them to the HTTP engine.
 *
 * Lifetimes (as the gateway's, gw_internal.h): a generation is immutable and refcounted; the
 * proxy, each worker's cache and each request hold references. The access log (struct td_gw_log
 * of the gateway, reused) and the cache (struct td_fp_cache) are shared by consecutive
 * generations while their settings stay, so the cache survives reloads.
 */

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cache_store.h"
#include "config.h"
#include "fp_redirect.h"
#include "gw_internal.h"
#include "metrics.h"

#define TD_FP_HOST_MAX		256u	/* host name incl. NUL */
#define TD_FP_MAX_ADDRS		8u	/* addresses kept per DNS answer */
#define TD_FP_VIA		"1.1 td"

/* listener tags (td_hs_listener.tag) */
enum td_fp_lis_kind {
	TD_FP_LIS_PROXY = 0,		/* listen[]: absolute-form requests and CONNECT */
	TD_FP_LIS_TRANSPARENT,		/* transparent.listen: origin-form, original destination */
	TD_FP_LIS_TRANSPARENT_TLS,	/* transparent.tls_listen: raw TLS, SNI checked */
};

/* denial rules (label rule of td_fp_denied_total) */
enum td_fp_deny_rule {
	TD_FP_R_CLIENT = 0,		/* allow_clients */
	TD_FP_R_AUTH,			/* proxy auth (407) */
	TD_FP_R_PORT,			/* connect_ports */
	TD_FP_R_DOMAIN,			/* deny_domains / allow_domains */
	TD_FP_R_PRIVATE,		/* deny_private_destinations */
	TD_FP_R_SCHEME,			/* not http://, origin-form on a proxy listener */
	TD_FP_R_MAX,
};
const char *td_fp_rule_name(unsigned int rule);

/* method index of the request counters */
enum td_fp_meth {
	TD_FP_M_GET = 0, TD_FP_M_HEAD, TD_FP_M_POST, TD_FP_M_PUT, TD_FP_M_DELETE, TD_FP_M_CONNECT,
	TD_FP_M_OPTIONS, TD_FP_M_PATCH, TD_FP_M_OTHER, TD_FP_M_MAX,
};
unsigned int td_fp_meth_idx(uint8_t method);
const char *td_fp_meth_name(unsigned int idx);

/* ---- absolute-form URI -------------------------------------------------------------------- */

struct td_fp_uri {
	char host[TD_FP_HOST_MAX];	/* lower case, IPv6 without brackets */
	uint16_t port;
	bool ip;			/* host is a literal address */
	const char *path;		/* origin-form target into the input ("/" when empty: static) */
	size_t path_len;
	char authority[TD_FP_HOST_MAX + 8];	/* Host value: host[:port], [v6] bracketed */
};

/*
 * Parse "http://host[:port][/path][?query]" (scheme case-insensitive, no userinfo, fragment
 * dropped from path). 0, -EPROTONOSUPPORT (another scheme), -EINVAL (malformed).
 */
int td_fp_uri_parse(const char *s, size_t len, struct td_fp_uri *u);
/* "host:port" of CONNECT ([v6]:port): 0 or -EINVAL; u->path is NULL */
int td_fp_authority_parse(const char *s, size_t len, struct td_fp_uri *u);
/* normalise a host name: lower case, trailing dot dropped, literal IPs detected; 0 or -EINVAL */
int td_fp_host_norm(const char *s, size_t len, char *out, size_t size, bool *ip);

/* ---- domain rules ------------------------------------------------------------------------- */

/* a set of patterns: exact names (and literal IPs) and "*.suffix" suffixes, open addressing */
struct td_fp_domset {
	char **slot;			/* pattern text as written ("*.x" or "x") */
	uint8_t *wild;			/* slot is a wildcard (key without "*.") */
	size_t cap;			/* power of two */
	size_t n;
};

int td_fp_domset_add(struct td_fp_domset *s, const char *pattern);
void td_fp_domset_free(struct td_fp_domset *s);
/* the pattern host matches (exact, or "*.x" for a proper subdomain of x), NULL if none;
 * literal IP hosts match only exact patterns */
const char *td_fp_domset_match(const struct td_fp_domset *s, const char *host, bool ip);

/* ---- destinations ------------------------------------------------------------------------- */

/* an address of the private ranges of config_fp.h (IPv4-mapped IPv6 checked as IPv4) */
bool td_fp_private_addr(const struct sockaddr *sa);

/* ---- TLS ClientHello ---------------------------------------------------------------------- */

/*
 * The server_name of a TLS ClientHello at the start of a stream (first record; the hello may
 * span several records of type handshake). 1 and the lower-case name in out, 0 when the hello
 * has no SNI, -EAGAIN when more bytes are needed, -EINVAL when it is not a ClientHello.
 */
int td_fp_sni_parse(const uint8_t *data, size_t len, char *out, size_t size);

/* ---- generation --------------------------------------------------------------------------- */

/* the shared cache: a store (single-threaded) behind a mutex, refcounted across generations */
struct td_fp_cache {
	int refs;			/* atomic */
	pthread_mutex_t mu;		/* the store, its objects' refcounts, collapsing */
	struct td_cache_store *s;
	uint64_t memory;
	uint64_t max_object;
};
struct td_fp_cache *td_fp_cache_new(uint64_t memory, uint64_t max_object);
struct td_fp_cache *td_fp_cache_ref(struct td_fp_cache *c);
void td_fp_cache_unref(struct td_fp_cache *c);

struct td_fp_gen {
	int refs;			/* atomic */
	uint64_t number;
	struct td_fp_cfg cfg;		/* scalars of the section (domain list pointers NULL) */
	struct td_fp_domset deny;
	struct td_fp_domset allow;
	bool allow_set;			/* allow_domains given: everything else denied */
	struct td_auth *auth;		/* NULL: no proxy auth */
	struct td_gw_basic_cache *basic;
	char challenge[128];		/* Proxy-Authenticate value */
	struct td_gw_log *log;		/* NULL: built for a check */
	struct td_fp_cache *cache;	/* NULL: cache off (or a check) */
};

/*
 * Build from cfg->forward_proxy; prev (may be NULL) lends its log and cache when their
 * settings stay. check: open no log, create no cache. NULL + errno, FILE:LINE errors in errs.
 */
struct td_fp_gen *td_fp_gen_build(const struct td_config *cfg, const struct td_fp_gen *prev,
				  uint64_t number, bool check, struct td_errors *errs);
struct td_fp_gen *td_fp_gen_ref(struct td_fp_gen *g);
void td_fp_gen_unref(struct td_fp_gen *g);

/* the domain rules for host: NULL when allowed, else the denial text ("denied by ...") in out */
const char *td_fp_domain_check(const struct td_fp_gen *g, const char *host, bool ip, char *out,
			       size_t size);
/* allow_clients for peer: true when allowed */
bool td_fp_client_allowed(const struct td_fp_gen *g, const struct sockaddr *peer);
bool td_fp_port_allowed(const struct td_fp_gen *g, uint16_t port);

/* ---- counters ----------------------------------------------------------------------------- */

/* one worker's counters; only that worker writes them (td_gw_inc) */
struct td_fp_wstat {
	uint64_t req[TD_FP_M_MAX][TD_GW_NCLASS];
	uint64_t denied[TD_FP_R_MAX];
	uint64_t cache_hits, cache_misses, cache_revalidated, cache_refreshed, cache_bytes;
	uint64_t cache_stored, cache_collapsed;
	uint64_t tunnels, tunnel_bytes;
	uint64_t dns_lookups, dns_failures, dns_timeouts, dns_cache_hits;
} __attribute__((aligned(64)));

/* ---- access log --------------------------------------------------------------------------- */

/* Squid result codes */
enum td_fp_code {
	TD_FP_C_MISS = 0, TD_FP_C_HIT, TD_FP_C_REFRESH_UNMODIFIED, TD_FP_C_REFRESH_MODIFIED,
	TD_FP_C_DENIED, TD_FP_C_TUNNEL, TD_FP_C_NONE,
};
const char *td_fp_code_name(unsigned int code);

struct td_fp_log_rec {
	uint64_t time_ms;		/* wall clock, ms */
	uint64_t elapsed_ms;
	const char *client;
	unsigned int code;		/* enum td_fp_code */
	unsigned int status;
	uint64_t bytes;
	const char *method;
	size_t method_len;
	const char *url;
	size_t url_len;
	const char *ident;		/* NULL: "-" */
	const char *peer;		/* upstream address, NULL: HIER_NONE/- */
	const char *ctype;		/* NULL: "-" */
	size_t ctype_len;
	unsigned int version;		/* combined: 10 / 11 */
	const char *referer, *ua;
	size_t referer_len, ua_len;
};

/* one line with '\n' (Squid native or combined); length, or the length needed (>= size) */
size_t td_fp_log_format(uint8_t format, const struct td_fp_log_rec *r, char *out, size_t size);
/* write one line to the shared access log file (the gateway's writer) */
void td_fp_log_line(struct td_gw_log *l, const char *line, size_t len);

/* Prometheus families td_fp_* from per-worker counters and engine counters */
struct td_hs_stats;
int td_fp_metrics_render(const struct td_fp_wstat *w, unsigned int nworkers,
			 const struct td_hs_stats *st, const struct td_cache_store_stats *cs,
			 struct td_metrics_buf *out);

/* ---- resolver pool (fp_dns.c) ------------------------------------------------------------- */

struct td_fp_dns;

/* one answer */
struct td_fp_addrs {
	int err;			/* 0 or an EAI_* code */
	size_t n;
	struct sockaddr_storage a[TD_FP_MAX_ADDRS];
};

/* generic wake-ups on a worker's loop */
struct td_fp_wake {
	void (*fn)(struct td_fp_wake *wk);
	struct td_fp_wake *next, *prev;
	bool posted;
};

/*
 * A worker's mailbox: results of other threads (DNS answers, collapsed cache fills) run on
 * that worker's loop through an ev_async. Lives as long as the proxy.
 */
struct td_fp_mbox;

/* the job of one lookup, owned by the request until it is cancelled */
struct td_fp_dns_job {
	char name[TD_FP_HOST_MAX];
	struct td_fp_addrs res;
	struct td_fp_wake wk;		/* wk.fn runs on the requester's worker with the answer */
	struct td_fp_mbox *mbox;	/* the requester's worker mailbox */
	void *arg;			/* the requester's */
	bool cancelled;			/* the pool frees the job */
	bool answered;			/* posted to the mailbox: the requester frees it */
	uint32_t ttl_ms;		/* DNS cache time of the answer, 0: none */
	struct td_fp_dns_job *next;	/* pool queue */
};

struct td_fp_dns *td_fp_dns_new(unsigned int threads);
/* cancels nothing: every job must have been cancelled (requests done); joins the threads */
void td_fp_dns_free(struct td_fp_dns *d);
/* a cached answer for name (0 and res), or -ENOENT */
int td_fp_dns_cached(struct td_fp_dns *d, const char *name, struct td_fp_addrs *res);
/* queue job (name, wk.fn, mbox, ttl_ms set): wk.fn runs on mbox's loop. 0 or -errno */
int td_fp_dns_submit(struct td_fp_dns *d, struct td_fp_dns_job *job);
/* on the requester's worker, before wk.fn ran: freed now or by the pool, wk.fn never runs */
void td_fp_dns_cancel(struct td_fp_dns *d, struct td_fp_dns_job *job);
/* DNS cache entries (status) */
size_t td_fp_dns_cache_size(struct td_fp_dns *d);

/* mailbox of a worker; start on the worker's thread with its loop (lazily, idempotent) */
struct td_fp_mbox *td_fp_mbox_new(void);
void td_fp_mbox_free(struct td_fp_mbox *m);
void td_fp_mbox_start(struct td_fp_mbox *m, void *ev_loop);
bool td_fp_mbox_started(const struct td_fp_mbox *m);
/* from any thread: run wk->fn on m's loop soon */
void td_fp_mbox_post(struct td_fp_mbox *m, struct td_fp_wake *wk);
/* on m's thread: withdraw wk if it is still queued */
void td_fp_mbox_cancel(struct td_fp_mbox *m, struct td_fp_wake *wk);

/* ---- transparent mode ---------------------------------------------------------------------- */

/*
 * The original destination of a redirected connection comes from td_fp_origdst_lookup() of
 * user/lib/fp_redirect.h (the BPF side's, keyed as include/td/fproxy.h says: client address
 * and port, listener port); the agent passes the map fd with td_fp_set_origdst_fd().
 */

#endif
