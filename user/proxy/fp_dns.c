/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Forward proxy: getaddrinfo on a small thread pool, answers delivered to worker loops, DNS cache. */
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>

#include "fp_internal.h"
#include "log.h"

/*
 * Threads: a worker submits a job (pool mutex), a resolver thread runs getaddrinfo without any
 * lock, then, under the pool mutex, either frees the job (cancelled meanwhile) or posts its wake
 * to the requester's mailbox (mailbox mutex inside the pool mutex: that is the lock order).
 * A cancel on the worker takes the pool mutex too, so a job is freed exactly once: by the pool
 * when cancelled before its answer was posted, by the canceller otherwise.
 */

#define TD_FP_DNS_SLOTS	4096u	/* direct-mapped answer cache */

struct td_fp_mbox {
	pthread_mutex_t mu;
	struct td_fp_wake *head, *tail;
	struct ev_loop *loop;		/* NULL until started on the worker */
	ev_async as;
};

struct td_fp_dns_ent {
	char name[TD_FP_HOST_MAX];
	uint64_t expires_ms;		/* CLOCK_MONOTONIC; 0: empty */
	struct td_fp_addrs res;
};

struct td_fp_dns {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct td_fp_dns_job *qhead, *qtail;
	bool stop;
	unsigned int nthreads;
	pthread_t *th;
	pthread_mutex_t cmu;		/* the cache */
	struct td_fp_dns_ent *cache;
};

static uint64_t td_fp_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- mailboxes ---------------------------------------------------------------------------- */

struct td_fp_mbox *td_fp_mbox_new(void)
{
	struct td_fp_mbox *m = calloc(1, sizeof(*m));

	if (m)
		pthread_mutex_init(&m->mu, NULL);
	return m;
}

void td_fp_mbox_free(struct td_fp_mbox *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->mu);
	free(m);
}

static void td_fp_mbox_cb(struct ev_loop *loop, ev_async *as, int revents)
{
	struct td_fp_mbox *m = as->data;
	struct td_fp_wake *wk;

	for (;;) {
		/* one at a time: a callback may cancel (or post) others of this mailbox */
		pthread_mutex_lock(&m->mu);
		wk = m->head;
		if (wk) {
			m->head = wk->next;
			if (m->head)
				m->head->prev = NULL;
			else
				m->tail = NULL;
			wk->posted = false;
			wk->next = wk->prev = NULL;
		}
		pthread_mutex_unlock(&m->mu);
		if (!wk)
			break;
		wk->fn(wk);
	}
}

void td_fp_mbox_start(struct td_fp_mbox *m, void *loop)
{
	if (m->loop)
		return;
	ev_async_init(&m->as, td_fp_mbox_cb);
	m->as.data = m;
	ev_async_start(loop, &m->as);
	/* the async watcher must not keep the loop alive when the engine drains and stops */
	ev_unref(loop);
	pthread_mutex_lock(&m->mu);
	m->loop = loop;
	pthread_mutex_unlock(&m->mu);
}

bool td_fp_mbox_started(const struct td_fp_mbox *m)
{
	return m->loop != NULL;
}

void td_fp_mbox_post(struct td_fp_mbox *m, struct td_fp_wake *wk)
{
	pthread_mutex_lock(&m->mu);
	wk->next = NULL;
	wk->prev = m->tail;
	if (m->tail)
		m->tail->next = wk;
	else
		m->head = wk;
	m->tail = wk;
	wk->posted = true;
	/* a posted wake belongs to a live request of this worker: the loop is running */
	ev_async_send(m->loop, &m->as);
	pthread_mutex_unlock(&m->mu);
}

void td_fp_mbox_cancel(struct td_fp_mbox *m, struct td_fp_wake *wk)
{
	pthread_mutex_lock(&m->mu);
	if (wk->posted) {
		if (wk->prev)
			wk->prev->next = wk->next;
		else
			m->head = wk->next;
		if (wk->next)
			wk->next->prev = wk->prev;
		else
			m->tail = wk->prev;
		wk->posted = false;
		wk->next = wk->prev = NULL;
	}
	pthread_mutex_unlock(&m->mu);
}

/* ---- cache -------------------------------------------------------------------------------- */

static size_t td_fp_dns_slot(const char *name)
{
	uint64_t h = td_gw_hash(name, strlen(name));

	return (size_t)(h % TD_FP_DNS_SLOTS);
}

int td_fp_dns_cached(struct td_fp_dns *d, const char *name, struct td_fp_addrs *res)
{
	struct td_fp_dns_ent *e = &d->cache[td_fp_dns_slot(name)];
	int rc = -ENOENT;

	pthread_mutex_lock(&d->cmu);
	if (e->expires_ms > td_fp_mono_ms() && !strcmp(e->name, name)) {
		*res = e->res;
		rc = 0;
	}
	pthread_mutex_unlock(&d->cmu);
	return rc;
}

static void td_fp_dns_cache_put(struct td_fp_dns *d, const char *name,
				const struct td_fp_addrs *res, uint32_t ttl_ms)
{
	struct td_fp_dns_ent *e = &d->cache[td_fp_dns_slot(name)];

	pthread_mutex_lock(&d->cmu);
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->res = *res;
	e->expires_ms = td_fp_mono_ms() + ttl_ms;
	pthread_mutex_unlock(&d->cmu);
}

size_t td_fp_dns_cache_size(struct td_fp_dns *d)
{
	uint64_t now = td_fp_mono_ms();
	size_t n = 0;

	pthread_mutex_lock(&d->cmu);
	for (size_t i = 0; i < TD_FP_DNS_SLOTS; i++)
		n += d->cache[i].expires_ms > now;
	pthread_mutex_unlock(&d->cmu);
	return n;
}

/* ---- the pool ----------------------------------------------------------------------------- */

static void td_fp_resolve(const char *name, struct td_fp_addrs *res)
{
	struct addrinfo hints, *ai = NULL, *p;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	memset(res, 0, sizeof(*res));
	res->err = getaddrinfo(name, NULL, &hints, &ai);
	if (res->err)
		return;
	for (p = ai; p && res->n < TD_FP_MAX_ADDRS; p = p->ai_next) {
		if ((p->ai_family != AF_INET && p->ai_family != AF_INET6) ||
		    p->ai_addrlen > sizeof(res->a[0]))
			continue;
		memcpy(&res->a[res->n++], p->ai_addr, p->ai_addrlen);
	}
	freeaddrinfo(ai);
	if (!res->n)
		res->err = EAI_NONAME;
}

static void *td_fp_dns_thread(void *arg)
{
	struct td_fp_dns *d = arg;
	struct td_fp_dns_job *j;

	pthread_mutex_lock(&d->mu);
	for (;;) {
		while (!d->qhead && !d->stop)
			pthread_cond_wait(&d->cond, &d->mu);
		if (!d->qhead)
			break;
		j = d->qhead;
		d->qhead = j->next;
		if (!d->qhead)
			d->qtail = NULL;
		if (j->cancelled) {
			free(j);
			continue;
		}
		pthread_mutex_unlock(&d->mu);
		td_fp_resolve(j->name, &j->res);
		if (!j->res.err && j->ttl_ms)
			td_fp_dns_cache_put(d, j->name, &j->res, j->ttl_ms);
		pthread_mutex_lock(&d->mu);
		if (j->cancelled)
			free(j);
		else {
			j->answered = true;
			td_fp_mbox_post(j->mbox, &j->wk);
		}
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

struct td_fp_dns *td_fp_dns_new(unsigned int threads)
{
	struct td_fp_dns *d = calloc(1, sizeof(*d));
	int rc;

	if (!d)
		return NULL;
	pthread_mutex_init(&d->mu, NULL);
	pthread_mutex_init(&d->cmu, NULL);
	pthread_cond_init(&d->cond, NULL);
	d->cache = calloc(TD_FP_DNS_SLOTS, sizeof(*d->cache));
	d->th = calloc(threads ? threads : 1, sizeof(*d->th));
	if (!d->cache || !d->th) {
		td_fp_dns_free(d);
		errno = ENOMEM;
		return NULL;
	}
	for (unsigned int i = 0; i < threads; i++) {
		rc = pthread_create(&d->th[i], NULL, td_fp_dns_thread, d);
		if (rc) {
			td_fp_dns_free(d);
			errno = rc;
			return NULL;
		}
		pthread_setname_np(d->th[i], "td-fp-dns");
		d->nthreads++;
	}
	return d;
}

void td_fp_dns_free(struct td_fp_dns *d)
{
	struct td_fp_dns_job *j, *next;

	if (!d)
		return;
	pthread_mutex_lock(&d->mu);
	d->stop = true;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->mu);
	for (unsigned int i = 0; i < d->nthreads; i++)
		pthread_join(d->th[i], NULL);
	for (j = d->qhead; j; j = next) {
		next = j->next;
		free(j);
	}
	free(d->th);
	free(d->cache);
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->mu);
	pthread_mutex_destroy(&d->cmu);
	free(d);
}

int td_fp_dns_submit(struct td_fp_dns *d, struct td_fp_dns_job *job)
{
	job->cancelled = job->answered = false;
	job->next = NULL;
	job->wk.posted = false;
	pthread_mutex_lock(&d->mu);
	if (d->qtail)
		d->qtail->next = job;
	else
		d->qhead = job;
	d->qtail = job;
	pthread_cond_signal(&d->cond);
	pthread_mutex_unlock(&d->mu);
	return 0;
}

void td_fp_dns_cancel(struct td_fp_dns *d, struct td_fp_dns_job *job)
{
	bool mine;

	pthread_mutex_lock(&d->mu);
	mine = job->answered;
	if (mine)
		td_fp_mbox_cancel(job->mbox, &job->wk);	/* still waiting in the mailbox? */
	else
		job->cancelled = true;			/* the pool frees it */
	pthread_mutex_unlock(&d->mu);
	if (mine)
		free(job);
}
