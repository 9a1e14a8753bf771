/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* In-memory LRU response store of the forward-proxy cache, with refcounts and miss collapsing. */
#ifndef TD_PROXY_CACHE_STORE_H
#define TD_PROXY_CACHE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache_policy.h"

/*
 * Contract: single-threaded (call from one event loop). Objects are found by (primary key,
 * Vary key); a found object is returned with a reference the caller drops with
 * td_cache_obj_put(), so an object being streamed survives eviction, replacement and removal
 * (it is then unlinked: no longer found, no longer charged to the budget, freed on its last put).
 */

struct td_cache_store;

/* one stored response: head bytes then body bytes in data; read-only once stored */
struct td_cache_obj {
	uint32_t refs;			/* the store's while linked + one per holder */
	bool linked;			/* in the index and LRU list */
	uint64_t hash;			/* of key */
	char *key;			/* primary key (td_cache_key) */
	char *vkey;			/* secondary key (td_cache_vary_key), "" without Vary */
	struct td_cache_meta meta;	/* times, lifetime, directives of the response */
	size_t head_len;
	size_t body_len;
	size_t charge;			/* bytes charged to the budget */
	char *data;			/* head_len + body_len bytes */
	struct td_cache_obj *hnext;	/* hash chain */
	struct td_cache_obj *prev;	/* LRU list, head = most recently used */
	struct td_cache_obj *next;
};

/* a request waiting for another one's origin fetch; embedded in the caller's state */
struct td_cache_waiter {
	/* obj: the new response (a reference is held during the call; take one to keep it) or NULL
	 * with err < 0 when the filler got nothing storable: fetch from the origin yourself */
	void (*cb)(void *arg, struct td_cache_obj *obj, int err);
	void *arg;
	struct td_cache_waiter *next;	/* internal */
};

/* counters of a store */
struct td_cache_store_stats {
	size_t bytes;			/* charged bytes of linked objects */
	size_t objects;			/* linked objects */
	uint64_t evictions;		/* objects evicted for the budget */
	uint64_t pending;		/* keys being filled */
};

/* a store of at most budget bytes, objects of at most max_object bytes: NULL + errno */
struct td_cache_store *td_cache_store_new(size_t budget, size_t max_object);

/* free the store; objects still referenced stay valid until their last td_cache_obj_put() */
void td_cache_store_free(struct td_cache_store *s);

/*
 * Store a copy of head + body under (key, vkey), replacing the same pair, evicting the least
 * recently used objects to fit. out (may be NULL): the new object with a reference.
 * 0, -EFBIG (over max_object or budget), -ENOMEM, -EINVAL.
 */
int td_cache_store_put(struct td_cache_store *s, const char *key, const char *vkey,
		       const struct td_cache_meta *meta, const char *head, size_t head_len,
		       const char *body, size_t body_len, struct td_cache_obj **out);

/* the object (key, vkey), referenced and made most recent: or NULL + errno ENOENT */
struct td_cache_obj *td_cache_store_get(struct td_cache_store *s, const char *key, const char *vkey);

/*
 * The most recent object of key for which match(obj, arg) is true (NULL match: any), used to
 * test the Vary of each variant against a request: referenced, or NULL + errno ENOENT.
 */
struct td_cache_obj *td_cache_store_find(struct td_cache_store *s, const char *key,
					 bool (*match)(const struct td_cache_obj *obj, void *arg),
					 void *arg);

/* unlink every variant of key (invalidation): the number unlinked */
int td_cache_store_remove(struct td_cache_store *s, const char *key);

/* take another reference */
struct td_cache_obj *td_cache_obj_get(struct td_cache_obj *o);

/* drop a reference; frees an unlinked object on its last one. NULL is ignored */
void td_cache_obj_put(struct td_cache_obj *o);

void td_cache_store_stats(const struct td_cache_store *s, struct td_cache_store_stats *st);

/*
 * Collapse concurrent misses on ckey (the caller's choice, e.g. the primary key): 1 when the
 * caller is the filler (w unused: fetch, then call td_cache_collapse_done), 0 when w was queued
 * (w->cb runs from td_cache_collapse_done), -ENOMEM / -EINVAL.
 */
int td_cache_collapse_join(struct td_cache_store *s, const char *ckey, struct td_cache_waiter *w);

/*
 * The filler of ckey is done: call every queued waiter in arrival order with obj (or NULL and
 * err). Waiters that join during the callbacks start a new fill. The number of waiters called.
 */
int td_cache_collapse_done(struct td_cache_store *s, const char *ckey, struct td_cache_obj *obj,
			   int err);

/* withdraw a queued waiter (its client went away): 0 or -ENOENT */
int td_cache_collapse_cancel(struct td_cache_store *s, const char *ckey, struct td_cache_waiter *w);

#endif
