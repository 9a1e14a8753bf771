/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The admin socket server on tdagent's libev loop: non-blocking clients, bounded lines, root only. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "admin.h"
#include "agent.h"
#include "log.h"

struct td_admin_client {
	struct td_admin_srv *srv;
	int fd;
	ev_io rio, wio;
	ev_timer idle;
	char *in;              /* TD_ADMIN_MAX_REQUEST + 1 bytes                       */
	size_t in_len;
	char *out;             /* pending response bytes                               */
	size_t out_len, out_off;
	bool closing;          /* close once out is flushed                            */
	bool eof;              /* the peer finished sending                            */
	struct td_admin_client *next;
};

struct td_admin_srv {
	struct ev_loop *loop;
	int fd;
	char *path;
	dev_t dev;             /* identity of the socket we bound, to unlink only ours */
	ino_t ino;
	ev_io lio;
	td_admin_handler_fn fn;
	void *arg;
	struct td_admin_client *clients;
	size_t n_clients;
};

static void td_client_free(struct td_admin_client *c)
{
	struct td_admin_srv *s = c->srv;
	struct td_admin_client **pp;

	for (pp = &s->clients; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	s->n_clients--;
	ev_io_stop(s->loop, &c->rio);
	ev_io_stop(s->loop, &c->wio);
	ev_timer_stop(s->loop, &c->idle);
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
}

/* queue one response line (takes ownership of line) */
static void td_client_queue(struct td_admin_client *c, char *line)
{
	size_t n = strlen(line);
	char *nb;

	if (c->out_off == c->out_len) {
		c->out_off = c->out_len = 0;
	}
	nb = realloc(c->out, c->out_len + n + 1);
	if (!nb) {
		free(line);
		c->closing = true;
		return;
	}
	c->out = nb;
	memcpy(c->out + c->out_len, line, n);
	c->out[c->out_len + n] = '\n';
	c->out_len += n + 1;
	free(line);
	ev_io_start(c->srv->loop, &c->wio);
}

static char *td_err_line(const char *msg)
{
	char *s = NULL;

	if (asprintf(&s, "{\"ok\":false,\"error\":\"%s\"}", msg) < 0)
		return NULL;
	return s;
}

/* handle complete lines while no output is pending (one request at a time) */
static void td_client_process(struct td_admin_client *c)
{
	char *nl, *resp;
	size_t n;

	while (!c->closing && c->out_off == c->out_len &&
	       (nl = memchr(c->in, '\n', c->in_len)) != NULL) {
		n = (size_t)(nl - c->in);
		ev_timer_again(c->srv->loop, &c->idle);
		if (n) {
			resp = c->srv->fn(c->srv->arg, c->in, n);
			if (!resp)
				resp = td_err_line("out of memory");
			if (!resp) {
				c->closing = true;
				break;
			}
			td_client_queue(c, resp);
		}
		memmove(c->in, nl + 1, c->in_len - n - 1);
		c->in_len -= n + 1;
	}
	if (!c->closing && c->in_len >= TD_ADMIN_MAX_REQUEST) {
		td_warn("admin: request larger than %d bytes: closing the connection",
			TD_ADMIN_MAX_REQUEST);
		resp = td_err_line("request larger than 65536 bytes");
		if (resp)
			td_client_queue(c, resp);
		c->closing = true;
	}
	/* no reading while a response is pending (backpressure) or when closing */
	if (c->closing || c->eof || c->out_off < c->out_len)
		ev_io_stop(c->srv->loop, &c->rio);
	else
		ev_io_start(c->srv->loop, &c->rio);
}

static void td_client_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct td_admin_client *c = w->data;
	ssize_t n;

	while (c->out_off < c->out_len) {
		n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			td_client_free(c);   /* peer went away */
			return;
		}
		c->out_off += (size_t)n;
	}
	ev_io_stop(loop, &c->wio);
	if (!c->closing)
		td_client_process(c);   /* pipelined requests waiting behind this response */
	if ((c->closing || c->eof) && c->out_off == c->out_len)
		td_client_free(c);
}

static void td_client_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct td_admin_client *c = w->data;
	ssize_t n;

	n = recv(c->fd, c->in + c->in_len, TD_ADMIN_MAX_REQUEST - c->in_len, 0);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		td_client_free(c);
		return;
	}
	if (n == 0)
		c->eof = true;   /* answer what is complete, then close */
	c->in_len += (size_t)n;
	td_client_process(c);
	if ((c->closing || c->eof) && c->out_off == c->out_len)
		td_client_free(c);
}

static void td_client_idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct td_admin_client *c = w->data;

	td_debug("admin: closing idle connection");
	td_client_free(c);
}

static void td_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct td_admin_srv *s = w->data;
	struct td_admin_client *c;
	uid_t uid;
	int fd;

	for (;;) {
		uid = (uid_t)-1;
		fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				td_warn("admin: accept: %s", strerror(errno));
			return;
		}
		if (td_admin_peer_uid(fd, &uid) || uid != 0) {
			static const char deny[] = "{\"ok\":false,\"error\":\"permission denied: "
						   "the admin socket is for root only\"}\n";

			td_warn("admin: refused a connection from uid %d (root only)", (int)uid);
			if (send(fd, deny, sizeof(deny) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
				td_debug("admin: cannot tell the refused client why");
			close(fd);
			continue;
		}
		if (s->n_clients >= TD_ADMIN_MAX_CLIENTS) {
			static const char busy[] = "{\"ok\":false,\"error\":\"too many admin "
						   "connections\"}\n";

			td_warn("admin: more than %d connections: refusing one", TD_ADMIN_MAX_CLIENTS);
			if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
				td_debug("admin: cannot tell the refused client why");
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (c)
			c->in = malloc(TD_ADMIN_MAX_REQUEST + 1);
		if (!c || !c->in) {
			if (c)
				free(c);
			close(fd);
			continue;
		}
		c->srv = s;
		c->fd = fd;
		ev_io_init(&c->rio, td_client_read_cb, fd, EV_READ);
		ev_io_init(&c->wio, td_client_write_cb, fd, EV_WRITE);
		ev_init(&c->idle, td_client_idle_cb);
		c->idle.repeat = TD_ADMIN_IDLE_S;
		c->rio.data = c->wio.data = c->idle.data = c;
		c->next = s->clients;
		s->clients = c;
		s->n_clients++;
		ev_io_start(loop, &c->rio);
		ev_timer_again(loop, &c->idle);
	}
}

struct td_admin_srv *td_admin_srv_new(struct ev_loop *loop, const char *path,
				      td_admin_handler_fn fn, void *arg)
{
	struct td_admin_srv *s;
	struct stat st;
	int err = 0;

	s = calloc(1, sizeof(*s));
	if (!s) {
		err = -ENOMEM;
		goto cleanup;
	}
	s->fd = -1;
	s->path = strdup(path);
	if (!s->path) {
		err = -ENOMEM;
		goto cleanup;
	}
	s->fd = td_admin_listen(path);
	if (s->fd < 0) {
		err = s->fd;
		goto cleanup;
	}
	if (!stat(path, &st)) {
		s->dev = st.st_dev;
		s->ino = st.st_ino;
	}
	s->loop = loop;
	s->fn = fn;
	s->arg = arg;
	ev_io_init(&s->lio, td_accept_cb, s->fd, EV_READ);
	s->lio.data = s;
	ev_io_start(loop, &s->lio);
cleanup:
	if (err) {
		if (s) {
			if (s->fd >= 0)
				close(s->fd);
			free(s->path);
			free(s);
		}
		errno = -err;
		return NULL;
	}
	return s;
}

void td_admin_srv_free(struct td_admin_srv *s)
{
	struct stat st;

	if (!s)
		return;
	while (s->clients)
		td_client_free(s->clients);
	ev_io_stop(s->loop, &s->lio);
	close(s->fd);
	if (!stat(s->path, &st) && st.st_dev == s->dev && st.st_ino == s->ino)
		unlink(s->path);
	free(s->path);
	free(s);
}
