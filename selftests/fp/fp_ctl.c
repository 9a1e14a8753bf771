/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* td_fp_ctl: selftest driver of the transparent redirect (load, rules, attach, stand-in proxy). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <bpf/bpf.h>

#include "fp_redirect.h"
#include "log.h"
#include "mesh.h"

/*
 * Usage (every command prints one result line or a list, exit 0 on success):
 *   load BPFFS | unpin BPFFS | attach BPFFS CG | detach BPFFS CG | detach-all BPFFS
 *   scan BPFFS                          folders where ours are attached, one a line
 *   rules BPFFS CG PORT=KIND@ADDR:LPORT...   replace td_fp_redir (KIND http|tls, ADDR v4 or [v6])
 *   serve BPFFS ADDR PORT N             stand-in proxy: accept N connections; for each print and
 *                                       send "peer=A:P dst=A:P kind=K pid=N" or "peer=A:P dst=none"
 *   lookup BPFFS PEER PEERPORT LPORT    td_fp_origdst entry: "dst=A:P" or "dst=none"
 *   count BPFFS                         entries in td_fp_origdst
 *   counters BPFFS                      "name value" per counter
 */

static const char *td_fpc_fmt(const struct sockaddr *sa, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, ntohs(in->sin_port));
	} else {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, ntohs(in6->sin6_port));
	}
	return buf;
}

/* "1.2.3.4" or "[::1]" / "::1" plus a port into ss */
static int td_fpc_addr(const char *s, unsigned int port, struct sockaddr_storage *ss)
{
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	char buf[INET6_ADDRSTRLEN + 2];
	size_t n;

	memset(ss, 0, sizeof(*ss));
	snprintf(buf, sizeof(buf), "%s", s[0] == '[' ? s + 1 : s);
	n = strlen(buf);
	if (n && buf[n - 1] == ']')
		buf[n - 1] = '\0';
	if (inet_pton(AF_INET, buf, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		return 0;
	}
	if (inet_pton(AF_INET6, buf, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		return 0;
	}
	return -EINVAL;
}

/* PORT=KIND@ADDR:LPORT */
static int td_fpc_rule(const char *cg, const char *s, struct td_fp_rule *r,
		       struct sockaddr_storage *ss)
{
	char buf[128], *eq, *at, *colon;

	snprintf(buf, sizeof(buf), "%s", s);
	eq = strchr(buf, '=');
	at = strchr(buf, '@');
	colon = strrchr(buf, ':');
	if (!eq || !at || !colon || !(eq < at && at < colon))
		return -EINVAL;
	*eq = *at = *colon = '\0';
	r->cgroup = cg;
	r->port = (uint16_t)atoi(buf);
	if (!strcmp(eq + 1, "http"))
		r->kind = TD_FP_KIND_HTTP;
	else if (!strcmp(eq + 1, "tls"))
		r->kind = TD_FP_KIND_TLS;
	else
		return -EINVAL;
	r->target = (const struct sockaddr *)ss;
	return td_fpc_addr(at + 1, (unsigned int)atoi(colon + 1), ss);
}

static int td_fpc_serve(const char *bpffs, const char *addr, unsigned int port, int n)
{
	struct sockaddr_storage ss, peer, local, dst;
	struct td_fp_origdst info;
	int fd = -1, map = -1, one = 1, err = 0;
	char line[256], p[80], d[80];

	map = td_fp_origdst_fd(bpffs);
	if (map < 0)
		return map;
	if (td_fpc_addr(addr, port, &ss)) {
		err = -EINVAL;
		goto cleanup;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&ss, sizeof(ss)) || listen(fd, 128)) {
		err = -errno;
		goto cleanup;
	}
	printf("ready\n");
	fflush(stdout);
	for (int i = 0; n <= 0 || i < n; i++) {
		socklen_t pl = sizeof(peer), ll = sizeof(local);
		int c = accept4(fd, (struct sockaddr *)&peer, &pl, SOCK_CLOEXEC);

		if (c < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			goto cleanup;
		}
		getsockname(c, (struct sockaddr *)&local, &ll);
		td_fpc_fmt((struct sockaddr *)&peer, p, sizeof(p));
		err = td_fp_origdst_lookup(map, (struct sockaddr *)&peer, (struct sockaddr *)&local,
					   &dst, &info);
		if (err)
			snprintf(line, sizeof(line), "peer=%s dst=none\n", p);
		else
			snprintf(line, sizeof(line), "peer=%s dst=%s kind=%s pid=%u cgroup=%llu\n", p,
				 td_fpc_fmt((struct sockaddr *)&dst, d, sizeof(d)),
				 info.kind == TD_FP_KIND_TLS ? "tls" : "http", info.pid,
				 (unsigned long long)info.cgroup_id);
		err = 0;
		fputs(line, stdout);
		fflush(stdout);
		if (write(c, line, strlen(line)) < 0)
			err = 0;   /* the client may be gone; the line above is what counts */
		close(c);
	}
cleanup:
	if (fd >= 0)
		close(fd);
	close(map);
	return err;
}

static int td_fpc_lookup(const char *bpffs, const char *addr, unsigned int pport,
			 unsigned int lport)
{
	struct sockaddr_storage peer, local, dst;
	char d[80];
	int map, err;

	map = td_fp_origdst_fd(bpffs);
	if (map < 0)
		return map;
	err = td_fpc_addr(addr, pport, &peer);
	if (!err)
		err = td_fpc_addr(addr, lport, &local);
	if (!err) {
		err = td_fp_origdst_lookup(map, (struct sockaddr *)&peer, (struct sockaddr *)&local,
					   &dst, NULL);
		if (!err)
			printf("dst=%s\n", td_fpc_fmt((struct sockaddr *)&dst, d, sizeof(d)));
		else if (err == -ENOENT)
			printf("dst=none\n");
		if (err == -ENOENT)
			err = 0;
	}
	close(map);
	return err;
}

static int td_fpc_count(const char *bpffs)
{
	struct td_fp_peer_key k, *cur = NULL;
	int map, n = 0;

	map = td_fp_origdst_fd(bpffs);
	if (map < 0)
		return map;
	while (n < TD_FP_ORIGDST_MAX && !bpf_map_get_next_key(map, cur, &k)) {
		cur = &k;
		n++;
	}
	close(map);
	printf("%d\n", n);
	return 0;
}

static int td_fpc_print(const char *cgroup, void *ctx)
{
	printf("%s\n", cgroup);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	const char *bpffs = argc > 2 ? argv[2] : "";
	int err = -EINVAL;

	td_log_init("td_fp_ctl", getenv("TD_DEBUG") ? TD_LOG_DEBUG : TD_LOG_INFO);
	if (argc < 3)
		goto usage;
	if (!strcmp(cmd, "load")) {
		bool adopted = false;

		err = td_fp_redirect_load(bpffs, &adopted);
		if (!err)
			printf("%s\n", adopted ? "adopted" : "pinned");
	} else if (!strcmp(cmd, "unpin")) {
		err = td_fp_redirect_unpin(bpffs);
	} else if (!strcmp(cmd, "attach") && argc == 4) {
		err = td_fp_redirect_attach(bpffs, argv[3]);
	} else if (!strcmp(cmd, "detach") && argc == 4) {
		err = td_fp_redirect_detach(bpffs, argv[3]);
		if (err >= 0)
			printf("%d\n", err);
	} else if (!strcmp(cmd, "detach-all")) {
		err = td_fp_redirect_detach_everywhere(bpffs);
		if (err >= 0)
			printf("%d\n", err);
	} else if (!strcmp(cmd, "scan")) {
		err = td_fp_redirect_scan(bpffs, td_fpc_print, NULL);
		if (err == -ENOENT)
			err = 0;
	} else if (!strcmp(cmd, "rules") && argc >= 4) {
		size_t n = (size_t)(argc - 4);
		struct td_fp_rule *r = calloc(n + 1, sizeof(*r));
		struct sockaddr_storage *ss = calloc(n + 1, sizeof(*ss));

		err = r && ss ? 0 : -ENOMEM;
		for (size_t i = 0; !err && i < n; i++)
			err = td_fpc_rule(argv[3], argv[4 + i], &r[i], &ss[i]);
		if (!err)
			err = td_fp_redirect_set_rules(bpffs, r, n);
		free(ss);
		free(r);
	} else if (!strcmp(cmd, "serve") && argc == 6) {
		err = td_fpc_serve(bpffs, argv[3], (unsigned int)atoi(argv[4]), atoi(argv[5]));
	} else if (!strcmp(cmd, "lookup") && argc == 6) {
		err = td_fpc_lookup(bpffs, argv[3], (unsigned int)atoi(argv[4]),
				    (unsigned int)atoi(argv[5]));
	} else if (!strcmp(cmd, "count")) {
		err = td_fpc_count(bpffs);
	} else if (!strcmp(cmd, "counters")) {
		uint64_t v[TD_FP_CNT_MAX];

		err = td_fp_redirect_counters(bpffs, v);
		for (unsigned int i = 0; !err && i < TD_FP_CNT_MAX; i++)
			printf("%s %llu\n", td_fp_counter_name(i), (unsigned long long)v[i]);
	} else {
		goto usage;
	}
	if (err < 0) {
		fprintf(stderr, "td_fp_ctl %s: %s\n", cmd, strerror(-err));
		return 1;
	}
	return 0;
usage:
	fprintf(stderr, "usage: td_fp_ctl load|unpin|attach|detach|detach-all|scan|rules|serve|"
		"lookup|count|counters BPFFS ...\n");
	return 2;
}
