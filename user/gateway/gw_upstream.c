/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Gateway upstreams: backend selection (rr, least conn, random two, hash) and outlier ejection. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gw_internal.h"

#define LD(p)		__atomic_load_n((p), __ATOMIC_RELAXED)
#define ST(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELAXED)

const uint64_t td_gw_bucket_us[TD_GW_NBUCKETS] = {
	1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000,
};

static const char *const td_gw_err_names[TD_GW_E_MAX] = {
	[TD_GW_E_REFUSED] = "refused",
	[TD_GW_E_CONNECT_TIMEOUT] = "connect_timeout",
	[TD_GW_E_TIMEOUT] = "timeout",
	[TD_GW_E_RESET] = "reset",
	[TD_GW_E_PROTOCOL] = "protocol",
	[TD_GW_E_STATUS] = "status",
	[TD_GW_E_OTHER] = "other",
};

const char *td_gw_err_kind_name(unsigned int k)
{
	return k < TD_GW_E_MAX ? td_gw_err_names[k] : "?";
}

int td_gw_err_kind(int err, unsigned int status)
{
	switch (err) {
	case 0:
		return status == 502 || status == 503 || status == 504 ? TD_GW_E_STATUS : -1;
	case -ECONNREFUSED: case -EHOSTUNREACH: case -ENETUNREACH: case -EADDRNOTAVAIL:
		return TD_GW_E_REFUSED;
	case -ETIMEDOUT:
		return TD_GW_E_CONNECT_TIMEOUT;
	case -ETIME:
		return TD_GW_E_TIMEOUT;
	case -ECONNRESET: case -EPIPE: case -ECONNABORTED:
		return TD_GW_E_RESET;
	case -EPROTO: case -EBADMSG:
		return TD_GW_E_PROTOCOL;
	}
	return TD_GW_E_OTHER;
}

/* ---- backend state ------------------------------------------------------------------------ */

struct td_gw_bstate *td_gw_bstate_new(const char *key)
{
	struct td_gw_bstate *b = aligned_alloc(64, sizeof(*b));

	if (!b)
		return NULL;
	memset(b, 0, sizeof(*b));
	b->refs = 1;
	b->healthy = true;	/* like td_health: healthy until proven otherwise */
	snprintf(b->key, sizeof(b->key), "%s", key);
	return b;
}

void td_gw_bstate_unref(struct td_gw_bstate *b)
{
	if (b && __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(b);
}

bool td_gw_bstate_usable(const struct td_gw_bstate *b, uint64_t now_ns)
{
	return LD(&b->healthy) && LD(&b->ejected_until_ns) <= now_ns;
}

bool td_gw_bstate_ejected(const struct td_gw_bstate *b, uint64_t now_ns)
{
	return LD(&b->ejected_until_ns) > now_ns;
}

bool td_gw_outcome(struct td_gw_bstate *b, uint32_t threshold, uint32_t ejection_ms,
		   bool failure, uint64_t now_ns)
{
	uint64_t until = LD(&b->ejected_until_ns);
	uint64_t next = now_ns + (uint64_t)ejection_ms * 1000000u;
	uint32_t n;

	if (!failure) {
		/* avoid dirtying the shared cache line on the common path */
		if (LD(&b->consec_fail))
			ST(&b->consec_fail, 0);
		/* probation passed: forget the ejection */
		if (until && until <= now_ns)
			__atomic_compare_exchange_n(&b->ejected_until_ns, &until, 0, false,
						    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
		return false;
	}
	if (!threshold)
		return false;
	if (until > now_ns)
		return false;	/* already ejected: an attempt that started before */
	if (until) {
		/* failure on probation: out again at once */
		if (!__atomic_compare_exchange_n(&b->ejected_until_ns, &until, next, false,
						 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			return false;
		ST(&b->consec_fail, 0);
		__atomic_add_fetch(&b->ejections, 1, __ATOMIC_RELAXED);
		return true;
	}
	n = __atomic_add_fetch(&b->consec_fail, 1, __ATOMIC_RELAXED);
	if (n < threshold)
		return false;
	if (!__atomic_compare_exchange_n(&b->ejected_until_ns, &until, next, false,
					 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return false;	/* another worker ejected it first */
	ST(&b->consec_fail, 0);
	__atomic_add_fetch(&b->ejections, 1, __ATOMIC_RELAXED);
	return true;
}

/* ---- counters ----------------------------------------------------------------------------- */

struct td_gw_stat *td_gw_stat_new(const char *name, unsigned int nworkers)
{
	size_t sz = sizeof(struct td_gw_stat) + (size_t)nworkers * sizeof(struct td_gw_wstat);
	struct td_gw_stat *s;

	sz = (sz + 63) & ~(size_t)63;
	s = aligned_alloc(64, sz);
	if (!s)
		return NULL;
	memset(s, 0, sz);
	s->refs = 1;
	s->nworkers = nworkers;
	snprintf(s->name, sizeof(s->name), "%s", name);
	return s;
}

void td_gw_stat_unref(struct td_gw_stat *s)
{
	if (s && __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(s);
}

void td_gw_stat_request(struct td_gw_stat *s, unsigned int w, unsigned int status,
			uint64_t dur_ns)
{
	struct td_gw_wstat *ws = &s->w[w < s->nworkers ? w : 0];
	uint64_t us = dur_ns / 1000u;
	unsigned int b = 0;

	if (status >= 100 && status < 600)
		td_gw_inc(&ws->cls[status / 100 - 1], 1);
	while (b < TD_GW_NBUCKETS && us > td_gw_bucket_us[b])
		b++;
	td_gw_inc(&ws->lat[b], 1);
	td_gw_inc(&ws->lat_sum_us, us);
}

void td_gw_stat_sum(const struct td_gw_stat *s, struct td_gw_wstat *out)
{
	const uint64_t *src;
	uint64_t *dst = (uint64_t *)out;
	size_t nw = offsetof(struct td_gw_wstat, auth_failed) / sizeof(uint64_t) + 1;

	memset(out, 0, sizeof(*out));
	for (unsigned int w = 0; w < s->nworkers; w++) {
		src = (const uint64_t *)&s->w[w];
		for (size_t i = 0; i < nw; i++)
			dst[i] += LD(&src[i]);
	}
}

/* ---- hashing and randomness --------------------------------------------------------------- */

uint64_t td_gw_mix64(uint64_t x)
{
	/* murmur3 fmix64: full avalanche, so rendezvous scores are independent per backend */
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

uint64_t td_gw_hash(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return td_gw_mix64(h);
}

uint64_t td_gw_rand(uint64_t *s)
{
	/* xorshift64*: per-worker, not for secrets */
	uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ULL;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

/* ---- selection ---------------------------------------------------------------------------- */

/* candidate filters, from the strictest */
enum { TD_GW_F_USABLE = 1, TD_GW_F_UNTRIED = 2 };

static bool td_gw_cand(const struct td_gw_upstream *u, size_t i, unsigned int f,
		       const struct td_gw_pick *p)
{
	if ((f & TD_GW_F_UNTRIED) && (p->tried & (1ULL << (i & 63))))
		return false;
	if ((f & TD_GW_F_USABLE) && !td_gw_bstate_usable(u->be[i].st, p->now_ns))
		return false;
	return true;
}

static int td_gw_pick_pass(struct td_gw_upstream *u, struct td_gw_pick *p, unsigned int f)
{
	size_t n = u->n, best = SIZE_MAX, i, j, start;
	int64_t bi = 0, bj = 0, load;
	uint64_t score, best_score = 0;

	switch (u->lb) {
	case TD_GW_LB_LEAST_CONN:
		start = u->rr[p->worker].n++ % n;
		for (size_t k = 0; k < n; k++) {
			i = (start + k) % n;
			if (!td_gw_cand(u, i, f, p))
				continue;
			load = LD(&u->be[i].st->in_flight);
			if (best == SIZE_MAX || load < bi) {
				best = i;
				bi = load;
			}
		}
		break;
	case TD_GW_LB_RANDOM_TWO:
		/* two random candidates (probing forward from random slots), fewer in flight wins */
		i = td_gw_rand(p->rng) % n;
		for (size_t k = 0; k < n && !td_gw_cand(u, i, f, p); k++)
			i = (i + 1) % n;
		if (!td_gw_cand(u, i, f, p))
			break;
		best = i;
		j = td_gw_rand(p->rng) % n;
		for (size_t k = 0; k < n && (j == i || !td_gw_cand(u, j, f, p)); k++)
			j = (j + 1) % n;
		if (j == i || !td_gw_cand(u, j, f, p))
			break;
		bi = LD(&u->be[i].st->in_flight);
		bj = LD(&u->be[j].st->in_flight);
		if (bj < bi)
			best = j;
		break;
	case TD_GW_LB_HASH:
		/* rendezvous (highest random weight): removing a backend moves only its keys */
		for (i = 0; i < n; i++) {
			if (!td_gw_cand(u, i, f, p))
				continue;
			score = td_gw_mix64(p->hash ^ u->be[i].seed);
			if (best == SIZE_MAX || score > best_score) {
				best = i;
				best_score = score;
			}
		}
		break;
	default:	/* round robin */
		start = u->rr[p->worker].n++ % n;
		for (size_t k = 0; k < n; k++) {
			i = (start + k) % n;
			if (td_gw_cand(u, i, f, p)) {
				best = i;
				break;
			}
		}
		break;
	}
	return best == SIZE_MAX ? -ENOENT : (int)best;
}

int td_gw_pick_backend(struct td_gw_upstream *u, struct td_gw_pick *p)
{
	static const unsigned int passes[] = {
		TD_GW_F_USABLE | TD_GW_F_UNTRIED, TD_GW_F_USABLE, TD_GW_F_UNTRIED, 0,
	};
	int i = -ENOENT;

	p->fail_open = false;
	if (!u->n)
		return -ENOENT;
	for (size_t k = 0; k < sizeof(passes) / sizeof(passes[0]); k++) {
		/* a pass without the usable filter means every backend is out */
		if (!(passes[k] & TD_GW_F_USABLE))
			p->fail_open = true;
		i = td_gw_pick_pass(u, p, passes[k]);
		if (i >= 0)
			break;
	}
	return i;
}
