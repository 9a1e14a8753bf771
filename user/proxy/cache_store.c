/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* In-memory LRU response store with refcounted objects and callback-based miss collapsing. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cache_store.h"

#define TD_STORE_MIN_BUCKETS	64u
#define TD_PENDING_BUCKETS	256u

/* one key being filled and the requests waiting for it */
struct td_pending {
	char *key;
	uint64_t hash;
	struct td_cache_waiter *head;
	struct td_cache_waiter *tail;
	struct td_pending *next;
};

struct td_cache_store {
	size_t budget;
	size_t max_object;
	struct td_cache_obj **bucket;	/* chains by hash of the primary key */
	size_t nbuckets;		/* power of two */
	struct td_cache_obj *mru;	/* LRU list ends */
	struct td_cache_obj *lru;
	struct td_pending *pending[TD_PENDING_BUCKETS];
	struct td_cache_store_stats st;
};

/* FNV-1a 64 */
static uint64_t td_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

struct td_cache_store *td_cache_store_new(size_t budget, size_t max_object)
{
	struct td_cache_store *s;

	if (!budget || !max_object) {
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->nbuckets = TD_STORE_MIN_BUCKETS;
	s->bucket = calloc(s->nbuckets, sizeof(*s->bucket));
	if (!s->bucket) {
		free(s);
		errno = ENOMEM;
		return NULL;
	}
	s->budget = budget;
	s->max_object = max_object;
	return s;
}

static void td_obj_free(struct td_cache_obj *o)
{
	free(o->key);
	free(o->vkey);
	free(o->data);
	free(o);
}

struct td_cache_obj *td_cache_obj_get(struct td_cache_obj *o)
{
	o->refs++;
	return o;
}

void td_cache_obj_put(struct td_cache_obj *o)
{
	if (o && --o->refs == 0)
		td_obj_free(o);
}

static void td_lru_unlink(struct td_cache_store *s, struct td_cache_obj *o)
{
	if (o->prev)
		o->prev->next = o->next;
	else
		s->mru = o->next;
	if (o->next)
		o->next->prev = o->prev;
	else
		s->lru = o->prev;
	o->prev = o->next = NULL;
}

static void td_lru_push(struct td_cache_store *s, struct td_cache_obj *o)
{
	o->prev = NULL;
	o->next = s->mru;
	if (s->mru)
		s->mru->prev = o;
	s->mru = o;
	if (!s->lru)
		s->lru = o;
}

/* take o out of the index, the LRU and the budget; drop the store's reference */
static void td_unlink(struct td_cache_store *s, struct td_cache_obj *o)
{
	struct td_cache_obj **pp = &s->bucket[o->hash & (s->nbuckets - 1)];

	while (*pp && *pp != o)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = o->hnext;
	o->hnext = NULL;
	td_lru_unlink(s, o);
	o->linked = false;
	s->st.bytes -= o->charge;
	s->st.objects--;
	td_cache_obj_put(o);
}

void td_cache_store_free(struct td_cache_store *s)
{
	if (!s)
		return;
	while (s->mru)
		td_unlink(s, s->mru);
	for (size_t b = 0; b < TD_PENDING_BUCKETS; b++) {
		while (s->pending[b]) {
			struct td_pending *p = s->pending[b];

			s->pending[b] = p->next;
			free(p->key);
			free(p);
		}
	}
	free(s->bucket);
	free(s);
}

static struct td_cache_obj *td_lookup(struct td_cache_store *s, const char *key, uint64_t h,
				      const char *vkey)
{
	for (struct td_cache_obj *o = s->bucket[h & (s->nbuckets - 1)]; o; o = o->hnext)
		if (o->hash == h && !strcmp(o->key, key) && !strcmp(o->vkey, vkey))
			return o;
	return NULL;
}

/* double the buckets when the chains get long; failure only keeps them longer */
static void td_grow(struct td_cache_store *s)
{
	size_t n = s->nbuckets * 2;
	struct td_cache_obj **b;

	if (s->st.objects < s->nbuckets)
		return;
	b = calloc(n, sizeof(*b));
	if (!b)
		return;
	for (size_t i = 0; i < s->nbuckets; i++) {
		while (s->bucket[i]) {
			struct td_cache_obj *o = s->bucket[i];

			s->bucket[i] = o->hnext;
			o->hnext = b[o->hash & (n - 1)];
			b[o->hash & (n - 1)] = o;
		}
	}
	free(s->bucket);
	s->bucket = b;
	s->nbuckets = n;
}

int td_cache_store_put(struct td_cache_store *s, const char *key, const char *vkey,
		       const struct td_cache_meta *meta, const char *head, size_t head_len,
		       const char *body, size_t body_len, struct td_cache_obj **out)
{
	struct td_cache_obj *o = NULL, *old;
	int err = 0;

	if (out)
		*out = NULL;
	if (!s || !key || !meta || !head || (body_len && !body))
		return -EINVAL;
	if (!vkey)
		vkey = "";
	if (head_len + body_len < head_len || head_len + body_len > s->max_object)
		return -EFBIG;
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->key = strdup(key);
	o->vkey = strdup(vkey);
	o->data = malloc(head_len + body_len ? head_len + body_len : 1);
	if (!o->key || !o->vkey || !o->data) {
		err = -ENOMEM;
		goto cleanup;
	}
	memcpy(o->data, head, head_len);
	if (body_len)
		memcpy(o->data + head_len, body, body_len);
	o->head_len = head_len;
	o->body_len = body_len;
	o->meta = *meta;
	o->hash = td_hash(key);
	o->charge = sizeof(*o) + strlen(key) + strlen(vkey) + head_len + body_len;
	if (o->charge > s->budget) {
		err = -EFBIG;
		goto cleanup;
	}
	old = td_lookup(s, key, o->hash, vkey);
	if (old)
		td_unlink(s, old);
	while (s->st.bytes + o->charge > s->budget && s->lru) {
		td_unlink(s, s->lru);
		s->st.evictions++;
	}
	td_grow(s);
	o->refs = 1;
	o->linked = true;
	o->hnext = s->bucket[o->hash & (s->nbuckets - 1)];
	s->bucket[o->hash & (s->nbuckets - 1)] = o;
	td_lru_push(s, o);
	s->st.bytes += o->charge;
	s->st.objects++;
	if (out)
		*out = td_cache_obj_get(o);
	o = NULL;
cleanup:
	if (o)
		td_obj_free(o);
	return err;
}

struct td_cache_obj *td_cache_store_get(struct td_cache_store *s, const char *key, const char *vkey)
{
	struct td_cache_obj *o;

	if (!s || !key) {
		errno = EINVAL;
		return NULL;
	}
	o = td_lookup(s, key, td_hash(key), vkey ? vkey : "");
	if (!o) {
		errno = ENOENT;
		return NULL;
	}
	td_lru_unlink(s, o);
	td_lru_push(s, o);
	return td_cache_obj_get(o);
}

struct td_cache_obj *td_cache_store_find(struct td_cache_store *s, const char *key,
					 bool (*match)(const struct td_cache_obj *obj, void *arg),
					 void *arg)
{
	struct td_cache_obj *best = NULL;
	uint64_t h;

	if (!s || !key) {
		errno = EINVAL;
		return NULL;
	}
	h = td_hash(key);
	for (struct td_cache_obj *o = s->bucket[h & (s->nbuckets - 1)]; o; o = o->hnext) {
		if (o->hash != h || strcmp(o->key, key) || (match && !match(o, arg)))
			continue;
		if (!best || o->meta.response_time > best->meta.response_time)
			best = o;
	}
	if (!best) {
		errno = ENOENT;
		return NULL;
	}
	td_lru_unlink(s, best);
	td_lru_push(s, best);
	return td_cache_obj_get(best);
}

int td_cache_store_remove(struct td_cache_store *s, const char *key)
{
	struct td_cache_obj *o, *next;
	uint64_t h;
	int n = 0;

	if (!s || !key)
		return -EINVAL;
	h = td_hash(key);
	for (o = s->bucket[h & (s->nbuckets - 1)]; o; o = next) {
		next = o->hnext;
		if (o->hash == h && !strcmp(o->key, key)) {
			td_unlink(s, o);
			n++;
		}
	}
	return n;
}

void td_cache_store_stats(const struct td_cache_store *s, struct td_cache_store_stats *st)
{
	*st = s->st;
}

static struct td_pending **td_pending_slot(struct td_cache_store *s, const char *ckey, uint64_t h)
{
	struct td_pending **pp = &s->pending[h % TD_PENDING_BUCKETS];

	while (*pp && ((*pp)->hash != h || strcmp((*pp)->key, ckey)))
		pp = &(*pp)->next;
	return pp;
}

int td_cache_collapse_join(struct td_cache_store *s, const char *ckey, struct td_cache_waiter *w)
{
	struct td_pending **pp, *p;
	uint64_t h;

	if (!s || !ckey || !w || !w->cb)
		return -EINVAL;
	h = td_hash(ckey);
	pp = td_pending_slot(s, ckey, h);
	if (*pp) {
		w->next = NULL;
		if ((*pp)->tail)
			(*pp)->tail->next = w;
		else
			(*pp)->head = w;
		(*pp)->tail = w;
		return 0;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->key = strdup(ckey);
	if (!p->key) {
		free(p);
		return -ENOMEM;
	}
	p->hash = h;
	*pp = p;
	s->st.pending++;
	return 1;
}

int td_cache_collapse_done(struct td_cache_store *s, const char *ckey, struct td_cache_obj *obj,
			   int err)
{
	struct td_pending **pp, *p;
	struct td_cache_waiter *w;
	int n = 0;

	if (!s || !ckey)
		return -EINVAL;
	pp = td_pending_slot(s, ckey, td_hash(ckey));
	p = *pp;
	if (!p)
		return -ENOENT;
	*pp = p->next;		/* detached first: callbacks may join ckey again */
	s->st.pending--;
	if (obj)
		td_cache_obj_get(obj);
	for (w = p->head; w;) {
		struct td_cache_waiter *next = w->next;

		w->next = NULL;
		w->cb(w->arg, obj, obj ? 0 : (err < 0 ? err : -ENOENT));
		n++;
		w = next;
	}
	td_cache_obj_put(obj);
	free(p->key);
	free(p);
	return n;
}

int td_cache_collapse_cancel(struct td_cache_store *s, const char *ckey, struct td_cache_waiter *w)
{
	struct td_pending *p;
	struct td_cache_waiter **wp, *prev = NULL;

	if (!s || !ckey || !w)
		return -EINVAL;
	p = *td_pending_slot(s, ckey, td_hash(ckey));
	if (!p)
		return -ENOENT;
	for (wp = &p->head; *wp && *wp != w; wp = &(*wp)->next)
		prev = *wp;
	if (!*wp)
		return -ENOENT;
	*wp = w->next;
	if (p->tail == w)
		p->tail = prev;
	w->next = NULL;
	return 0;
}
