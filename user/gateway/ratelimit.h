/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Gateway rate limiter: a token bucket per key in a fixed-memory hash table with LRU eviction. */
#ifndef TD_GW_RATELIMIT_H
#define TD_GW_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

/*
 * Contract: one limiter per configured rate_limit (e.g. per route), shared by every worker
 * (an internal mutex guards it). The caller extracts the key bytes (client IP, API key, JWT
 * subject) and passes a monotonic clock in nanoseconds (CLOCK_MONOTONIC), so tests can use a
 * fake one. All memory is allocated by td_rl_new(); td_rl_take() never allocates: when max_keys
 * keys are tracked, the least recently used key is forgotten (its client starts with a full
 * bucket again, counted in evicted). Semantics: docs/gateway-routing.md.
 */

#define TD_RL_KEY_MAX		64u		/* key bytes; hash longer keys (e.g. SHA-256) first */
#define TD_RL_DEF_KEYS		65536u		/* default max_keys */
#define TD_RL_MAX_KEYS		(1u << 20)	/* upper bound of max_keys (about 100 MiB) */
#define TD_RL_MAX_RATE		1000000000u	/* tokens per period */
#define TD_RL_MAX_PERIOD_MS	86400000u	/* one day; burst * period is bounded too (EINVAL) */

/* where the key comes from (the caller extracts it; the limiter only sees bytes) */
enum td_rl_key_kind {
	TD_RL_KEY_CLIENT_IP = 0,	/* "client_ip": the 4 or 16 address bytes */
	TD_RL_KEY_API_KEY,		/* "api_key": the verified API key (or its hash) */
	TD_RL_KEY_JWT_SUB,		/* "jwt_sub": the verified JWT subject */
};

struct td_rl_conf {
	uint32_t rate;			/* tokens added per period, 1..TD_RL_MAX_RATE */
	uint32_t burst;			/* bucket size (requests allowed at once), >= 1 */
	uint32_t period_ms;		/* 0: 1000 (rate per second); max TD_RL_MAX_PERIOD_MS */
	uint32_t max_keys;		/* keys tracked at once, 0: TD_RL_DEF_KEYS */
};

/* counters for metrics (monotonic except keys) */
struct td_rl_stats {
	uint64_t allowed;		/* td_rl_take() returned 0 */
	uint64_t limited;		/* td_rl_take() returned a Retry-After */
	uint64_t evicted;		/* keys forgotten to make room */
	uint32_t keys;			/* keys tracked now */
	uint32_t max_keys;
};

struct td_rl;

/* a limiter; NULL + errno (EINVAL for a bad conf, ENOMEM) */
struct td_rl *td_rl_new(const struct td_rl_conf *conf);

/* free a limiter; NULL is ignored */
void td_rl_free(struct td_rl *rl);

/*
 * Take one token from key's bucket at time now_ns. 0: allowed. > 0: limited, the value is the
 * Retry-After in whole seconds (rounded up, >= 1) after which one token is available. -EINVAL
 * (no key or key_len 0) or -E2BIG (key_len > TD_RL_KEY_MAX).
 */
int td_rl_take(struct td_rl *rl, const void *key, size_t key_len, uint64_t now_ns);

/* copy the counters */
void td_rl_stats_get(struct td_rl *rl, struct td_rl_stats *st);

/* enum td_rl_key_kind of a config name, -EINVAL for an unknown one */
int td_rl_key_kind_parse(const char *name);

#endif
