/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* tdctl mesh: per (source, destination) service counters from the pinned mesh maps, once or live. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "fp_redirect.h"
#include "mesh.h"
#include "mesh_scan.h"
#include "stats.h"
#include "tdctl.h"

#define TDCTL_MESH_MAX_ROOTS 16
#define TDCTL_WATCH_MAX_S    3600

/* the cgroup folders td's mesh programs of this bpffs dir are attached to */
struct tdctl_mesh_roots {
	char path[TDCTL_MESH_MAX_ROOTS][PATH_MAX];
	int n;
};

static int tdctl_mesh_root_add(const char *cgroup, void *ctx)
{
	struct tdctl_mesh_roots *r = ctx;

	if (r->n < TDCTL_MESH_MAX_ROOTS)
		snprintf(r->path[r->n++], sizeof(r->path[0]), "%s", cgroup);
	return 0;
}

/* 0 (roots filled, maybe none), -ENOENT (no mesh pinned) or -errno */
static int tdctl_mesh_roots(const struct tdctl *ctl, struct tdctl_mesh_roots *r)
{
	int n;

	memset(r, 0, sizeof(*r));
	n = td_mesh_scan_attached(ctl->bpffs, tdctl_mesh_root_add, r);
	return n < 0 ? n : 0;
}

static void tdctl_mesh_roots_json(const struct tdctl_mesh_roots *r)
{
	int i;

	printf("[");
	for (i = 0; i < r->n; i++) {
		printf("%s", i ? "," : "");
		tdctl_json_str(stdout, r->path[i]);
	}
	printf("]");
}

void tdctl_mesh_status(const struct tdctl *ctl)
{
	struct tdctl_mesh_maps_view {
		struct td_mesh_maps m;
		struct td_stats_mesh s;
	} v;
	struct tdctl_mesh_roots r;
	bool pinned;
	int i;

	memset(&v.s, 0, sizeof(v.s));
	td_mesh_maps_init(&v.m);
	pinned = tdctl_mesh_roots(ctl, &r) == 0 && td_mesh_maps_open(ctl->bpffs, &v.m) == 0 &&
		 td_stats_mesh_read(&v.m, &v.s) == 0;
	if (ctl->json) {
		printf(",\"mesh\":{\"pinned\":%s,\"services\":%zu,\"pairs\":%zu,\"attached\":",
		       pinned ? "true" : "false", v.s.n_services, v.s.n_pairs);
		tdctl_mesh_roots_json(&r);
		printf("}");
	} else if (!pinned) {
		printf("mesh       none pinned\n");
	} else {
		printf("mesh       %zu service(s), %zu (source, destination) pair(s) seen; ",
		       v.s.n_services, v.s.n_pairs);
		if (!r.n)
			printf("not attached to any cgroup\n");
		for (i = 0; i < r.n; i++)
			printf("%s%s", i ? ", " : "attached to cgroup ", r.path[i]);
		if (r.n)
			printf("\n");
	}
	td_stats_mesh_free(&v.s);
	td_mesh_maps_close(&v.m);
}

int tdctl_mesh_detach_all(const struct tdctl *ctl)
{
	int n = td_mesh_detach_everywhere(ctl->bpffs), m;

	/* the transparent proxy's cgroup programs too (user/lib/fp_redirect.c) */
	m = td_fp_redirect_detach_everywhere(ctl->bpffs);
	if (n < 0 || m < 0)
		return n < 0 ? n : m;
	return n + m;
}

/* ---- the table ------------------------------------------------------------------------------ */

static volatile sig_atomic_t tdctl_mesh_stop;

static void tdctl_mesh_on_signal(int sig)
{
	tdctl_mesh_stop = 1;
}

static const struct td_stats_mesh_pair *tdctl_mesh_prev(const struct td_stats_mesh *prev,
							 const struct td_stats_mesh_pair *p)
{
	size_t i;

	for (i = 0; prev && i < prev->n_pairs; i++)
		if (prev->pairs[i].src == p->src && prev->pairs[i].dst == p->dst)
			return &prev->pairs[i];
	return NULL;
}

static void tdctl_mesh_print(const struct tdctl *ctl, const struct td_stats_mesh *s,
			     const struct td_stats_mesh *prev, double dt,
			     const struct tdctl_mesh_roots *r)
{
	size_t i;
	unsigned int c;
	int k;

	if (ctl->json) {
		printf("{\"bpffs\":");
		tdctl_json_str(stdout, ctl->bpffs);
		printf(",\"time\":%lld,\"services\":%zu,\"attached\":", (long long)time(NULL),
		       s->n_services);
		tdctl_mesh_roots_json(r);
		printf(",\"pairs\":[");
		for (i = 0; i < s->n_pairs; i++) {
			const struct td_stats_mesh_pair *p = &s->pairs[i];

			printf("%s{\"src\":", i ? "," : "");
			tdctl_json_str(stdout, p->src_name);
			printf(",\"dst\":");
			tdctl_json_str(stdout, p->dst_name);
			printf(",\"src_id\":%u,\"dst_id\":%u,\"connections\":%llu,\"datagrams\":%llu,"
			       "\"denials\":%llu,\"no_backend\":%llu,\"bytes_tx\":%llu,"
			       "\"bytes_rx\":%llu,\"srtt_us\":%llu}", p->src, p->dst,
			       (unsigned long long)p->s.connections,
			       (unsigned long long)p->s.datagrams, (unsigned long long)p->s.denials,
			       (unsigned long long)p->s.no_backend, (unsigned long long)p->s.bytes_tx,
			       (unsigned long long)p->s.bytes_rx, (unsigned long long)p->s.srtt_us);
		}
		printf("],\"counters\":{");
		for (c = 0, k = 0; c < TD_M_CNT_MAX; c++) {
			const char *cn = td_mesh_counter_name(c);

			if (!cn)
				continue;
			printf("%s\"%s\":%llu", k++ ? "," : "", cn,
			       (unsigned long long)s->counters[c]);
		}
		printf("}}\n");
		fflush(stdout);
		return;
	}
	printf("mesh at %s: %zu service(s), ", ctl->bpffs, s->n_services);
	if (!r->n)
		printf("not attached to any cgroup\n");
	for (k = 0; k < r->n; k++)
		printf("%s%s", k ? ", " : "attached to ", r->path[k]);
	if (r->n)
		printf("\n");
	printf("%-20s %-20s %10s %8s %8s %8s %14s %14s %9s%s\n", "SOURCE", "DESTINATION", "CONNS",
	       "DGRAMS", "DENIALS", "NO_BE", "BYTES_TX", "BYTES_RX", "SRTT_MS",
	       prev ? "   CONN/S" : "");
	for (i = 0; i < s->n_pairs; i++) {
		const struct td_stats_mesh_pair *p = &s->pairs[i], *o = tdctl_mesh_prev(prev, p);
		char rtt[16] = "-";

		if (p->s.srtt_us)
			snprintf(rtt, sizeof(rtt), "%.3f", (double)p->s.srtt_us / 1000.0);
		printf("%-20s %-20s %10llu %8llu %8llu %8llu %14llu %14llu %9s", p->src_name,
		       p->dst_name, (unsigned long long)p->s.connections,
		       (unsigned long long)p->s.datagrams, (unsigned long long)p->s.denials,
		       (unsigned long long)p->s.no_backend, (unsigned long long)p->s.bytes_tx,
		       (unsigned long long)p->s.bytes_rx, rtt);
		if (prev)
			printf(" %9.1f", dt > 0 ? (double)(p->s.connections -
						   (o ? o->s.connections : 0)) / dt : 0.0);
		printf("\n");
	}
	if (!s->n_pairs)
		printf("(no connections or denials counted yet)\n");
	printf("denied by policy %llu, refused for no healthy backend %llu, translated connect %llu, "
	       "sendmsg %llu\n", (unsigned long long)s->counters[TD_M_DENY_POLICY],
	       (unsigned long long)s->counters[TD_M_DENY_NO_BACKEND],
	       (unsigned long long)s->counters[TD_M_CNT_CONNECT],
	       (unsigned long long)s->counters[TD_M_CNT_SENDMSG]);
	printf("redirect: sockets joined %llu (connecting) + %llu (accepted), messages %llu "
	       "(%llu bytes) socket to socket, %llu on TCP (no peer %llu, over budget %llu)\n",
	       (unsigned long long)s->counters[TD_M_SOCK_JOIN_ACTIVE],
	       (unsigned long long)s->counters[TD_M_SOCK_JOIN_PASSIVE],
	       (unsigned long long)s->counters[TD_M_MSG_REDIRECT],
	       (unsigned long long)s->counters[TD_M_MSG_REDIRECT_BYTES],
	       (unsigned long long)s->counters[TD_M_MSG_PASS_TCP],
	       (unsigned long long)s->counters[TD_M_MSG_PASS_NO_PEER],
	       (unsigned long long)s->counters[TD_M_MSG_PASS_BUDGET]);
	fflush(stdout);
}

int tdctl_cmd_mesh(const struct tdctl *ctl, const struct tdctl_cmd *cmd, int argc, char **argv)
{
	struct td_stats_mesh cur, prev;
	struct tdctl_mesh_roots roots;
	struct td_mesh_maps m;
	long watch = 0, count = 0, done = 0;
	struct timespec t0, t1;
	bool tty = isatty(STDOUT_FILENO), have_prev = false;
	int i, rc = 0, err;
	char *end;

	if (tdctl_want_help(cmd, argc, argv))
		return 0;
	for (i = 1; i < argc; i++) {
		bool is_watch = !strcmp(argv[i], "--watch"), is_count = !strcmp(argv[i], "--count");
		long *dst = is_watch ? &watch : &count;

		if (!is_watch && !is_count)
			return tdctl_usage_error(cmd, "%s '%s'", argv[i][0] == '-' ?
						 "unknown option" : "unexpected argument", argv[i]);
		if (i + 1 >= argc)
			return tdctl_usage_error(cmd, "%s needs a number", argv[i]);
		errno = 0;
		*dst = strtol(argv[++i], &end, 10);
		if (errno || *end || *dst < 1 || (is_watch && *dst > TDCTL_WATCH_MAX_S))
			return tdctl_usage_error(cmd, "%s: '%s' is not a number in 1..%d",
						 argv[i - 1], argv[i],
						 is_watch ? TDCTL_WATCH_MAX_S : INT_MAX);
	}
	if (count && !watch)
		return tdctl_usage_error(cmd, "--count goes with --watch");
	memset(&cur, 0, sizeof(cur));
	memset(&prev, 0, sizeof(prev));
	td_mesh_maps_init(&m);
	err = td_mesh_maps_open(ctl->bpffs, &m);
	if (err) {
		fprintf(stderr, "tdctl: mesh: no mesh pinned at %s (a config with a mesh: section "
			"loads it)\n", ctl->bpffs);
		rc = TDCTL_EXIT_FAIL;
		goto cleanup;
	}
	if (watch) {
		signal(SIGINT, tdctl_mesh_on_signal);
		signal(SIGTERM, tdctl_mesh_on_signal);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		double dt;

		if (tdctl_mesh_roots(ctl, &roots) < 0 || td_stats_mesh_read(&m, &cur)) {
			rc = TDCTL_EXIT_FAIL;
			goto cleanup;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		t0 = t1;
		if (watch && tty && !ctl->json)
			printf("\033[H\033[2J");
		tdctl_mesh_print(ctl, &cur, have_prev ? &prev : NULL, dt, &roots);
		done++;
		if (!watch || (count && done >= count) || tdctl_mesh_stop)
			break;
		td_stats_mesh_free(&prev);
		prev = cur;
		memset(&cur, 0, sizeof(cur));
		have_prev = true;
		if (!ctl->json && !tty)
			printf("\n");
		for (long s = 0; s < watch * 10 && !tdctl_mesh_stop; s++)
			usleep(100 * 1000);
		if (tdctl_mesh_stop)
			break;
	}
cleanup:
	td_stats_mesh_free(&cur);
	td_stats_mesh_free(&prev);
	td_mesh_maps_close(&m);
	return rc;
}
