/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Gateway runtime internals: generations, backend state, pure helpers for the unit tests. */
#ifndef TD_GW_INTERNAL_H
#define TD_GW_INTERNAL_H

/*
 * Everything here is engine-free (no td_hs_* call), so selftests/unit/test_gateway.c can test
 * it without worker threads. gateway.c glues it to the HTTP engine (server.h).
 *
 * Object lifetimes
 *  - struct td_gw_gen (one configuration generation) is immutable after td_gw_gen_build() and
 *    refcounted with atomics: the gateway holds one reference to the published generation,
 *    each worker caches one, each request holds one from ops->request to ops->done. The last
 *    unref frees it, on whatever thread that happens.
 *  - struct td_gw_bstate (a backend's runtime state) and struct td_gw_stat (per-route,
 *    per-upstream counters) are refcounted too and shared by consecutive generations: a build
 *    with a previous generation takes a reference on the state of every backend / route /
 *    upstream that keeps its key, so ejection, health, in-flight counts and counters survive
 *    reloads. Workers update them with relaxed atomics (bstate) or as the single writer of
 *    their own slot (stat).
 *  - struct td_gw_log (access log file) is shared the same way when path and format stay.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>

#include "addr.h"
#include "auth.h"
#include "config.h"
#include "metrics.h"
#include "parser.h"
#include "ratelimit.h"
#include "route.h"

struct td_tls;

#define TD_GW_RID_MAX		128u	/* longest client request id kept */
#define TD_GW_FWD_MAX		2048u	/* X-Forwarded-For / Forwarded value bytes incl. NUL */
#define TD_GW_NCLASS		5u	/* 1xx .. 5xx */
#define TD_GW_NBUCKETS		13u	/* latency buckets besides +Inf */
#define TD_GW_KEY_LEN		(TD_GW_NAME_LEN + 64u)	/* "UPSTREAM/ADDR:PORT" */
#define TD_GW_BASIC_CACHE	1024u	/* Basic verifications cached per route */
#define TD_GW_BASIC_TTL_S	60u
#define TD_GW_AGG_HEADER	"X-Td-Aggregate"

/* upper bounds of the latency histogram buckets, microseconds */
extern const uint64_t td_gw_bucket_us[TD_GW_NBUCKETS];

/* upstream error kinds (label kind of td_gw_upstream_errors_total) */
enum td_gw_err_kind {
	TD_GW_E_REFUSED = 0,		/* connect refused, unreachable */
	TD_GW_E_CONNECT_TIMEOUT,	/* connect did not complete in connect_timeout */
	TD_GW_E_TIMEOUT,		/* no response head within response_timeout */
	TD_GW_E_RESET,			/* connection reset / closed before a response head */
	TD_GW_E_PROTOCOL,		/* invalid response */
	TD_GW_E_STATUS,			/* answered 502, 503 or 504 */
	TD_GW_E_OTHER,
	TD_GW_E_MAX,
};
const char *td_gw_err_kind_name(unsigned int k);
/* kind of a failed attempt (err < 0, or err 0 and a 502/503/504 status); -1: not a failure */
int td_gw_err_kind(int err, unsigned int status);

/* ---- backend runtime state ---------------------------------------------------------------- */

struct td_gw_bstate {
	int refs;			/* atomic */
	char key[TD_GW_KEY_LEN];	/* "UPSTREAM/ADDR:PORT" (health key without "gw:") */
	/* written by workers (relaxed atomics) */
	int64_t in_flight __attribute__((aligned(64)));
	uint32_t consec_fail;
	bool healthy;			/* active health (main thread writes) */
	uint64_t ejected_until_ns;	/* CLOCK_MONOTONIC; 0 = never ejected or cleared */
	uint64_t ejections;
};

struct td_gw_bstate *td_gw_bstate_new(const char *key);
void td_gw_bstate_unref(struct td_gw_bstate *b);

/* usable now: healthy and not ejected (an expired ejection is probation: usable) */
bool td_gw_bstate_usable(const struct td_gw_bstate *b, uint64_t now_ns);
/* ejected now (for status and metrics) */
bool td_gw_bstate_ejected(const struct td_gw_bstate *b, uint64_t now_ns);

/*
 * Passive health: record one attempt's outcome at now_ns. A success clears the failure count
 * and a finished ejection (probation passed). A failure on probation ejects again at once;
 * otherwise `threshold` consecutive failures eject for ejection_ms (threshold 0: off).
 * Returns true when this call ejected the backend.
 */
bool td_gw_outcome(struct td_gw_bstate *b, uint32_t threshold, uint32_t ejection_ms,
		   bool failure, uint64_t now_ns);

/* ---- counters ----------------------------------------------------------------------------- */

/* one worker's counters of one route or upstream; only that worker writes them */
struct td_gw_wstat {
	uint64_t cls[TD_GW_NCLASS];	/* requests by status class */
	uint64_t lat[TD_GW_NBUCKETS + 1];	/* latency histogram, not cumulative; last: +Inf */
	uint64_t lat_sum_us;
	uint64_t err[TD_GW_E_MAX];	/* upstream errors by kind */
	uint64_t retries;
	uint64_t rate_limited;
	uint64_t auth_failed;
} __attribute__((aligned(64)));

struct td_gw_stat {
	int refs;			/* atomic */
	char name[TD_GW_NAME_LEN];
	unsigned int nworkers;
	struct td_gw_wstat w[];
};

struct td_gw_stat *td_gw_stat_new(const char *name, unsigned int nworkers);
void td_gw_stat_unref(struct td_gw_stat *s);
/* single-writer increment of a counter of the worker's own slot */
static inline void td_gw_inc(uint64_t *c, uint64_t v)
{
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
}
/* count one finished request of status and duration ns into worker w's slot */
void td_gw_stat_request(struct td_gw_stat *s, unsigned int w, unsigned int status,
			uint64_t dur_ns);
/* sum of every worker's slot */
void td_gw_stat_sum(const struct td_gw_stat *s, struct td_gw_wstat *out);

/* ---- generation --------------------------------------------------------------------------- */

struct td_gw_upstream;

struct td_gw_backend {
	struct td_gw_bstate *st;
	struct td_gw_upstream *up;
	struct sockaddr_storage ss;
	socklen_t sslen;
	char addr[TD_ENDPOINTSTRLEN];	/* normalised "ADDR:PORT" / "[V6]:PORT" */
	uint64_t seed;			/* rendezvous hashing: hash of the backend's address */
	uint32_t idx;
};

/* per-worker round robin counter, one cache line each */
struct td_gw_rr {
	uint32_t n;
} __attribute__((aligned(64)));

struct td_gw_upstream {
	char name[TD_GW_NAME_LEN];
	uint8_t lb;			/* enum td_gw_lb */
	uint8_t hash_key;		/* enum td_gw_hash_key */
	char hash_header[TD_GW_HDR_NAME_LEN];
	uint32_t retries;
	uint32_t connect_timeout_ms;
	uint32_t response_timeout_ms;
	uint32_t outlier_failures;
	uint32_t outlier_ejection_ms;
	uint32_t max_idle;
	struct td_health_cfg health;
	struct td_gw_backend *be;
	size_t n;
	struct td_gw_rr *rr;		/* [nworkers] */
	struct td_gw_stat *stat;
	int fail_open_logged;		/* atomic: "all backends out" logged in this generation */
};

/* Basic auth verification cache (SHA-256 of the Authorization value -> user), see docs */
struct td_gw_basic_entry {
	uint8_t sha[32];
	uint64_t expires_s;		/* CLOCK_MONOTONIC seconds; 0 = empty */
	char user[TD_AUTH_IDENTITY_MAX];
};
struct td_gw_basic_cache {
	pthread_mutex_t mu;
	struct td_gw_basic_entry e[TD_GW_BASIC_CACHE];
};
/* 0 and the user on a fresh hit, -ENOENT otherwise */
int td_gw_basic_cache_get(struct td_gw_basic_cache *c, const uint8_t sha[32], uint64_t now_s,
			  char *user, size_t usersz);
void td_gw_basic_cache_put(struct td_gw_basic_cache *c, const uint8_t sha[32], uint64_t now_s,
			   const char *user);

/* a header to add, names and values owned by the route */
struct td_gw_hdr {
	const char *name;
	const char *value;
};

struct td_gw_route {
	char name[TD_GW_NAME_LEN];
	int line;
	struct td_gw_upstream *up;	/* NULL: aggregate route */
	bool strip;			/* strip_prefix configured: td_route_rewrite() */
	struct td_auth *auth;		/* NULL: none */
	uint8_t auth_kind;		/* enum td_gw_auth_kind */
	struct td_gw_basic_cache *basic;	/* TD_GW_AUTH_BASIC */
	char identity_header[TD_GW_HDR_NAME_LEN];
	struct td_rl *rl;		/* NULL: no rate limit */
	uint8_t rl_key;			/* enum td_rl_key_kind */
	/* request edit: removals (config, names the config adds, ours) and the config's adds */
	const char **req_rm;
	size_t n_req_rm;
	struct td_gw_hdr *req_add;
	size_t n_req_add;
	const char **resp_rm;
	size_t n_resp_rm;
	struct td_gw_hdr *resp_add;
	size_t n_resp_add;
	struct td_gw_agg_cfg *agg;	/* aggregate members (copied) */
	size_t n_agg;
	struct td_gw_stat *stat;
	char *strings;			/* backing store of the edit lists */
};

/* the access log file */
struct td_gw_log {
	int refs;			/* atomic */
	pthread_mutex_t mu;
	FILE *f;			/* NULL: off */
	bool own;			/* a path we opened (reopened by td_gw_log_reopen) */
	uint8_t format;			/* enum td_gw_log_format */
	char path[TD_GW_FILE_LEN];
};

struct td_gw_gen {
	int refs;			/* atomic */
	uint64_t number;
	unsigned int nworkers;
	struct td_route_table *rt;
	struct td_gw_route *routes;
	size_t n_routes;
	struct td_gw_upstream *ups;
	size_t n_ups;
	struct td_tls *tls;		/* NULL without tls certs */
	struct td_gw_cidr trusted[TD_GW_MAX_TRUSTED];
	size_t n_trusted;
	char rid_header[TD_GW_HDR_NAME_LEN];
	struct td_gw_log *log;		/* NULL: built for a check */
	struct td_gw_stat *unrouted;	/* requests without a route (404) */
	uint64_t agg_max_body;
};

/*
 * Build a generation from cfg->gateway. prev (may be NULL) lends its backend states, counters
 * and access log to keys that stay. check: do not open the access log. NULL + errno with
 * FILE:LINE errors in errs.
 */
struct td_gw_gen *td_gw_gen_build(const struct td_config *cfg, const struct td_gw_gen *prev,
				  unsigned int nworkers, uint64_t number, bool check,
				  struct td_errors *errs);
struct td_gw_gen *td_gw_gen_ref(struct td_gw_gen *g);
void td_gw_gen_unref(struct td_gw_gen *g);
/* the upstream named name, NULL if none */
struct td_gw_upstream *td_gw_gen_upstream(const struct td_gw_gen *g, const char *name);
/* the backend whose health key ("gw:UPSTREAM/ADDR:PORT") is key, NULL if none */
struct td_gw_backend *td_gw_gen_backend_by_key(const struct td_gw_gen *g, const char *key);

/* ---- backend selection -------------------------------------------------------------------- */

/* per-request selection input */
struct td_gw_pick {
	uint64_t now_ns;
	uint64_t tried;			/* bit (idx % 64) of every backend tried already */
	uint64_t hash;			/* lb hash: hash of the client IP or the header value */
	uint64_t *rng;			/* per-worker xorshift state (random_two) */
	unsigned int worker;		/* round robin slot */
	bool fail_open;			/* out: every backend was out, chose among all */
};

/*
 * Pick a backend of u: healthy, not ejected and not tried first; then healthy ones tried
 * already; when no backend is usable, all of them (fail open). Returns the index.
 */
int td_gw_pick_backend(struct td_gw_upstream *u, struct td_gw_pick *p);
/* 64-bit hash of bytes (FNV-1a then a finalizer), stable across runs */
uint64_t td_gw_hash(const void *data, size_t len);
uint64_t td_gw_mix64(uint64_t x);
uint64_t td_gw_rand(uint64_t *state);

/* ---- forwarded headers -------------------------------------------------------------------- */

/* the client's address: IPv4-mapped IPv6 turned into IPv4; 0 or -EAFNOSUPPORT */
int td_gw_peer_addr(const struct sockaddr *sa, union td_addr *addr, uint8_t *family);
bool td_gw_trusted(const struct td_gw_cidr *c, size_t n, const union td_addr *a, uint8_t family);

struct td_gw_fwd_in {
	const struct sockaddr *peer;
	bool tls;
	const struct td_http_msg *msg;	/* request head (slices of buf) */
	const char *buf;
	const struct td_gw_cidr *trusted;
	size_t n_trusted;
	const char *rid_header;		/* X-Request-Id by default */
	const char *rid;		/* keep this id (a retry): NULL to take or make one */
};

struct td_gw_fwd_out {
	char client[TD_ADDRSTRLEN];	/* peer address text */
	uint8_t family;
	union td_addr addr;
	bool trusted;
	char xff[TD_GW_FWD_MAX];	/* X-Forwarded-For */
	char proto[16];			/* X-Forwarded-Proto */
	char xfh[TD_GW_HOST_LEN + 8];	/* X-Forwarded-Host, "" when the request has no host */
	char fwd[TD_GW_FWD_MAX];	/* Forwarded (RFC 7239) */
	char rid[TD_GW_RID_MAX + 1];	/* request id to send and echo */
	bool rid_generated;
};

/* compute every forwarded header of one request; 0 or -errno (-EAFNOSUPPORT: not an IP peer) */
int td_gw_forwarded(const struct td_gw_fwd_in *in, struct td_gw_fwd_out *out);
/* a client request id worth keeping: 1..128 bytes of [A-Za-z0-9._-] */
bool td_gw_rid_sane(const char *s, size_t len);
/* 32 lower-case hex digits of 128 random bits into out (>= 33 bytes) */
void td_gw_rid_generate(char *out);

/* ---- aggregation -------------------------------------------------------------------------- */

struct td_gw_agg_member {
	const char *name;
	int err;			/* 0 or -errno of the fetch */
	unsigned int status;		/* when err == 0 */
	const char *body;
	size_t body_len;
};

/* NULL when m is a usable member (2xx with a JSON body), else the error name and *status */
const char *td_gw_agg_classify(const struct td_gw_agg_member *m, unsigned int *status);
/* the body is exactly one JSON value (json-c strict tokener), surrounding whitespace allowed */
bool td_gw_json_valid(const char *s, size_t len);
/*
 * Assemble {"name1": body1, "name2": body2} in member order into body; failed gets the
 * comma-separated names of failed members ("" when none). *status: 200, or 502 when every
 * member failed. 0 or -ENOMEM.
 */
int td_gw_agg_build(const struct td_gw_agg_member *m, size_t n, struct td_metrics_buf *body,
		    struct td_metrics_buf *failed, unsigned int *status);

/* ---- access log --------------------------------------------------------------------------- */

/* one request as logged; strings with lengths may be NULL (logged as "-" / null) */
struct td_gw_log_rec {
	const char *client;
	const char *identity;		/* NULL: "-" */
	time_t time;			/* wall clock seconds */
	const char *method;
	size_t method_len;
	const char *target;
	size_t target_len;
	unsigned int version;		/* 10 or 11 */
	unsigned int status;
	uint64_t bytes;
	const char *referer;
	size_t referer_len;
	const char *ua;
	size_t ua_len;
	uint64_t rt_ns;
	const char *upstream;		/* NULL: "-" */
	const char *route;		/* NULL: "-" */
	const char *rid;
};

/* format one line (with its '\n') into out; returns its length, or the length needed (>= size) */
size_t td_gw_log_format(uint8_t format, const struct td_gw_log_rec *r, char *out, size_t size);
/* open path ("stdout", "stderr", "off" or a file); NULL + errno */
struct td_gw_log *td_gw_log_open(const char *path, uint8_t format);
struct td_gw_log *td_gw_log_ref(struct td_gw_log *l);
void td_gw_log_unref(struct td_gw_log *l);
/* write one formatted record (one mutex-protected fwrite of a whole line) */
void td_gw_log_write(struct td_gw_log *l, const struct td_gw_log_rec *r);
int td_gw_log_reopen(struct td_gw_log *l);

/* ---- metrics ------------------------------------------------------------------------------ */

/* the td_gw_* families of generation g (may be NULL: HELP/TYPE only) */
int td_gw_metrics_render(const struct td_gw_gen *g, struct td_metrics_buf *out);

#endif
