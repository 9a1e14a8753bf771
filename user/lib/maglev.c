/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Weighted Maglev table builder: per-backend permutations filled in weight-proportional turns. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "td/abi.h"
#include "maglev.h"

/*
 * Algorithm (Eisenbud et al., NSDI'16 §3.4, with Katran's "v2" weights):
 *  - backend i has offset_i = h1(key) % M and skip_i = h2(key) % (M - 1) + 1; its preference
 *    list is (offset_i + j * skip_i) % M for j = 0, 1, ... (a permutation since M is prime);
 *  - turns: in every round each backend (in key order) adds its weight to a credit; whenever
 *    the credit reaches the largest weight W it pays W and takes the next free slot of its
 *    preference list.
 * Looping over rounds costs N * M * W / sum(w) steps: fine (and fastest) for similar weights,
 * bad for skewed ones (one backend of weight 65535 among 1000 of weight 1). Backend i takes its
 * k-th slot in round ceil(k * W / w_i), so for skewed weights the same turns are popped from a
 * min-heap keyed by (round, key order) in O(M log N). Both schedules give identical tables.
 * The O(M log M) slot search probes an occupancy bitmap (8 KiB at M=65537), not the ring. Preference positions are advanced
 * incrementally (pos += skip, mod M, in 64 bits), never stored as an M x N table.
 */

struct td_mg_state {
	__u32 pos;      /* current preference position (offset + j * skip) % M */
	__u32 skip;
	__u32 weight;
	__u32 id;
	__u64 credit;   /* round schedule: accumulated weight not yet spent on a slot */
};

struct td_mg_turn {
	__u64 round;    /* round of this backend's next placement */
	__u32 order;    /* index in key order: tie-break inside a round */
	__u32 k;        /* placement number (1-based) */
};

static __u64 td_rotl64(__u64 x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static __u64 td_fmix64(__u64 h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/* 64-bit string hash (MurmurHash3-style block mixing, byte order independent). */
static __u64 td_hash64(const char *s, __u64 seed)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s), i;
	__u64 h = seed ^ (len * 0x87c37b91114253d5ULL);

	for (i = 0; i + 8 <= len; i += 8) {
		__u64 k = 0;

		for (int b = 0; b < 8; b++)
			k |= (__u64)p[i + b] << (8 * b);
		k *= 0x87c37b91114253d5ULL;
		k = td_rotl64(k, 31);
		k *= 0x4cf5ad432745937fULL;
		h ^= k;
		h = td_rotl64(h, 27) * 5 + 0x52dce729;
	}
	if (i < len) {
		__u64 k = 0;

		for (int b = 0; i + b < len; b++)
			k |= (__u64)p[i + b] << (8 * b);
		k *= 0x87c37b91114253d5ULL;
		k = td_rotl64(k, 31);
		k *= 0x4cf5ad432745937fULL;
		h ^= k;
	}
	return td_fmix64(h ^ len);
}

#define TD_MG_SEED1 0x9e3779b97f4a7c15ULL
#define TD_MG_SEED2 0xd1b54a32d192ed03ULL

bool td_is_prime(__u32 n)
{
	if (n < 2)
		return false;
	if (n % 2 == 0)
		return n == 2;
	if (n % 3 == 0)
		return n == 3;
	for (__u64 d = 5; d * d <= n; d += 6)
		if (n % d == 0 || n % (d + 2) == 0)
			return false;
	return true;
}

int td_maglev_permutation(const char *key, __u32 m, __u32 *offset, __u32 *skip)
{
	if (!key || !offset || !skip || !td_is_prime(m))
		return -EINVAL;
	*offset = (__u32)(td_hash64(key, TD_MG_SEED1) % m);
	*skip = (__u32)(td_hash64(key, TD_MG_SEED2) % (m - 1)) + 1;
	return 0;
}

static int td_mg_cmp(const void *a, const void *b)
{
	const struct td_maglev_backend *x = *(const struct td_maglev_backend *const *)a;
	const struct td_maglev_backend *y = *(const struct td_maglev_backend *const *)b;
	int c = strcmp(x->key, y->key);

	if (c)
		return c;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	if (x->weight != y->weight)
		return x->weight < y->weight ? -1 : 1;
	return 0;
}

static bool td_turn_less(const struct td_mg_turn *a, const struct td_mg_turn *b)
{
	return a->round < b->round || (a->round == b->round && a->order < b->order);
}

static void td_heap_down(struct td_mg_turn *h, size_t n, size_t i)
{
	struct td_mg_turn t = h[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= n)
			break;
		if (c + 1 < n && td_turn_less(&h[c + 1], &h[c]))
			c++;
		if (!td_turn_less(&h[c], &t))
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = t;
}

/* round of placement k for weight w when the largest weight is wmax: ceil(k * wmax / w) */
static __u64 td_turn_round(__u32 k, __u32 w, __u32 wmax)
{
	return ((__u64)k * wmax + w - 1) / w;
}

/* (pos + skip) % m for pos, skip < m, in 64 bits so m up to 2^32 - 1 cannot overflow */
static inline __u32 td_mg_next(__u32 pos, __u32 skip, __u32 m)
{
	__u64 p = (__u64)pos + skip;

	return (__u32)(p >= m ? p - m : p);
}

/* Fill state shared by both schedules. */
struct td_mg_fill {
	struct td_mg_state *st;
	__u64 *taken;   /* occupancy bitmap: M/8 bytes stay in L1/L2, the ring does not */
	__u32 *ring;
	__u32 m;
};

/* Backend s takes the next free slot of its preference list (one always exists). */
static inline void td_mg_place(struct td_mg_fill *f, struct td_mg_state *s)
{
	while (f->taken[s->pos / 64] & (1ULL << (s->pos % 64)))
		s->pos = td_mg_next(s->pos, s->skip, f->m);
	f->taken[s->pos / 64] |= 1ULL << (s->pos % 64);
	f->ring[s->pos] = s->id;
	s->pos = td_mg_next(s->pos, s->skip, f->m);
}

/* Round by round, every backend in key order: N steps per round, no heap. */
static void td_mg_fill_rounds(struct td_mg_fill *f, size_t nact, __u32 wmax)
{
	__u32 filled = 0;

	for (;;) {
		for (size_t i = 0; i < nact; i++) {
			struct td_mg_state *s = &f->st[i];

			s->credit += s->weight;
			if (s->credit < wmax)
				continue;
			s->credit -= wmax;
			td_mg_place(f, s);
			if (++filled == f->m)
				return;
		}
	}
}

/* Same order of turns from a min-heap of (round, key order): for skewed weights. */
static int td_mg_fill_heap(struct td_mg_fill *f, size_t nact, __u32 wmax)
{
	struct td_mg_turn *heap = calloc(nact, sizeof(*heap));
	__u32 filled = 0;

	if (!heap)
		return -ENOMEM;
	for (size_t i = 0; i < nact; i++) {
		heap[i].round = td_turn_round(1, f->st[i].weight, wmax);
		heap[i].order = (__u32)i;
		heap[i].k = 1;
	}
	for (size_t i = nact / 2; i-- > 0;)
		td_heap_down(heap, nact, i);
	while (filled < f->m) {
		struct td_mg_turn *t = &heap[0];
		struct td_mg_state *s = &f->st[t->order];

		td_mg_place(f, s);
		filled++;
		t->k++;
		t->round = td_turn_round(t->k, s->weight, wmax);
		td_heap_down(heap, nact, 0);
	}
	free(heap);
	return 0;
}

int td_maglev_build(const struct td_maglev_backend *backends, size_t n, __u32 *ring, __u32 m)
{
	const struct td_maglev_backend **sorted = NULL;
	struct td_mg_fill f = { .ring = ring, .m = m };
	size_t nact = 0, i;
	__u64 wsum = 0, rounds;
	__u32 wmax = 0;
	int err = 0;

	if (!ring || (n && !backends) || !td_is_prime(m)) {
		err = -EINVAL;
		goto cleanup;
	}
	for (i = 0; i < m; i++)
		ring[i] = TD_BACKEND_NONE;

	for (i = 0; i < n; i++) {
		if (!backends[i].key) {
			err = -EINVAL;
			goto cleanup;
		}
		if (!backends[i].weight)
			continue;
		/* TD_BACKEND_NONE marks an empty slot and cannot be a backend id */
		if (backends[i].id == TD_BACKEND_NONE) {
			err = -EINVAL;
			goto cleanup;
		}
		nact++;
		wsum += backends[i].weight;
		if (backends[i].weight > wmax)
			wmax = backends[i].weight;
	}
	if (!nact)
		goto cleanup;

	sorted = calloc(nact, sizeof(*sorted));
	f.st = calloc(nact, sizeof(*f.st));
	f.taken = calloc(m / 64 + 1, sizeof(*f.taken));
	if (!sorted || !f.st || !f.taken) {
		err = -ENOMEM;
		goto cleanup;
	}
	nact = 0;
	for (i = 0; i < n; i++)
		if (backends[i].weight)
			sorted[nact++] = &backends[i];
	qsort(sorted, nact, sizeof(*sorted), td_mg_cmp);

	for (i = 0; i < nact; i++) {
		td_maglev_permutation(sorted[i]->key, m, &f.st[i].pos, &f.st[i].skip);
		f.st[i].weight = sorted[i]->weight;
		f.st[i].id = sorted[i]->id;
	}

	/* each round places sum(w)/wmax slots: the round loop costs ~ nact * m * wmax / wsum steps */
	rounds = (__u64)m * wmax / wsum + 1;
	if (rounds * nact <= 4ULL * m)
		td_mg_fill_rounds(&f, nact, wmax);
	else
		err = td_mg_fill_heap(&f, nact, wmax);
	if (err)
		for (i = 0; i < m; i++)
			ring[i] = TD_BACKEND_NONE;

cleanup:
	free(f.taken);
	free(f.st);
	free(sorted);
	return err;
}
