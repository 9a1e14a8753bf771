/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Transparent forward proxy in the kernel: load/pin/attach fp_redir, fill td_fp_redir, origdst. */
#include <dirent.h>
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

#include "config.h"
#include "dp.h"
#include "fp_redirect.h"
#include "log.h"
#include "mesh.h"
#include "fp_redir.skel.h"

#define TD_FP_PROG_PREFIX "td_fp_"
#define TD_FP_SCAN_DEPTH  12
#define TD_FP_SCAN_MAX    65536

struct td_fp_prog {
	const char *hook;
	enum bpf_attach_type type;
};

static const struct td_fp_prog td_fp_progs[] = {
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

/* open bpffs/name; -ENOENT is not logged when quiet */
static int td_fp_obj_open(const char *bpffs, const char *name, bool quiet)
{
	char path[PATH_MAX];
	int fd, err;

	err = td_fp_path(path, sizeof(path), bpffs, name, NULL);
	if (err)
		return err;
	fd = bpf_obj_get(path);
	if (fd < 0) {
		err = -errno;
		if (err != -ENOENT || !quiet)
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

/* ---- attach, detach ------------------------------------------------------------------------ */

static __u32 td_fp_obj_id(int fd, bool prog)
{
	struct bpf_prog_info pi;
	struct bpf_map_info mi;
	__u32 len;

	memset(&pi, 0, sizeof(pi));
	memset(&mi, 0, sizeof(mi));
	if (prog) {
		len = sizeof(pi);
		return bpf_obj_get_info_by_fd(fd, &pi, &len) ? 0 : pi.id;
	}
	len = sizeof(mi);
	return bpf_obj_get_info_by_fd(fd, &mi, &len) ? 0 : mi.id;
}

/* Is program id ours: named td_fp_<hook> (any hook when NULL) and using the map cnt_id? */
static bool td_fp_prog_ours(__u32 id, const char *hook, __u32 cnt_id)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info), map_ids[16];
	char want[BPF_OBJ_NAME_LEN];
	bool ours = false, named;
	int fd;

	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return false;
	memset(&info, 0, sizeof(info));
	info.nr_map_ids = sizeof(map_ids) / sizeof(map_ids[0]);
	info.map_ids = (__u64)(unsigned long)map_ids;
	snprintf(want, sizeof(want), "%s%s", TD_FP_PROG_PREFIX, hook ? hook : "");
	if (!bpf_obj_get_info_by_fd(fd, &info, &len)) {
		named = hook ? !strcmp(info.name, want) : !strncmp(info.name, want, strlen(want));
		for (__u32 i = 0; named && i < info.nr_map_ids && i < 16; i++)
			if (map_ids[i] == cnt_id)
				ours = true;
	}
	close(fd);
	return ours;
}

/* the cgroup folder and the id of our counter map */
static int td_fp_open_target(const char *bpffs, const char *cgroup, int *cg_fd, __u32 *cnt_id)
{
	int fd, err;

	fd = td_fp_obj_open(bpffs, TD_MAP_FP_CNT, false);
	if (fd < 0)
		return fd;
	*cnt_id = td_fp_obj_id(fd, false);
	close(fd);
	*cg_fd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*cg_fd < 0) {
		err = -errno;
		td_err("fproxy: cannot open cgroup %s: %s", cgroup, strerror(-err));
		return err;
	}
	return 0;
}

int td_fp_redirect_attach(const char *bpffs, const char *cgroup)
{
	int cg_fd = -1, prog_fd = -1, old_fd = -1, err;
	char pin[64];
	__u32 cnt_id = 0;

	err = td_fp_open_target(bpffs, cgroup, &cg_fd, &cnt_id);
	if (err)
		goto cleanup;
	for (size_t i = 0; i < TD_FP_N_PROGS; i++) {
		const struct td_fp_prog *p = &td_fp_progs[i];
		LIBBPF_OPTS(bpf_prog_attach_opts, ao, .flags = BPF_F_ALLOW_MULTI);
		__u32 ids[64], cnt = 64, flags = 0, new_id, old_id = 0;

		snprintf(pin, sizeof(pin), "%s%s", TD_PIN_PROG_FP_PREFIX, p->hook);
		prog_fd = td_fp_obj_open(bpffs, pin, false);
		if (prog_fd < 0) {
			err = prog_fd;
			goto cleanup;
		}
		new_id = td_fp_obj_id(prog_fd, true);
		if (bpf_prog_query(cg_fd, p->type, 0, &flags, ids, &cnt)) {
			err = -errno;
			td_err("fproxy: cannot query cgroup %s: %s", cgroup, strerror(-err));
			goto cleanup;
		}
		for (__u32 k = 0; k < cnt && k < 64; k++) {
			if (ids[k] == new_id) {
				old_id = new_id;
				break;
			}
			if (!old_id && td_fp_prog_ours(ids[k], p->hook, cnt_id))
				old_id = ids[k];
		}
		if (old_id != new_id) {
			if (old_id) {
				old_fd = bpf_prog_get_fd_by_id(old_id);
				if (old_fd >= 0) {
					ao.flags |= BPF_F_REPLACE;
					ao.replace_prog_fd = old_fd;
				}
			}
			if (bpf_prog_attach_opts(prog_fd, cg_fd, p->type, &ao)) {
				err = -errno;
				td_err("fproxy: cannot attach %s%s to cgroup %s: %s%s",
				       TD_FP_PROG_PREFIX, p->hook, cgroup, strerror(-err),
				       err == -EPERM ? " (a program attached without "
						       "BPF_F_ALLOW_MULTI is in the way?)" : "");
				goto cleanup;
			}
			if (old_fd >= 0)
				close(old_fd);
			old_fd = -1;
		}
		close(prog_fd);
		prog_fd = -1;
	}
	td_debug("fproxy: redirect programs attached to %s", cgroup);
cleanup:
	if (old_fd >= 0)
		close(old_fd);
	if (prog_fd >= 0)
		close(prog_fd);
	if (cg_fd >= 0)
		close(cg_fd);
	return err;
}

int td_fp_redirect_detach(const char *bpffs, const char *cgroup)
{
	int cg_fd = -1, fd, err, n = 0;
	__u32 cnt_id = 0;

	err = td_fp_open_target(bpffs, cgroup, &cg_fd, &cnt_id);
	if (err)
		goto cleanup;
	for (size_t i = 0; i < TD_FP_N_PROGS; i++) {
		const struct td_fp_prog *p = &td_fp_progs[i];
		__u32 ids[64], cnt = 64, flags = 0;

		if (bpf_prog_query(cg_fd, p->type, 0, &flags, ids, &cnt)) {
			err = -errno;
			td_err("fproxy: cannot query cgroup %s: %s", cgroup, strerror(-err));
			goto cleanup;
		}
		for (__u32 k = 0; k < cnt && k < 64; k++) {
			if (!td_fp_prog_ours(ids[k], p->hook, cnt_id))
				continue;
			fd = bpf_prog_get_fd_by_id(ids[k]);
			if (fd < 0)
				continue;
			if (bpf_prog_detach2(fd, cg_fd, p->type)) {
				err = -errno;
				close(fd);
				td_err("fproxy: cannot detach %s%s from %s: %s", TD_FP_PROG_PREFIX,
				       p->hook, cgroup, strerror(-err));
				goto cleanup;
			}
			close(fd);
			n++;
		}
	}
cleanup:
	if (cg_fd >= 0)
		close(cg_fd);
	return err ? err : n;
}

/* ---- scan of the cgroup2 tree -------------------------------------------------------------- */

struct td_fp_scan {
	__u32 cnt_id;
	td_fp_scan_fn fn;
	void *ctx;
	size_t dirs;
	int found;
};

static bool td_fp_dir_ours(int fd, __u32 cnt_id)
{
	static const enum bpf_attach_type types[] = { BPF_CGROUP_INET4_CONNECT,
						      BPF_CGROUP_SOCK_OPS };

	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		__u32 ids[64], cnt = 64, flags = 0;

		if (bpf_prog_query(fd, types[t], 0, &flags, ids, &cnt))
			continue;
		for (__u32 k = 0; k < cnt && k < 64; k++)
			if (td_fp_prog_ours(ids[k], NULL, cnt_id))
				return true;
	}
	return false;
}

static int td_fp_scan_dir(struct td_fp_scan *s, const char *path, int depth)
{
	char sub[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int fd, err = 0;

	if (++s->dirs > TD_FP_SCAN_MAX)
		return 0;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;              /* removed meanwhile */
	if (td_fp_dir_ours(fd, s->cnt_id)) {
		s->found++;
		err = s->fn(path, s->ctx);
		if (err) {
			close(fd);
			return err;
		}
	}
	if (depth >= TD_FP_SCAN_DEPTH) {
		close(fd);
		return 0;
	}
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return 0;
	}
	while (!err && (de = readdir(d))) {
		if (de->d_type != DT_DIR || !strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name) >= (int)sizeof(sub))
			continue;
		err = td_fp_scan_dir(s, sub, depth + 1);
	}
	closedir(d);
	return err;
}

int td_fp_redirect_scan(const char *bpffs, td_fp_scan_fn fn, void *ctx)
{
	struct td_fp_scan s = { .fn = fn, .ctx = ctx };
	char root[PATH_MAX];
	int fd, err;

	fd = td_fp_obj_open(bpffs, TD_MAP_FP_CNT, true);
	if (fd < 0)
		return fd;
	s.cnt_id = td_fp_obj_id(fd, false);
	close(fd);
	err = td_mesh_cgroup2_mount(root, sizeof(root));
	if (err) {
		td_err("fproxy: no cgroup2 filesystem mounted: %s", strerror(-err));
		return err;
	}
	err = td_fp_scan_dir(&s, root, 0);
	return err < 0 ? err : s.found;
}

struct td_fp_detach_all {
	const char *bpffs;
	int total;
};

static int td_fp_detach_cb(const char *cgroup, void *ctx)
{
	struct td_fp_detach_all *c = ctx;
	int n = td_fp_redirect_detach(c->bpffs, cgroup);

	if (n < 0)
		return n;
	c->total += n;
	return 0;
}

int td_fp_redirect_detach_everywhere(const char *bpffs)
{
	struct td_fp_detach_all c = { .bpffs = bpffs };
	int err;

	err = td_fp_redirect_scan(bpffs, td_fp_detach_cb, &c);
	if (err == -ENOENT)
		return 0;
	return err < 0 ? err : c.total;
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
	fd = td_fp_obj_open(bpffs, TD_MAP_FP_REDIR, false);
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
	fd = td_fp_obj_open(bpffs, TD_MAP_FP_CNT, false);
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
