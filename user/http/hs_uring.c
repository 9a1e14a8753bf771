/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* HTTP engine: the plain-socket writes of one loop iteration batched into one io_uring_enter. */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "hs_int.h"
#include "log.h"

/*
 * Why: on loopback every sendmsg runs the receiver's TCP input and wakes it; the woken task
 * preempts the worker at the syscall's return. Flushes queued during an iteration (hs_wq_add)
 * are written from the prepare watcher (hs_wq_submit) with one IORING_OP_SENDMSG each and
 * MSG_DONTWAIT, all in one io_uring_enter: one return to user space, one preemption at most.
 * The result of each is applied like sendmsg's (short write / -EAGAIN: wr_blocked, the state
 * machine arms EV_WRITE; an error: reported by the next flush of that side), then the request
 * is queued to run again. The iovecs are built at submit time from the output as it is then,
 * so the output may change (grow, be compacted, be dropped) while queued.
 */

#define HS_RING_ENTRIES	256u

static bool hs_ring_off;

void hs_ring_init(struct hs_worker *w)
{
	struct io_uring_params p;
	struct io_uring *ring;
	int rc;

	if (hs_ring_off || getenv("TD_HS_NO_URING"))
		return;
	ring = calloc(1, sizeof(*ring));
	if (!ring)
		return;
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	rc = io_uring_queue_init_params(HS_RING_ENTRIES, ring, &p);
	if (rc < 0) {
		memset(&p, 0, sizeof(p));
		rc = io_uring_queue_init_params(HS_RING_ENTRIES, ring, &p);
	}
	if (rc < 0) {
		td_debug("http %s: io_uring unavailable (%s): plain sendmsg", w->hs->name,
			 strerror(-rc));
		hs_ring_off = true;
		free(ring);
		return;
	}
	w->ring = ring;
}

static void hs_ring_free_ring(struct hs_worker *w)
{
	if (w->ring) {
		io_uring_queue_exit(w->ring);
		free(w->ring);
		w->ring = NULL;
	}
}

void hs_ring_free(struct hs_worker *w)
{
	hs_ring_free_ring(w);
	free(w->wq);
	w->wq = NULL;
	w->nwq = w->wq_cap = 0;
}

int hs_wq_add(struct td_hs_req *r, uint8_t kind)
{
	struct hs_worker *w = r->w;

	if (!w->ring)
		return -1;
	if (r->wq & kind)
		return 0;
	if (w->nwq == w->wq_cap) {
		unsigned int cap = w->wq_cap ? w->wq_cap * 2 : 64;
		struct hs_wq_ent *n = realloc(w->wq, cap * sizeof(*n));

		if (!n)
			return -1;
		w->wq = n;
		w->wq_cap = cap;
	}
	w->wq[w->nwq++] = (struct hs_wq_ent){ r, kind };
	r->wq |= kind;
	return 0;
}

void hs_wq_drop(struct td_hs_req *r)
{
	struct hs_worker *w = r->w;

	if (!r->wq)
		return;
	for (unsigned int i = 0; i < w->nwq; i++)
		if (w->wq[i].r == r)
			w->wq[i].r = NULL;
	r->wq = 0;
}

/* the output and socket of a queued flush, NULL when there is nothing to write any more */
static struct hs_out *hs_wq_target(struct td_hs_req *r, uint8_t kind, int *fd)
{
	if (kind == HS_WQ_CLIENT) {
		if (!r->c || r->c->wr_blocked || r->c->tls)
			return NULL;
		*fd = r->c->fd;
		return hs_out_empty(&r->out) ? NULL : &r->out;
	}
	if (!r->up || r->up->wr_blocked || r->up->state == HS_UC_CONNECTING)
		return NULL;
	*fd = r->up->fd;
	return hs_out_empty(&r->uout) ? NULL : &r->uout;
}

static void hs_wq_apply(struct td_hs_req *r, uint8_t kind, struct hs_out *o, size_t want, int res)
{
	bool blocked = false;

	if (res >= 0) {
		hs_out_advance(o, (size_t)res);
		if (kind == HS_WQ_CLIENT)
			r->bytes_out += (uint64_t)res;
		blocked = (size_t)res < want;
	} else if (res == -EAGAIN || res == -EWOULDBLOCK) {
		blocked = true;
	} else if (res != -EINTR) {
		if (kind == HS_WQ_CLIENT)
			r->wq_cerr = res;
		else
			r->wq_uerr = res;
	}
	if (kind == HS_WQ_CLIENT)
		r->c->wr_blocked = blocked;
	else
		r->up->wr_blocked = blocked;
}

/* one batch of at most HS_RING_ENTRIES flushes from w->wq[first..]; returns the next index */
static unsigned int hs_wq_batch(struct hs_worker *w, unsigned int first)
{
	struct msghdr mh[HS_RING_ENTRIES];
	struct iovec iov[HS_RING_ENTRIES][3];
	size_t want[HS_RING_ENTRIES];
	struct hs_out *out[HS_RING_ENTRIES];
	unsigned int idx[HS_RING_ENTRIES];
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	unsigned int n = 0, i = first, done = 0, head;
	int fd, rc;

	for (; i < w->nwq && n < HS_RING_ENTRIES; i++) {
		struct hs_wq_ent *e = &w->wq[i];
		struct td_hs_req *r = e->r;
		struct hs_out *o;

		if (!r || !(r->wq & e->kind))
			continue;
		r->wq &= (uint8_t)~e->kind;
		hs_req_queue(r);
		o = hs_wq_target(r, e->kind, &fd);
		if (!o)
			continue;
		sqe = io_uring_get_sqe(w->ring);
		if (!sqe) {
			/* cannot happen with n < entries; keep it queued for the next batch */
			r->wq |= e->kind;
			break;
		}
		memset(&mh[n], 0, sizeof(mh[n]));
		mh[n].msg_iov = iov[n];
		mh[n].msg_iovlen = (size_t)hs_out_iov(o, iov[n]);
		want[n] = 0;
		for (size_t k = 0; k < mh[n].msg_iovlen; k++)
			want[n] += iov[n][k].iov_len;
		io_uring_prep_sendmsg(sqe, fd, &mh[n], MSG_NOSIGNAL | MSG_DONTWAIT);
		io_uring_sqe_set_data64(sqe, n);
		out[n] = o;
		idx[n] = i;
		n++;
	}
	if (!n)
		return i;
	rc = io_uring_submit_and_wait(w->ring, n);
	while (done < n) {
		unsigned int got = 0;

		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
			/* the requests were queued to run: they write with sendmsg from now on */
			td_warn("http %s: io_uring_submit: %s: plain sendmsg", w->hs->name,
				strerror(-rc));
			hs_ring_free_ring(w);
			break;
		}
		io_uring_for_each_cqe(w->ring, head, cqe) {
			unsigned int k = (unsigned int)cqe->user_data;
			struct hs_wq_ent *e = &w->wq[idx[k]];

			/* nothing ran since the submit: the request and its output are as built */
			hs_wq_apply(e->r, e->kind, out[k], want[k], cqe->res);
			got++;
		}
		io_uring_cq_advance(w->ring, got);
		done += got;
		if (done < n)
			rc = io_uring_submit_and_wait(w->ring, 1);
	}
	return i;
}

void hs_wq_submit(struct hs_worker *w)
{
	unsigned int i = 0;

	while (i < w->nwq && w->ring)
		i = hs_wq_batch(w, i);
	w->nwq = 0;
}
