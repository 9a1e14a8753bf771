/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Gateway rate limiter: exact integer token buckets, SipHash-keyed table, index-linked LRU. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "ratelimit.h"

#define TD_RL_NIL	UINT32_MAX
#define TD_RL_SEC	1000000000ull

/* one tracked key: bucket state, hash chain and LRU links are indices into rl->ent */
struct td_rl_ent {
	uint64_t tokens;		/* scaled tokens (one token = rl->one), <= rl->cap */
	uint64_t last_ns;		/* time of the last refill */
	uint32_t chain;			/* next entry in the same hash bucket */
	uint32_t prev;			/* LRU: toward the most recently used */
	uint32_t next;			/* LRU: toward the least recently used */
	uint32_t bucket;		/* hash bucket index */
	uint8_t key_len;
	uint8_t key[TD_RL_KEY_MAX];
};

struct td_rl {
	pthread_mutex_t lock;
	uint64_t one;			/* one token = period in ns: refill is exact integer math */
	uint64_t rate;			/* scaled tokens per nanosecond == tokens per period */
	uint64_t cap;			/* burst * one */
	uint64_t full_ns;		/* time to fill an empty bucket, rounded up */
	uint64_t sip[2];		/* random SipHash key: chains cannot be flooded on purpose */
	uint32_t max_keys;
	uint32_t nkeys;
	uint32_t mask;			/* buckets - 1 */
	uint32_t head;			/* most recently used */
	uint32_t tail;			/* least recently used: evicted first */
	uint32_t *buckets;
	struct td_rl_ent *ent;
	struct td_rl_stats st;
};

#define TD_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define TD_SIPROUND							\
	do {								\
		v0 += v1; v1 = TD_ROTL(v1, 13); v1 ^= v0; v0 = TD_ROTL(v0, 32); \
		v2 += v3; v3 = TD_ROTL(v3, 16); v3 ^= v2;		\
		v0 += v3; v3 = TD_ROTL(v3, 21); v3 ^= v0;		\
		v2 += v1; v1 = TD_ROTL(v1, 17); v1 ^= v2; v2 = TD_ROTL(v2, 32); \
	} while (0)

/* SipHash-2-4 of in[0..len) under k */
static uint64_t td_rl_siphash(const uint64_t k[2], const uint8_t *in, size_t len)
{
	uint64_t v0 = 0x736f6d6570736575ull ^ k[0], v1 = 0x646f72616e646f6dull ^ k[1];
	uint64_t v2 = 0x6c7967656e657261ull ^ k[0], v3 = 0x7465646279746573ull ^ k[1];
	uint64_t b = (uint64_t)len << 56, m;
	size_t i, left = len & 7;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&m, in + i, 8);	/* little-endian hosts; the hash only has to be keyed */
		v3 ^= m;
		TD_SIPROUND;
		TD_SIPROUND;
		v0 ^= m;
	}
	for (size_t j = 0; j < left; j++)
		b |= (uint64_t)in[i + j] << (8 * j);
	v3 ^= b;
	TD_SIPROUND;
	TD_SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	TD_SIPROUND;
	TD_SIPROUND;
	TD_SIPROUND;
	TD_SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

struct td_rl *td_rl_new(const struct td_rl_conf *conf)
{
	struct td_rl *rl = NULL;
	uint32_t nb = 1;
	int rc = 0;

	if (!conf || !conf->rate || conf->rate > TD_RL_MAX_RATE || !conf->burst ||
	    conf->max_keys > TD_RL_MAX_KEYS || conf->period_ms > TD_RL_MAX_PERIOD_MS ||
	    (uint64_t)conf->burst * (conf->period_ms ? conf->period_ms : 1000u) > (1ull << 42)) {
		rc = -EINVAL;
		goto cleanup;
	}
	rl = calloc(1, sizeof(*rl));
	if (!rl) {
		rc = -ENOMEM;
		goto cleanup;
	}
	rl->max_keys = conf->max_keys ? conf->max_keys : TD_RL_DEF_KEYS;
	rl->rate = conf->rate;
	rl->one = (uint64_t)(conf->period_ms ? conf->period_ms : 1000u) * 1000000u;
	rl->cap = (uint64_t)conf->burst * rl->one;
	rl->full_ns = (rl->cap + rl->rate - 1) / rl->rate;
	while (nb < 2 * rl->max_keys)
		nb <<= 1;
	rl->mask = nb - 1;
	rl->head = rl->tail = TD_RL_NIL;
	rl->st.max_keys = rl->max_keys;
	if (getrandom(rl->sip, sizeof(rl->sip), 0) != (ssize_t)sizeof(rl->sip)) {
		rc = errno ? -errno : -EIO;
		goto cleanup;
	}
	rl->buckets = malloc((size_t)nb * sizeof(*rl->buckets));
	rl->ent = calloc(rl->max_keys, sizeof(*rl->ent));
	if (!rl->buckets || !rl->ent) {
		rc = -ENOMEM;
		goto cleanup;
	}
	memset(rl->buckets, 0xff, (size_t)nb * sizeof(*rl->buckets));
	rc = -pthread_mutex_init(&rl->lock, NULL);

cleanup:
	if (rc) {
		if (rl) {
			free(rl->buckets);
			free(rl->ent);
			free(rl);
		}
		errno = -rc;
		return NULL;
	}
	return rl;
}

void td_rl_free(struct td_rl *rl)
{
	if (!rl)
		return;
	pthread_mutex_destroy(&rl->lock);
	free(rl->buckets);
	free(rl->ent);
	free(rl);
}

static void td_rl_lru_unlink(struct td_rl *rl, uint32_t i)
{
	struct td_rl_ent *e = &rl->ent[i];

	if (e->prev != TD_RL_NIL)
		rl->ent[e->prev].next = e->next;
	else
		rl->head = e->next;
	if (e->next != TD_RL_NIL)
		rl->ent[e->next].prev = e->prev;
	else
		rl->tail = e->prev;
}

static void td_rl_lru_push(struct td_rl *rl, uint32_t i)
{
	struct td_rl_ent *e = &rl->ent[i];

	e->prev = TD_RL_NIL;
	e->next = rl->head;
	if (rl->head != TD_RL_NIL)
		rl->ent[rl->head].prev = i;
	rl->head = i;
	if (rl->tail == TD_RL_NIL)
		rl->tail = i;
}

/* remove entry i from its hash chain */
static void td_rl_chain_del(struct td_rl *rl, uint32_t i)
{
	uint32_t *p = &rl->buckets[rl->ent[i].bucket];

	while (*p != i)
		p = &rl->ent[*p].chain;
	*p = rl->ent[i].chain;
}

/* the entry of key, created with a full bucket (evicting the LRU one when full) if absent */
static uint32_t td_rl_get(struct td_rl *rl, const void *key, size_t key_len, uint64_t now_ns)
{
	uint32_t b = (uint32_t)td_rl_siphash(rl->sip, key, key_len) & rl->mask, i;
	struct td_rl_ent *e;

	for (i = rl->buckets[b]; i != TD_RL_NIL; i = rl->ent[i].chain) {
		e = &rl->ent[i];
		if (e->key_len == key_len && !memcmp(e->key, key, key_len)) {
			if (rl->head != i) {
				td_rl_lru_unlink(rl, i);
				td_rl_lru_push(rl, i);
			}
			return i;
		}
	}
	if (rl->nkeys < rl->max_keys) {
		i = rl->nkeys++;
	} else {
		i = rl->tail;
		td_rl_lru_unlink(rl, i);
		td_rl_chain_del(rl, i);
		rl->st.evicted++;
	}
	e = &rl->ent[i];
	e->tokens = rl->cap;
	e->last_ns = now_ns;
	e->key_len = (uint8_t)key_len;
	memcpy(e->key, key, key_len);
	e->bucket = b;
	e->chain = rl->buckets[b];
	rl->buckets[b] = i;
	td_rl_lru_push(rl, i);
	return i;
}

int td_rl_take(struct td_rl *rl, const void *key, size_t key_len, uint64_t now_ns)
{
	struct td_rl_ent *e;
	uint64_t wait_ns;
	int ret = 0;

	if (!rl || !key || !key_len)
		return -EINVAL;
	if (key_len > TD_RL_KEY_MAX)
		return -E2BIG;
	pthread_mutex_lock(&rl->lock);
	e = &rl->ent[td_rl_get(rl, key, key_len, now_ns)];
	if (now_ns > e->last_ns) {
		uint64_t dt = now_ns - e->last_ns;

		/* dt * rate cannot overflow below full_ns: it stays under cap + rate */
		if (dt >= rl->full_ns || e->tokens + dt * rl->rate >= rl->cap)
			e->tokens = rl->cap;
		else
			e->tokens += dt * rl->rate;
		e->last_ns = now_ns;
	}
	/* a clock that went backwards refills nothing and keeps last_ns */
	if (e->tokens >= rl->one) {
		e->tokens -= rl->one;
		rl->st.allowed++;
	} else {
		wait_ns = (rl->one - e->tokens + rl->rate - 1) / rl->rate;
		wait_ns = (wait_ns + TD_RL_SEC - 1) / TD_RL_SEC;
		ret = wait_ns ? (int)wait_ns : 1;
		rl->st.limited++;
	}
	pthread_mutex_unlock(&rl->lock);
	return ret;
}

void td_rl_stats_get(struct td_rl *rl, struct td_rl_stats *st)
{
	pthread_mutex_lock(&rl->lock);
	*st = rl->st;
	st->keys = rl->nkeys;
	pthread_mutex_unlock(&rl->lock);
}

int td_rl_key_kind_parse(const char *name)
{
	static const char *const names[] = {
		[TD_RL_KEY_CLIENT_IP] = "client_ip",
		[TD_RL_KEY_API_KEY] = "api_key",
		[TD_RL_KEY_JWT_SUB] = "jwt_sub",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (name && !strcmp(name, names[i]))
			return (int)i;
	return -EINVAL;
}
