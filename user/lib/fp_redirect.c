/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Transparent forward proxy in the kernel: load/pin/attach fp_redir, fill td_fp_redir, origdst. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cgprog.h"
#include "config.h"
#include "dp.h"
#include "fp_redirect.h"
#include "log.h"
#include "mesh.h"
#include "fp_redir.skel.h"

#define TD_FP_PROG_PREFIX "td_fp_"

/* the cgroup programs: BPF name "td_fp_<hook>", pinned as "prog_fp_<hook>" */
static const struct td_cgprog td_fp_progs[] = {
	{ "connect4", BPF_CGROUP_INET4_CONNECT },
	{ "connect6", BPF_CGROUP_INET6_CONNECT },
	{ "getpeer4", BPF_CGROUP_INET4_GETPEERNAME },
	{ "getpeer6", BPF_CGROUP_INET6_GETPEERNAME },
	{ "sockops", BPF_CGROUP_SOCK_OPS },
};
#define TD_FP_N_PROGS (sizeof(td_fp_progs) / sizeof(td_fp_progs[0]))

static const char *const td_fp_maps[] = { TD_MAP_FP_REDIR, TD_MAP_FP_ORIGDST, TD_MAP_FP_SK,
					  TD_MAP_FP_CNT };
#define TD_FP_N_MAPS (sizeof(td_fp_maps) / sizeof(td_fp_maps[0]))

static int td_fp_path(char *buf, size_t len, const char *bpffs, const char *a, const char *b)
{
	if (snprintf(buf, len, "%s/%s%s", bpffs, a, b ? b : "") >= (int)len) {
		td_err("fproxy: bpffs path too long: %s", bpffs);
		return -ENAMETOOLONG;
	}
	return 0;
}

/* open bpffs/name */
static int td_fp_obj_open(const char *bpffs, const char *name)
{
	char path[PATH_MAX];
	int fd, err;

	err = td_fp_path(path, sizeof(path), bpffs, name, NULL);
	if (err)
		return err;
	fd = bpf_obj_get(path);
	if (fd < 0) {
		err = -errno;
		td_err("fproxy: cannot open %s: %s%s", path, strerror(-err),
		       err == -ENOENT ? " (transparent redirect not loaded)" : "");
		return err;
	}
	return fd;
}

/* ---- load, pin ----------------------------------------------------------------------------- */

int td_fp_redirect_load(const char *bpffs, bool *adopted)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = bpffs);
	struct fp_redir *skel = NULL;
	struct bpf_program *prog;
	char path[PATH_MAX];
	bool had;
	int err;

	err = td_bpffs_prepare(bpffs);
	if (err)
		goto cleanup;
	err = td_fp_path(path, sizeof(path), bpffs, TD_MAP_FP_REDIR, NULL);
	if (err)
		goto cleanup;
	had = access(path, F_OK) == 0;
	if (adopted)
		*adopted = had;
	skel = fp_redir__open_opts(&oo);
	if (!skel) {
		err = -errno;
		td_err("fproxy: cannot open the fp_redir BPF object: %s", strerror(-err));
		goto cleanup;
	}
	err = fp_redir__load(skel);
	if (err) {
		td_err("fproxy: cannot load fp_redir (pinned td_fp_* maps at %s incompatible? unpin "
		       "them): %s", bpffs, strerror(-err));
		goto cleanup;
	}
	bpf_object__for_each_program(prog, skel->obj) {
		const char *name = bpf_program__name(prog);
		char pin[64];

		if (strncmp(name, TD_FP_PROG_PREFIX, strlen(TD_FP_PROG_PREFIX)))
			continue;
		snprintf(pin, sizeof(pin), "%s%s", TD_PIN_PROG_FP_PREFIX,
			 name + strlen(TD_FP_PROG_PREFIX));
		err = td_pin_replace(bpf_program__fd(prog), bpffs, pin);
		if (err) {
			td_err("fproxy: cannot pin %s under %s: %s", pin, bpffs, strerror(-err));
			goto cleanup;
		}
	}
	td_debug("fproxy: redirect datapath %s at %s", had ? "adopted" : "pinned", bpffs);
cleanup:
	fp_redir__destroy(skel);
	return err;
}

int td_fp_redirect_unpin(const char *bpffs)
{
	char path[PATH_MAX];
	int err = 0;

	for (size_t i = 0; i < TD_FP_N_MAPS + TD_FP_N_PROGS; i++) {
		if (i < TD_FP_N_MAPS)
			snprintf(path, sizeof(path), "%s/%s", bpffs, td_fp_maps[i]);
		else
			snprintf(path, sizeof(path), "%s/%s%s", bpffs, TD_PIN_PROG_FP_PREFIX,
				 td_fp_progs[i - TD_FP_N_MAPS].hook);
		if (unlink(path) && errno != ENOENT && !err)
			err = -errno;
	}
	if (err)
		td_err("fproxy: cannot unpin under %s: %s", bpffs, strerror(-err));
	return err;
}

/* ---- attach, detach, scan ------------------------------------------------------------------ */

/* ours: named td_fp_<hook> and using the td_fp_cnt pinned under the same bpffs */
static const struct td_cgprog_set td_fp_cgprogs = {
	.who = "fproxy",
	.what = "transparent redirect",
	.name_prefix = TD_FP_PROG_PREFIX,
	.pin_prefix = TD_PIN_PROG_FP_PREFIX,
	.cnt_map = TD_MAP_FP_CNT,
	.progs = td_fp_progs,
	.n_progs = TD_FP_N_PROGS,
};

int td_fp_redirect_attach(const char *bpffs, const char *cgroup)
{
	int err = td_cgprog_attach(&td_fp_cgprogs, bpffs, cgroup);

	if (!err)
		td_debug("fproxy: redirect programs attached to %s", cgroup);
	return err;
}

int td_fp_redirect_detach(const char *bpffs, const char *cgroup)
{
	return td_cgprog_detach(&td_fp_cgprogs, bpffs, cgroup);
}

int td_fp_redirect_scan(const char *bpffs, td_fp_scan_fn fn, void *ctx)
{
	return td_cgprog_scan(&td_fp_cgprogs, bpffs, fn, ctx);
}

int td_fp_redirect_detach_everywhere(const char *bpffs)
{
	return td_cgprog_detach_everywhere(&td_fp_cgprogs, bpffs, NULL);
}

/* ---- rules --------------------------------------------------------------------------------- */

static int td_fp_target_from(const struct sockaddr *sa, uint8_t kind, struct td_fp_target *t)
{
	memset(t, 0, sizeof(*t));
	t->kind = kind;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		memcpy(&t->addr.v4, &in->sin_addr, 4);
		t->port = in->sin_port;
		t->family = TD_AF_INET;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		memcpy(t->addr.bytes, &in6->sin6_addr, 16);
		t->port = in6->sin6_port;
		t->family = TD_AF_INET6;
	} else {
		return -EAFNOSUPPORT;
	}
	return t->port ? 0 : -EINVAL;
}

static bool td_fp_key_in(const struct td_fp_redir_key *k, const struct td_fp_redir_key *keys,
			 size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!memcmp(&keys[i], k, sizeof(*k)))
			return true;
	return false;
}

int td_fp_redirect_set_rules(const char *bpffs, const struct td_fp_rule *rules, size_t n)
{
	struct td_fp_redir_key *keys = NULL, *old = NULL, *cur = NULL;
	struct td_fp_target *vals = NULL;
	size_t n_old = 0;
	int fd, err = 0;

	if (n > TD_FP_REDIR_MAX)
		return -E2BIG;
	fd = td_fp_obj_open(bpffs, TD_MAP_FP_REDIR);
	if (fd < 0)
		return fd;
	keys = calloc(n + 1, sizeof(*keys));
	vals = calloc(n + 1, sizeof(*vals));
	old = calloc(TD_FP_REDIR_MAX, sizeof(*old));
	if (!keys || !vals || !old) {
		err = -ENOMEM;
		goto cleanup;
	}
	/* resolve everything before writing anything */
	for (size_t i = 0; i < n; i++) {
		err = td_mesh_cgroup_id(rules[i].cgroup, &keys[i].cgroup_id);
		if (err) {
			td_err("fproxy: transparent cgroup %s %s", rules[i].cgroup,
			       err == -ENOENT ? "does not exist (create it before starting the "
						"workload)" : strerror(-err));
			goto cleanup;
		}
		keys[i].port = htons(rules[i].port);
		err = td_fp_target_from(rules[i].target, rules[i].kind, &vals[i]);
		if (err) {
			td_err("fproxy: invalid listener for port %u: %s", rules[i].port,
			       strerror(-err));
			goto cleanup;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (bpf_map_update_elem(fd, &keys[i], &vals[i], BPF_ANY)) {
			err = -errno;
			td_err("fproxy: cannot write %s: %s", TD_MAP_FP_REDIR, strerror(-err));
			goto cleanup;
		}
	}
	/* keys first, then the deletions, so the walk is not disturbed */
	while (n_old < TD_FP_REDIR_MAX && !bpf_map_get_next_key(fd, cur, &old[n_old])) {
		cur = &old[n_old];
		n_old++;
	}
	for (size_t i = 0; i < n_old; i++) {
		if (td_fp_key_in(&old[i], keys, n))
			continue;
		if (bpf_map_delete_elem(fd, &old[i]) && errno != ENOENT) {
			err = -errno;
			td_err("fproxy: cannot prune %s: %s", TD_MAP_FP_REDIR, strerror(-err));
			goto cleanup;
		}
	}
	td_debug("fproxy: %zu transparent redirect rules", n);
cleanup:
	free(old);
	free(vals);
	free(keys);
	close(fd);
	return err;
}

/* ---- apply a config ------------------------------------------------------------------------ */

struct td_fp_apply_ctx {
	const char *bpffs;
	char (*paths)[PATH_MAX];
	size_t n;
	int err;
};

static int td_fp_detach_stale(const char *cgroup, void *arg)
{
	struct td_fp_apply_ctx *c = arg;
	int n;

	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->paths[i], cgroup))
			return 0;
	n = td_fp_redirect_detach(c->bpffs, cgroup);
	if (n < 0 && !c->err)
		c->err = n;
	else if (n > 0)
		td_info("fproxy: transparent redirect detached from %s (no longer configured)",
			cgroup);
	return 0;
}

int td_fp_redirect_apply(const char *bpffs, const struct td_fp_cfg *cfg, const char *cgroup_root)
{
	struct td_fp_apply_ctx c = { .bpffs = bpffs };
	struct td_fp_rule *rules = NULL;
	char root[PATH_MAX];
	size_t n = 0;
	int err, found;

	if (!cfg->transparent_on) {
		char path[PATH_MAX];

		err = td_fp_path(path, sizeof(path), bpffs, TD_MAP_FP_REDIR, NULL);
		if (err || access(path, F_OK))
			return err;     /* never loaded: nothing to empty or detach */
	} else {
		err = td_mesh_cgroup_root(cgroup_root, root, sizeof(root));
		if (err)
			return err;
		c.paths = calloc(cfg->n_transparent_cgroups + 1, sizeof(*c.paths));
		rules = calloc(cfg->n_transparent_cgroups * cfg->n_transparent_ports + 1,
			       sizeof(*rules));
		if (!c.paths || !rules) {
			err = -ENOMEM;
			goto cleanup;
		}
		for (size_t i = 0; i < cfg->n_transparent_cgroups; i++) {
			if (snprintf(c.paths[i], PATH_MAX, "%s/%s", root,
				     cfg->transparent_cgroups[i]) >= PATH_MAX) {
				err = -ENAMETOOLONG;
				td_err("fproxy: cgroup path too long: %s", cfg->transparent_cgroups[i]);
				goto cleanup;
			}
			c.n++;
			for (size_t p = 0; p < cfg->n_transparent_ports; p++) {
				uint16_t port = cfg->transparent_ports[p];
				bool tls = td_fp_port_is_tls(port);
				const struct td_gw_endpoint *ep = tls ? &cfg->transparent_tls_listen
								      : &cfg->transparent_listen;

				if (!ep->sslen)
					continue;     /* the config checker requires it */
				rules[n].cgroup = c.paths[i];
				rules[n].port = port;
				rules[n].kind = tls ? TD_FP_KIND_TLS : TD_FP_KIND_HTTP;
				rules[n].target = (const struct sockaddr *)&ep->ss;
				n++;
			}
		}
	}
	/* rules before attach (a new cgroup redirects from its first connect()), stale last */
	err = td_fp_redirect_set_rules(bpffs, rules, n);
	if (err)
		goto cleanup;
	for (size_t i = 0; i < c.n; i++) {
		err = td_fp_redirect_attach(bpffs, c.paths[i]);
		if (err)
			goto cleanup;
	}
	found = td_fp_redirect_scan(bpffs, td_fp_detach_stale, &c);
	err = found < 0 ? found : c.err;
	if (!err)
		td_debug("fproxy: transparent redirect on %zu cgroups, %zu rules", c.n, n);
cleanup:
	free(rules);
	free(c.paths);
	return err;
}

/* ---- for the proxy ------------------------------------------------------------------------- */

int td_fp_origdst_fd(const char *bpffs)
{
	LIBBPF_OPTS(bpf_obj_get_opts, go, .file_flags = BPF_F_RDONLY);
	char path[PATH_MAX];
	int fd, err;

	err = td_fp_path(path, sizeof(path), bpffs, TD_MAP_FP_ORIGDST, NULL);
	if (err)
		return err;
	fd = bpf_obj_get_opts(path, &go);
	if (fd < 0) {
		err = -errno;
		td_err("fproxy: cannot open %s: %s", path, strerror(-err));
		return err;
	}
	return fd;   /* libbpf opens BPF objects with O_CLOEXEC */
}

/* address and port (be) of sa folded to the ABI form */
static int td_fp_sa_split(const struct sockaddr *sa, union td_addr *a, __u16 *port, __u8 *family)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(a, 0, sizeof(*a));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		memcpy(&a->v4, &in->sin_addr, 4);
		*port = in->sin_port;
		*family = TD_AF_INET;
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		*port = in6->sin6_port;
		if (!memcmp(&in6->sin6_addr, mapped, sizeof(mapped))) {
			memcpy(&a->v4, (const char *)&in6->sin6_addr + 12, 4);
			*family = TD_AF_INET;
		} else {
			memcpy(a->bytes, &in6->sin6_addr, 16);
			*family = TD_AF_INET6;
		}
		return 0;
	}
	return -EAFNOSUPPORT;
}

int td_fp_peer_key_make(const struct sockaddr *peer, const struct sockaddr *local,
			struct td_fp_peer_key *key)
{
	union td_addr la;
	__u8 lf;
	int err;

	memset(key, 0, sizeof(*key));
	err = td_fp_sa_split(peer, &key->addr, &key->port, &key->family);
	if (!err)
		err = td_fp_sa_split(local, &la, &key->listen_port, &lf);
	return err;
}

int td_fp_origdst_lookup(int fd, const struct sockaddr *peer, const struct sockaddr *local,
			 struct sockaddr_storage *dst, struct td_fp_origdst *info)
{
	struct td_fp_peer_key k;
	struct td_fp_origdst v;
	int err;

	err = td_fp_peer_key_make(peer, local, &k);
	if (err)
		return err;
	if (bpf_map_lookup_elem(fd, &k, &v))
		return -errno;
	memset(dst, 0, sizeof(*dst));
	if (v.family == TD_AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)dst;

		in->sin_family = AF_INET;
		memcpy(&in->sin_addr, &v.addr.v4, 4);
		in->sin_port = v.port;
	} else if (v.family == TD_AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)dst;

		in6->sin6_family = AF_INET6;
		memcpy(&in6->sin6_addr, v.addr.bytes, 16);
		in6->sin6_port = v.port;
	} else {
		return -EINVAL;
	}
	if (info)
		*info = v;
	return 0;
}

/* ---- counters ------------------------------------------------------------------------------ */

static const char *const td_fp_counter_names[TD_FP_CNT_MAX] = {
	[TD_FP_CNT_REDIRECT] = "redirect",
	[TD_FP_PASS_NOT_TCP] = "pass_not_tcp",
	[TD_FP_PASS_NO_RULE] = "pass_no_rule",
	[TD_FP_PASS_LOOPBACK] = "pass_loopback",
	[TD_FP_PASS_FAMILY] = "pass_family",
	[TD_FP_CNT_PUBLISH] = "publish",
	[TD_FP_CNT_UNPUBLISH] = "unpublish",
	[TD_FP_CNT_RESTORE_PEER] = "restore_peer",
	[TD_FP_ERR_SK_STORAGE] = "err_sk_storage",
	[TD_FP_ERR_ORIGDST] = "err_origdst",
};

const char *td_fp_counter_name(unsigned int idx)
{
	if (idx >= TD_FP_CNT_MAX || !td_fp_counter_names[idx])
		return "?";
	return td_fp_counter_names[idx];
}

int td_fp_redirect_counters(const char *bpffs, uint64_t *out)
{
	int ncpu = libbpf_num_possible_cpus(), fd, err = 0;
	__u64 *v = NULL;

	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	fd = td_fp_obj_open(bpffs, TD_MAP_FP_CNT);
	if (fd < 0)
		return fd;
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (__u32 i = 0; i < TD_FP_CNT_MAX; i++) {
		out[i] = 0;
		if (bpf_map_lookup_elem(fd, &i, v)) {
			err = -errno;
			break;
		}
		for (int c = 0; c < ncpu; c++)
			out[i] += v[c];
	}
cleanup:
	free(v);
	close(fd);
	return err;
}
