/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* td_mesh_ctl: test driver over user/lib/mesh.c (load, apply, attach, backends, events, counters). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>

#include "addr.h"
#include "config.h"
#include "log.h"
#include "mesh.h"
#include "bench_mesh.h"
#include "sockmap_io.h"

static void td_usage(void)
{
	fprintf(stderr,
		"usage: td_mesh_ctl load BPFFS\n"
		"       td_mesh_ctl apply BPFFS CONFIG [GENERATION]\n"
		"       td_mesh_ctl attach|detach BPFFS CGROUP\n"
		"       td_mesh_ctl backends BPFFS SERVICE [ADDR,PORT,WEIGHT ...]\n"
		"       td_mesh_ctl events BPFFS MAX TIMEOUT_MS\n"
		"       td_mesh_ctl counters BPFFS\n"
		"       td_mesh_ctl pair BPFFS SRC DST\n"
		"       td_mesh_ctl unpin BPFFS\n"
		"       td_mesh_ctl cgid PATH\n"
		"       td_mesh_ctl load BPFFS [REDIRECT_BUDGET_BYTES]   (0 = unbounded)\n"
		"       td_mesh_ctl socks BPFFS                          (SOCKHASH members)\n"
		"       td_mesh_ctl pairs BPFFS\n"
		"       td_mesh_ctl stress-server ADDR PORT CONNS TIMEOUT_S SEED\n"
		"       td_mesh_ctl stress-client HOST PORT CONNS TOTAL_BYTES TIMEOUT_S SEED "
		"RESET_PERMILLE\n"
		"       td_mesh_ctl reorder BPFFS PORT MARK\n"
		"       td_mesh_ctl sockdel BPFFS LADDR LPORT RADDR RPORT\n"
		"       td_mesh_ctl bench-server ADDR PORT TIMEOUT_S\n"
		"       td_mesh_ctl bench-rr HOST PORT SIZE COUNT WARMUP\n"
		"       td_mesh_ctl bench-bulk HOST PORT WRITE_SIZE SECONDS\n");
}

struct td_ev_ctx {
	const struct td_mesh_maps *m;
	int n;
};

static void td_ev_print(const struct td_mesh_event *e, void *arg)
{
	struct td_ev_ctx *c = arg;
	char line[512];

	printf("%s\n", td_mesh_event_format(c->m, e, line, sizeof(line)));
	fflush(stdout);
	c->n++;
}

static void td_pair_print(__u32 src, __u32 dst, const struct td_mesh_pair_stats *s, void *arg)
{
	char a[TD_NAME_LEN + 8], b[TD_NAME_LEN + 8];

	printf("%s -> %s connections %llu bytes_tx %llu bytes_rx %llu srtt_us %llu\n",
	       td_mesh_id_name(arg, src, a, sizeof(a)), td_mesh_id_name(arg, dst, b, sizeof(b)),
	       (unsigned long long)s->connections, (unsigned long long)s->bytes_tx,
	       (unsigned long long)s->bytes_rx, (unsigned long long)s->srtt_us);
}

static long long td_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int td_cmd_events(const struct td_mesh_maps *m, int max, int timeout_ms)
{
	struct td_ev_ctx c = { .m = m };
	struct td_mesh_events *ev;
	long long end = td_now_ms() + timeout_ms;
	int err = 0;

	ev = td_mesh_events_new(m, td_ev_print, &c);
	if (!ev) {
		fprintf(stderr, "td_mesh_ctl: events: %s\n", strerror(errno));
		return -errno;
	}
	while (c.n < max) {
		struct pollfd p = { .fd = td_mesh_events_fd(ev), .events = POLLIN };
		long long left = end - td_now_ms();

		if (left <= 0)
			break;
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR) {
			err = -errno;
			break;
		}
		err = td_mesh_events_consume(ev);
		if (err < 0)
			break;
		err = 0;
	}
	td_mesh_events_free(ev);
	return err;
}

static int td_cmd_backends(const struct td_mesh_maps *m, const char *svc, int n, char **specs)
{
	struct td_backend_cfg *be;
	__u32 id;
	int err;

	err = td_mesh_id_by_name(m, svc, &id);
	if (err) {
		fprintf(stderr, "td_mesh_ctl: unknown service %s\n", svc);
		return err;
	}
	be = calloc(n ? (size_t)n : 1, sizeof(*be));
	if (!be)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		char addr[64];
		unsigned int port, weight;

		if (sscanf(specs[i], "%63[^,],%u,%u", addr, &port, &weight) != 3 ||
		    td_addr_parse(addr, &be[i].addr, &be[i].family) || port > 65535 ||
		    weight > 65535) {
			fprintf(stderr, "td_mesh_ctl: bad backend %s (ADDR,PORT,WEIGHT)\n", specs[i]);
			err = -EINVAL;
			goto cleanup;
		}
		be[i].port = (__u16)port;
		be[i].weight = (__u16)weight;
	}
	err = td_mesh_set_backends(m, id, be, (size_t)n);
cleanup:
	free(be);
	return err;
}

static int td_cmd_apply(const struct td_mesh_maps *m, const char *path, __u32 gen)
{
	struct td_errors errs = { 0 };
	struct td_config cfg;
	int err;

	err = td_config_load(path, &cfg, &errs);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.msgs[i]);
	td_errors_free(&errs);
	if (err)
		return err;
	err = td_mesh_apply(m, &cfg.mesh, NULL, gen);
	td_config_free(&cfg);
	return err;
}

int main(int argc, char **argv)
{
	struct td_mesh_maps m;
	const char *cmd;
	bool adopted;
	int err = 0;

	td_log_init("td_mesh_ctl", TD_LOG_INFO);
	td_mesh_maps_init(&m);
	if (argc < 3) {
		td_usage();
		return 2;
	}
	cmd = argv[1];
	{
		bool handled;

		err = td_io_main(argc, argv, &handled);
		if (!handled)
			err = td_bench_main(argc, argv, &handled);
		if (handled)
			goto cleanup;
	}
	if (!strcmp(cmd, "cgid")) {
		__u64 id;

		err = td_mesh_cgroup_id(argv[2], &id);
		if (!err)
			printf("%llu\n", (unsigned long long)id);
		goto cleanup;
	}
	if (!strcmp(cmd, "load")) {
		struct td_mesh_load_opts lo = { .redir_budget = TD_MESH_REDIR_BUDGET };

		if (argc == 4)
			lo.redir_budget = (__u32)strtoul(argv[3], NULL, 10);
		err = td_mesh_load_opts(argv[2], &lo, &adopted);
		if (!err)
			printf("%s\n", adopted ? "adopted" : "created");
		goto cleanup;
	}
	if (!strcmp(cmd, "unpin")) {
		err = td_mesh_unpin(argv[2]);
		goto cleanup;
	}
	if (!strcmp(cmd, "attach") && argc == 4) {
		err = td_mesh_attach(argv[2], argv[3]);
		goto cleanup;
	}
	if (!strcmp(cmd, "detach") && argc == 4) {
		err = td_mesh_detach(argv[2], argv[3]);
		if (err >= 0) {
			printf("%d\n", err);
			err = 0;
		}
		goto cleanup;
	}
	err = td_mesh_maps_open(argv[2], &m);
	if (err)
		goto cleanup;
	if (!strcmp(cmd, "apply") && (argc == 4 || argc == 5)) {
		err = td_cmd_apply(&m, argv[3], argc == 5 ? (__u32)strtoul(argv[4], NULL, 10) : 1);
	} else if (!strcmp(cmd, "backends") && argc >= 4) {
		err = td_cmd_backends(&m, argv[3], argc - 4, argv + 4);
	} else if (!strcmp(cmd, "events") && argc == 5) {
		err = td_cmd_events(&m, atoi(argv[3]), atoi(argv[4]));
	} else if (!strcmp(cmd, "counters")) {
		__u64 v[TD_M_CNT_MAX];

		err = td_mesh_counters(&m, v);
		for (unsigned int i = 0; !err && i < TD_M_CNT_MAX; i++)
			printf("%s %llu\n", td_mesh_counter_name(i), (unsigned long long)v[i]);
	} else if (!strcmp(cmd, "socks")) {
		printf("%d\n", td_mesh_socks_count(&m));
	} else if (!strcmp(cmd, "pairs")) {
		err = td_mesh_pairs_foreach(&m, td_pair_print, &m);
	} else if (!strcmp(cmd, "pair") && argc == 5) {
		struct td_mesh_pair_stats s;
		__u32 src, dst;

		err = td_mesh_id_by_name(&m, argv[3], &src);
		if (!err)
			err = td_mesh_id_by_name(&m, argv[4], &dst);
		if (!err)
			err = td_mesh_pair_read(&m, src, dst, &s);
		if (err == -ENOENT) {
			memset(&s, 0, sizeof(s));
			err = 0;
		}
		if (!err)
			printf("connections %llu datagrams %llu denials %llu no_backend %llu "
			       "bytes_tx %llu bytes_rx %llu srtt_us %llu\n",
			       (unsigned long long)s.connections, (unsigned long long)s.datagrams,
			       (unsigned long long)s.denials, (unsigned long long)s.no_backend,
			       (unsigned long long)s.bytes_tx, (unsigned long long)s.bytes_rx,
			       (unsigned long long)s.srtt_us);
	} else {
		td_usage();
		err = -EINVAL;
	}
cleanup:
	td_mesh_maps_close(&m);
	if (err)
		fprintf(stderr, "td_mesh_ctl %s: %s\n", cmd, strerror(-err));
	return err ? 1 : 0;
}
