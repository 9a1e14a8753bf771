/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Admin API: request parsing and formatting (json-c), the listening socket and a blocking client. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <json-c/json.h>

#include "addr.h"
#include "admin.h"
#include "log.h"

#define TD_ADMIN_MAX_RESPONSE (64u << 20)   /* a client never buffers more than this */

static const char *const td_admin_cmd_names[] = {
	[TD_ADM_STATUS] = "status",
	[TD_ADM_RELOAD] = "reload",
	[TD_ADM_DRAIN] = "drain",
	[TD_ADM_UNDRAIN] = "undrain",
	[TD_ADM_BACKEND_ADD] = "backend_add",
	[TD_ADM_BACKEND_REMOVE] = "backend_remove",
};
#define TD_ADM_N (sizeof(td_admin_cmd_names) / sizeof(td_admin_cmd_names[0]))

const char *td_admin_cmd_name(enum td_admin_cmd cmd)
{
	if ((size_t)cmd >= TD_ADM_N || cmd == TD_ADM_NONE)
		return NULL;
	return td_admin_cmd_names[cmd];
}

int td_endpoint_parse(const char *s, union td_addr *addr, __u8 *family, __u16 *port)
{
	char host[TD_ADDRSTRLEN + 1];
	const char *colon, *p;
	unsigned long v;
	char *end;
	size_t n;

	if (!s || !*s)
		return -EINVAL;
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':')
			return -EINVAL;
		n = (size_t)(rb - s - 1);
		p = s + 1;
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t)(colon - s)))
			return -EINVAL;   /* IPv6 needs brackets */
		n = (size_t)(colon - s);
		p = s;
	}
	if (!n || n > TD_ADDRSTRLEN)
		return -EINVAL;
	memcpy(host, p, n);
	host[n] = '\0';
	if (td_addr_parse(host, addr, family))
		return -EINVAL;
	if (s[0] == '[' && *family != TD_AF_INET6)
		return -EINVAL;
	if (colon[1] < '0' || colon[1] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(colon + 1, &end, 10);
	if (errno || *end || v < 1 || v > 65535)
		return -EINVAL;
	*port = (__u16)v;
	return 0;
}

/* string member key of o into *out; false (with err) when present but not a string */
static bool td_json_str(struct json_object *o, const char *key, const char **out, char *err,
			size_t errlen)
{
	struct json_object *v;

	*out = NULL;
	if (!json_object_object_get_ex(o, key, &v))
		return true;
	if (!json_object_is_type(v, json_type_string)) {
		snprintf(err, errlen, "\"%s\" must be a string", key);
		return false;
	}
	*out = json_object_get_string(v);
	return true;
}

int td_admin_req_parse(const char *line, size_t len, struct td_admin_req *req, char *err,
		       size_t errlen)
{
	static const char *const allowed[][5] = {
		[TD_ADM_STATUS] = { "cmd" },
		[TD_ADM_RELOAD] = { "cmd" },
		[TD_ADM_DRAIN] = { "cmd", "service", "backend" },
		[TD_ADM_UNDRAIN] = { "cmd", "service", "backend" },
		[TD_ADM_BACKEND_ADD] = { "cmd", "service", "backend", "weight" },
		[TD_ADM_BACKEND_REMOVE] = { "cmd", "service", "backend" },
	};
	struct json_tokener *tok = NULL;
	struct json_object *o = NULL, *wv;
	const char *cmd, *svc, *be;
	size_t i, k;
	int err_rc = -EINVAL;

	memset(req, 0, sizeof(*req));
	err[0] = '\0';
	if (len > TD_ADMIN_MAX_REQUEST) {
		snprintf(err, errlen, "request larger than %d bytes", TD_ADMIN_MAX_REQUEST);
		goto cleanup;
	}
	tok = json_tokener_new();
	if (!tok) {
		snprintf(err, errlen, "out of memory");
		err_rc = -ENOMEM;
		goto cleanup;
	}
	o = json_tokener_parse_ex(tok, line, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success) {
		snprintf(err, errlen, "malformed JSON: %s",
			 o ? "trailing data" :
			 json_tokener_error_desc(json_tokener_get_error(tok) == json_tokener_continue ?
						 json_tokener_error_parse_eof :
						 json_tokener_get_error(tok)));
		goto cleanup;
	}
	for (i = json_tokener_get_parse_end(tok); i < len; i++) {
		if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r') {
			snprintf(err, errlen, "malformed JSON: trailing data after the object");
			goto cleanup;
		}
	}
	if (!json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "request must be a JSON object");
		goto cleanup;
	}
	if (!td_json_str(o, "cmd", &cmd, err, errlen))
		goto cleanup;
	if (!cmd) {
		snprintf(err, errlen, "missing \"cmd\"");
		goto cleanup;
	}
	for (i = 1; i < TD_ADM_N; i++)
		if (!strcmp(cmd, td_admin_cmd_names[i]))
			req->cmd = (enum td_admin_cmd)i;
	if (req->cmd == TD_ADM_NONE) {
		snprintf(err, errlen, "unknown command \"%.64s\" (status, reload, drain, undrain, "
			 "backend_add, backend_remove)", cmd);
		goto cleanup;
	}
	json_object_object_foreach(o, key, val) {
		bool ok = false;

		(void)val;
		for (k = 0; k < 5 && allowed[req->cmd][k]; k++)
			ok = ok || !strcmp(key, allowed[req->cmd][k]);
		if (!ok) {
			snprintf(err, errlen, "unknown key \"%.64s\" for command %s", key, cmd);
			goto cleanup;
		}
	}
	if (req->cmd == TD_ADM_STATUS || req->cmd == TD_ADM_RELOAD) {
		err_rc = 0;
		goto cleanup;
	}
	if (!td_json_str(o, "service", &svc, err, errlen) ||
	    !td_json_str(o, "backend", &be, err, errlen))
		goto cleanup;
	if (!svc || !*svc) {
		snprintf(err, errlen, "missing \"service\"");
		goto cleanup;
	}
	if (strlen(svc) >= TD_NAME_LEN) {
		snprintf(err, errlen, "service name longer than %d characters", TD_NAME_LEN - 1);
		goto cleanup;
	}
	snprintf(req->service, sizeof(req->service), "%s", svc);
	if (!be) {
		snprintf(err, errlen, "missing \"backend\" (ADDR:PORT)");
		goto cleanup;
	}
	if (td_endpoint_parse(be, &req->addr, &req->family, &req->port)) {
		snprintf(err, errlen, "invalid backend \"%.80s\" (expected ADDR:PORT or [ADDR6]:PORT)",
			 be);
		goto cleanup;
	}
	req->weight = 1;
	if (json_object_object_get_ex(o, "weight", &wv)) {
		int64_t w;

		if (!json_object_is_type(wv, json_type_int)) {
			snprintf(err, errlen, "\"weight\" must be an integer 0..65535");
			goto cleanup;
		}
		errno = 0;
		w = json_object_get_int64(wv);
		if (errno || w < 0 || w > 65535) {
			snprintf(err, errlen, "\"weight\" must be an integer 0..65535");
			goto cleanup;
		}
		req->weight = (__u16)w;
	}
	err_rc = 0;
cleanup:
	if (err_rc)
		req->cmd = TD_ADM_NONE;
	json_object_put(o);
	if (tok)
		json_tokener_free(tok);
	return err_rc;
}

char *td_admin_req_format(const struct td_admin_req *req)
{
	const char *name = td_admin_cmd_name(req->cmd);
	struct json_object *o = NULL;
	char ep[TD_ENDPOINTSTRLEN];
	char *out = NULL;

	if (!name) {
		errno = EINVAL;
		return NULL;
	}
	o = json_object_new_object();
	if (!o)
		goto cleanup;
	json_object_object_add(o, "cmd", json_object_new_string(name));
	if (req->cmd != TD_ADM_STATUS && req->cmd != TD_ADM_RELOAD) {
		td_endpoint_format(&req->addr, req->family, req->port, ep, sizeof(ep));
		json_object_object_add(o, "service", json_object_new_string(req->service));
		json_object_object_add(o, "backend", json_object_new_string(ep));
	}
	if (req->cmd == TD_ADM_BACKEND_ADD)
		json_object_object_add(o, "weight", json_object_new_int(req->weight));
	out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
cleanup:
	json_object_put(o);
	if (!out)
		errno = ENOMEM;
	return out;
}

static int td_sun(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (!path || !*path || strlen(path) >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	memcpy(sun->sun_path, path, strlen(path));
	return 0;
}

/* 0 when something accepts connections on path */
static int td_admin_probe(const char *path)
{
	struct sockaddr_un sun;
	int fd, err = 0;

	err = td_sun(path, &sun);
	if (err)
		return err;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)))
		err = -errno;
	close(fd);
	return err;
}

int td_admin_listen(const char *path)
{
	char dir[PATH_MAX];
	struct sockaddr_un sun;
	struct stat st;
	mode_t old_mask;
	char *slash;
	int fd = -1, err;

	err = td_sun(path, &sun);
	if (err || path[0] != '/') {
		err = -EINVAL;
		td_err("admin socket %s: must be an absolute path shorter than %zu bytes", path,
		       sizeof(sun.sun_path));
		goto cleanup;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) && errno != EEXIST) {
			err = -errno;
			td_err("admin socket: cannot create %s: %s", dir, strerror(-err));
			goto cleanup;
		}
	}
	if (!lstat(path, &st)) {
		if (!S_ISSOCK(st.st_mode)) {
			err = -EEXIST;
			td_err("admin socket: %s exists and is not a socket: not replacing it", path);
			goto cleanup;
		}
		if (!td_admin_probe(path)) {
			err = -EADDRINUSE;
			td_err("admin socket: another tdagent is serving %s", path);
			goto cleanup;
		}
		unlink(path);   /* stale: left by an agent that was killed */
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		td_err("admin socket: %s", strerror(-err));
		goto cleanup;
	}
	old_mask = umask(0177);   /* never visible with wider permissions, even briefly */
	err = bind(fd, (struct sockaddr *)&sun, sizeof(sun)) ? -errno : 0;
	umask(old_mask);
	if (err) {
		td_err("admin socket: cannot bind %s: %s", path, strerror(-err));
		goto cleanup;
	}
	if (chmod(path, 0600) || listen(fd, 64)) {
		err = -errno;
		td_err("admin socket: cannot listen on %s: %s", path, strerror(-err));
		unlink(path);
		goto cleanup;
	}
cleanup:
	if (err) {
		if (fd >= 0)
			close(fd);
		return err;
	}
	return fd;
}

int td_admin_peer_uid(int fd, uid_t *uid)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len))
		return -errno;
	*uid = cred.uid;
	return 0;
}

static long td_ms_left(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (deadline->tv_sec - now.tv_sec) * 1000L + (deadline->tv_nsec - now.tv_nsec) / 1000000L;
}

/* wait for events on fd until deadline: 0, -ETIMEDOUT or -errno */
static int td_wait(int fd, short events, const struct timespec *deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	long left;
	int n;

	for (;;) {
		left = td_ms_left(deadline);
		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&p, 1, (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

int td_admin_call(const char *path, const char *line, int timeout_ms, char **resp)
{
	struct sockaddr_un sun;
	struct timespec deadline;
	size_t len = strlen(line), off = 0, cap = 0, used = 0;
	char *buf = NULL, *nl = NULL, *out;
	ssize_t n;
	int fd = -1, err;

	*resp = NULL;
	err = td_sun(path, &sun);
	if (err)
		goto cleanup;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		goto cleanup;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		err = -errno;
		if (err == -EAGAIN)
			err = -ECONNREFUSED;   /* backlog full: as good as nobody listening */
		goto cleanup;
	}
	/* request and its newline */
	while (off <= len) {
		const char *p = off < len ? line + off : "\n";
		size_t want = off < len ? len - off : 1;

		n = send(fd, p, want, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN) {
				err = td_wait(fd, POLLOUT, &deadline);
				if (err)
					goto cleanup;
				continue;
			}
			if (errno == EINTR)
				continue;
			err = -errno;
			goto cleanup;
		}
		off += (size_t)n;
	}
	/* one response line */
	while (!nl) {
		if (cap - used < 4096) {
			char *nb;

			if (cap >= TD_ADMIN_MAX_RESPONSE) {
				err = -EMSGSIZE;
				goto cleanup;
			}
			nb = realloc(buf, cap ? cap * 2 : 16384);
			if (!nb) {
				err = -ENOMEM;
				goto cleanup;
			}
			buf = nb;
			cap = cap ? cap * 2 : 16384;
		}
		n = recv(fd, buf + used, cap - used - 1, 0);
		if (n < 0) {
			if (errno == EAGAIN) {
				err = td_wait(fd, POLLIN, &deadline);
				if (err)
					goto cleanup;
				continue;
			}
			if (errno == EINTR)
				continue;
			err = -errno;
			goto cleanup;
		}
		if (n == 0) {
			err = -EPROTO;
			goto cleanup;
		}
		nl = memchr(buf + used, '\n', (size_t)n);
		used += (size_t)n;
	}
	*nl = '\0';
	out = strdup(buf);
	if (!out) {
		err = -ENOMEM;
		goto cleanup;
	}
	*resp = out;
cleanup:
	free(buf);
	if (fd >= 0)
		close(fd);
	return err;
}
