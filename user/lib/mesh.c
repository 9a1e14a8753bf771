/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Mesh lifecycle: load/pin sock_lb, attach it to a cgroup2 folder, apply mesh: config, read denials. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "addr.h"
#include "cgprog.h"
#include "dp.h"
#include "log.h"
#include "mesh.h"
#include "names.h"
#include "sock_lb.skel.h"
#include "sockops.skel.h"
#include "sk_msg.skel.h"

/* ---- maps ---------------------------------------------------------------------------------- */

struct td_mesh_map_slot {
	const char *name;
	size_t off;
};

static const struct td_mesh_map_slot td_mesh_map_slots[] = {
	{ TD_MAP_M_SVC, offsetof(struct td_mesh_maps, svc) },
	{ TD_MAP_M_SEL, offsetof(struct td_mesh_maps, sel) },
	{ TD_MAP_M_CG, offsetof(struct td_mesh_maps, cg) },
	{ TD_MAP_M_ALLOW, offsetof(struct td_mesh_maps, allow) },
	{ TD_MAP_M_CONF, offsetof(struct td_mesh_maps, conf) },
	{ TD_MAP_M_NAMES, offsetof(struct td_mesh_maps, names) },
	{ TD_MAP_M_CNT, offsetof(struct td_mesh_maps, cnt) },
	{ TD_MAP_M_PAIR, offsetof(struct td_mesh_maps, pair) },
	{ TD_MAP_M_SK, offsetof(struct td_mesh_maps, sk) },
	{ TD_MAP_M_EVENTS, offsetof(struct td_mesh_maps, events) },
	{ TD_MAP_M_SOCKS, offsetof(struct td_mesh_maps, socks) },
	{ TD_MAP_M_JOIN, offsetof(struct td_mesh_maps, join) },
};
#define TD_MESH_N_MAPS (sizeof(td_mesh_map_slots) / sizeof(td_mesh_map_slots[0]))

/* the cgroup programs: BPF name "td_m_<hook>", pinned as "prog_m_<hook>" */
static const struct td_cgprog td_mesh_progs[] = {
	{ "connect4", BPF_CGROUP_INET4_CONNECT },
	{ "connect6", BPF_CGROUP_INET6_CONNECT },
	{ "sendmsg4", BPF_CGROUP_UDP4_SENDMSG },
	{ "sendmsg6", BPF_CGROUP_UDP6_SENDMSG },
	{ "recvmsg4", BPF_CGROUP_UDP4_RECVMSG },
	{ "recvmsg6", BPF_CGROUP_UDP6_RECVMSG },
	{ "getpeer4", BPF_CGROUP_INET4_GETPEERNAME },
	{ "getpeer6", BPF_CGROUP_INET6_GETPEERNAME },
	{ "sockops", BPF_CGROUP_SOCK_OPS },
};
#define TD_MESH_N_PROGS (sizeof(td_mesh_progs) / sizeof(td_mesh_progs[0]))
#define TD_MESH_PROG_PREFIX "td_m_"
/* the sk_msg program: attached to td_m_socks (not to a cgroup), pinned as prog_m_msg */
#define TD_MESH_MSG_HOOK "msg"

static int *td_mesh_map_fd(struct td_mesh_maps *m, size_t i)
{
	return (int *)((char *)m + td_mesh_map_slots[i].off);
}

void td_mesh_maps_init(struct td_mesh_maps *m)
{
	for (size_t i = 0; i < TD_MESH_N_MAPS; i++)
		*td_mesh_map_fd(m, i) = -1;
}

void td_mesh_maps_close(struct td_mesh_maps *m)
{
	for (size_t i = 0; i < TD_MESH_N_MAPS; i++) {
		int *fd = td_mesh_map_fd(m, i);

		if (*fd >= 0)
			close(*fd);
		*fd = -1;
	}
}

static int td_mesh_pin_path(char *buf, size_t len, const char *bpffs, const char *a,
			    const char *b)
{
	if (snprintf(buf, len, "%s/%s%s", bpffs, a, b ? b : "") >= (int)len) {
		td_err("mesh: bpffs path too long: %s", bpffs);
		return -ENAMETOOLONG;
	}
	return 0;
}

int td_mesh_maps_open(const char *bpffs, struct td_mesh_maps *m)
{
	char path[PATH_MAX];
	int err = 0;

	td_mesh_maps_init(m);
	for (size_t i = 0; i < TD_MESH_N_MAPS; i++) {
		int fd;

		err = td_mesh_pin_path(path, sizeof(path), bpffs, td_mesh_map_slots[i].name, NULL);
		if (err)
			goto cleanup;
		fd = bpf_obj_get(path);
		if (fd < 0) {
			err = -errno;
			if (err == -ENOENT)
				td_err("mesh: no mesh datapath pinned at %s (%s missing)", bpffs,
				       td_mesh_map_slots[i].name);
			else
				td_err("mesh: cannot open %s: %s", path, strerror(-err));
			goto cleanup;
		}
		*td_mesh_map_fd(m, i) = fd;
	}
cleanup:
	if (err)
		td_mesh_maps_close(m);
	return err;
}

/* ---- cgroups ------------------------------------------------------------------------------- */

int td_mesh_cgroup2_mount(char *buf, size_t len)
{
	struct mntent ent, *e;
	char line[4096];
	int err = -ENOENT;
	FILE *f;

	f = setmntent("/proc/mounts", "re");
	if (!f)
		return -errno;
	while ((e = getmntent_r(f, &ent, line, sizeof(line)))) {
		if (strcmp(e->mnt_type, "cgroup2"))
			continue;
		if (snprintf(buf, len, "%s", e->mnt_dir) >= (int)len)
			err = -ENAMETOOLONG;
		else
			err = 0;
		break;
	}
	endmntent(f);
	return err;
}

int td_mesh_cgroup_root(const char *root, char *buf, size_t len)
{
	int err;

	if (root && *root) {
		if (snprintf(buf, len, "%s", root) >= (int)len)
			return -ENAMETOOLONG;
		return 0;
	}
	err = td_mesh_cgroup2_mount(buf, len);
	if (err)
		td_err("mesh: no cgroup2 filesystem mounted (see /proc/mounts): set mesh.cgroup_root");
	return err;
}

int td_mesh_cgroup_id(const char *path, __u64 *id)
{
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + 64];
	} h;
	struct stat st;
	int mount_id;

	memset(&h, 0, sizeof(h));
	h.fh.handle_bytes = 64;
	if (!name_to_handle_at(AT_FDCWD, path, &h.fh, &mount_id, 0) && h.fh.handle_bytes == 8) {
		memcpy(id, h.fh.f_handle, sizeof(*id));
		return 0;
	}
	/* kernfs: the inode number is the cgroup id on 64-bit kernels */
	if (stat(path, &st))
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	*id = (__u64)st.st_ino;
	return 0;
}

/* ---- load, pin, attach --------------------------------------------------------------------- */

/* pin every td_m_* program of obj as prog_m_<hook> */
static int td_mesh_pin_progs(struct bpf_object *obj, const char *bpffs)
{
	struct bpf_program *prog;
	int err = 0;

	bpf_object__for_each_program(prog, obj) {
		const char *name = bpf_program__name(prog);
		char pin[64];

		if (strncmp(name, TD_MESH_PROG_PREFIX, strlen(TD_MESH_PROG_PREFIX)))
			continue;
		snprintf(pin, sizeof(pin), "%s%s", TD_PIN_PROG_M_PREFIX,
			 name + strlen(TD_MESH_PROG_PREFIX));
		err = td_pin_replace(bpf_program__fd(prog), bpffs, pin);
		if (err)
			break;
	}
	return err;
}

int td_mesh_load_opts(const char *bpffs, const struct td_mesh_load_opts *opts, bool *adopted)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = bpffs);
	struct sock_lb *skel = NULL;
	struct sockops *ops = NULL;
	struct sk_msg *msg = NULL;
	char path[PATH_MAX];
	int err;

	err = td_bpffs_prepare(bpffs);
	if (err)
		goto cleanup;
	err = td_mesh_pin_path(path, sizeof(path), bpffs, TD_MAP_M_SVC, NULL);
	if (err)
		goto cleanup;
	*adopted = access(path, F_OK) == 0;
	skel = sock_lb__open_opts(&oo);
	ops = sockops__open_opts(&oo);
	msg = sk_msg__open_opts(&oo);
	if (!skel || !ops || !msg) {
		err = -errno;
		td_err("mesh: cannot open the mesh BPF objects: %s", strerror(-err));
		goto cleanup;
	}
	msg->rodata->td_redir_budget = opts ? opts->redir_budget : TD_MESH_REDIR_BUDGET;
	err = sock_lb__load(skel);
	if (!err)
		err = sockops__load(ops);
	if (!err)
		err = sk_msg__load(msg);
	if (err) {
		td_err("mesh: cannot load the mesh programs (pinned mesh maps at %s incompatible? "
		       "unpin them): %s", bpffs, strerror(-err));
		goto cleanup;
	}
	err = td_mesh_pin_progs(skel->obj, bpffs);
	if (!err)
		err = td_mesh_pin_progs(ops->obj, bpffs);
	if (!err)
		err = td_mesh_pin_progs(msg->obj, bpffs);
	if (err)
		goto cleanup;
	/*
	 * sk_msg belongs to the SOCKHASH: the map keeps it (like its pin keeps the map). A new
	 * program replaces the old one for sockets that join from now on; members keep theirs.
	 */
	if (bpf_prog_attach(bpf_program__fd(msg->progs.td_m_msg), bpf_map__fd(msg->maps.td_m_socks),
			    BPF_SK_MSG_VERDICT, 0)) {
		err = -errno;
		td_err("mesh: cannot attach sk_msg to %s: %s", TD_MAP_M_SOCKS, strerror(-err));
		goto cleanup;
	}
	td_debug("mesh: datapath %s at %s (redirect budget %u bytes)",
		 *adopted ? "adopted" : "pinned", bpffs, msg->rodata->td_redir_budget);
cleanup:
	sk_msg__destroy(msg);
	sockops__destroy(ops);
	sock_lb__destroy(skel);
	return err;
}

int td_mesh_load(const char *bpffs, bool *adopted)
{
	return td_mesh_load_opts(bpffs, NULL, adopted);
}

/*
 * The 9 cgroup programs; ours: named td_m_<hook> and using the td_m_cnt pinned under the same
 * bpffs (another td instance or a test keeps its own)
 */
static const struct td_cgprog_set td_mesh_cgprogs = {
	.who = "mesh",
	.what = "mesh datapath",
	.name_prefix = TD_MESH_PROG_PREFIX,
	.pin_prefix = TD_PIN_PROG_M_PREFIX,
	.cnt_map = TD_MAP_M_CNT,
	.progs = td_mesh_progs,
	.n_progs = TD_MESH_N_PROGS,
};

int td_mesh_attach(const char *bpffs, const char *cgroup)
{
	int err = td_cgprog_attach(&td_mesh_cgprogs, bpffs, cgroup);

	if (!err)
		td_debug("mesh: programs attached to %s", cgroup);
	return err;
}

int td_mesh_detach(const char *bpffs, const char *cgroup)
{
	return td_cgprog_detach(&td_mesh_cgprogs, bpffs, cgroup);
}

int td_mesh_unpin(const char *bpffs)
{
	char path[PATH_MAX];
	int err = 0;

	for (size_t i = 0; i < TD_MESH_N_MAPS; i++) {
		snprintf(path, sizeof(path), "%s/%s", bpffs, td_mesh_map_slots[i].name);
		if (unlink(path) && errno != ENOENT && !err)
			err = -errno;
	}
	for (size_t i = 0; i <= TD_MESH_N_PROGS; i++) {
		snprintf(path, sizeof(path), "%s/%s%s", bpffs, TD_PIN_PROG_M_PREFIX,
			 i < TD_MESH_N_PROGS ? td_mesh_progs[i].hook : TD_MESH_MSG_HOOK);
		if (unlink(path) && errno != ENOENT && !err)
			err = -errno;
	}
	if (err)
		td_err("mesh: cannot unpin under %s: %s", bpffs, strerror(-err));
	return err;
}

/* ---- selection tables ---------------------------------------------------------------------- */

size_t td_mesh_sel_fill(const struct td_backend_cfg *be, size_t n, struct td_mesh_be *slots)
{
	size_t count[TD_MESH_MAX_BACKENDS] = { 0 }, k = 0, used = 0, pos = 0;
	__u64 rem[TD_MESH_MAX_BACKENDS] = { 0 }, wsum = 0, rest;

	memset(slots, 0, TD_MESH_SLOTS * sizeof(*slots));
	if (n > TD_MESH_MAX_BACKENDS)
		n = TD_MESH_MAX_BACKENDS;
	for (size_t i = 0; i < n; i++) {
		if (!be[i].weight)
			continue;
		wsum += be[i].weight;
		k++;
	}
	if (!k)
		return 0;
	rest = TD_MESH_SLOTS - k;
	for (size_t i = 0; i < n; i++) {
		if (!be[i].weight)
			continue;
		count[i] = 1 + (size_t)(rest * be[i].weight / wsum);
		rem[i] = rest * be[i].weight % wsum;
		used += count[i];
	}
	/* largest remainder first, ties to the earlier backend */
	while (used < TD_MESH_SLOTS) {
		size_t best = n;

		for (size_t i = 0; i < n; i++)
			if (be[i].weight && (best == n || rem[i] > rem[best]))
				best = i;
		count[best]++;
		rem[best] = 0;
		used++;
	}
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < count[i] && pos < TD_MESH_SLOTS; j++, pos++) {
			slots[pos].addr = be[i].addr;
			slots[pos].port = htons(be[i].port);
			slots[pos].family = be[i].family;
			slots[pos].index = (__u32)i;
		}
	}
	return k;
}

int td_mesh_set_backends(const struct td_mesh_maps *m, __u32 id, const struct td_backend_cfg *be,
			 size_t n)
{
	struct td_mesh_be *slots;
	int inner = -1, err = 0;

	if (!id || id >= TD_MESH_MAX_SERVICES)
		return -EINVAL;
	slots = calloc(TD_MESH_SLOTS, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	if (!td_mesh_sel_fill(be, n, slots)) {
		if (bpf_map_delete_elem(m->sel, &id) && errno != ENOENT) {
			err = -errno;
			td_err("mesh: cannot clear the selection table of service %u: %s", id,
			       strerror(-err));
		}
		goto cleanup;
	}
	inner = bpf_map_create(BPF_MAP_TYPE_ARRAY, "td_m_sel_tbl", sizeof(__u32), sizeof(*slots),
			       TD_MESH_SLOTS, NULL);
	if (inner < 0) {
		err = -errno;
		td_err("mesh: cannot create a selection table: %s", strerror(-err));
		goto cleanup;
	}
	for (__u32 i = 0; i < TD_MESH_SLOTS; i++) {
		if (bpf_map_update_elem(inner, &i, &slots[i], BPF_ANY)) {
			err = -errno;
			td_err("mesh: cannot fill a selection table: %s", strerror(-err));
			goto cleanup;
		}
	}
	/* the swap: connect() sees the old table or the new one, never a mix */
	if (bpf_map_update_elem(m->sel, &id, &inner, BPF_ANY)) {
		err = -errno;
		td_err("mesh: cannot install the selection table of service %u: %s", id,
		       strerror(-err));
	}
cleanup:
	if (inner >= 0)
		close(inner);
	free(slots);
	return err;
}

/* ---- names and ids ------------------------------------------------------------------------- */

int td_mesh_id_by_name(const struct td_mesh_maps *m, const char *name, __u32 *id)
{
	struct td_mesh_name nm;

	if (!strcmp(name, TD_MESH_UNKNOWN_NAME)) {
		*id = TD_MESH_ID_UNKNOWN;
		return 0;
	}
	for (__u32 i = 1; i < TD_MESH_MAX_SERVICES; i++) {
		if (bpf_map_lookup_elem(m->names, &i, &nm))
			return -errno;
		if (nm.name[0] && !strncmp(nm.name, name, sizeof(nm.name))) {
			*id = i;
			return 0;
		}
	}
	return -ENOENT;
}

const char *td_mesh_id_name(const struct td_mesh_maps *m, __u32 id, char *buf, size_t len)
{
	struct td_mesh_name nm;

	if (id == TD_MESH_ID_UNKNOWN)
		snprintf(buf, len, "%s", TD_MESH_UNKNOWN_NAME);
	else if (id < TD_MESH_MAX_SERVICES && !bpf_map_lookup_elem(m->names, &id, &nm) &&
		 nm.name[0])
		snprintf(buf, len, "%.*s", (int)sizeof(nm.name), nm.name);
	else
		snprintf(buf, len, "#%u", id);
	return buf;
}

/* ---- apply --------------------------------------------------------------------------------- */

static void td_mesh_vip_key(const struct td_mesh_service_cfg *s, struct td_vip_key *k)
{
	memset(k, 0, sizeof(*k));
	k->addr = s->vip;
	k->port = htons(s->port);
	k->proto = s->proto;
	k->family = s->family;
}

static __u32 td_mesh_cfg_id(const struct td_mesh_cfg *cfg, const __u32 *ids, const char *name)
{
	if (!strcmp(name, TD_MESH_UNKNOWN_NAME))
		return TD_MESH_ID_UNKNOWN;
	for (size_t i = 0; i < cfg->n_services; i++)
		if (!strcmp(cfg->services[i].name, name))
			return ids[i];
	return TD_MESH_ID_UNKNOWN;   /* validated away by the config parser */
}

/*
 * Delete every key of map fd for which keep(key) is false. Keys are collected first, so the
 * walk is not disturbed by the deletions.
 */
static int td_mesh_prune(int fd, size_t key_size, size_t max,
			 bool (*keep)(const void *key, const void *arg), const void *arg)
{
	char *keys, *cur = NULL;
	size_t n = 0;
	int err = 0;

	keys = calloc(max, key_size);
	if (!keys)
		return -ENOMEM;
	while (n < max && !bpf_map_get_next_key(fd, cur, keys + n * key_size)) {
		cur = keys + n * key_size;
		n++;
	}
	for (size_t i = 0; i < n; i++) {
		if (keep(keys + i * key_size, arg))
			continue;
		if (bpf_map_delete_elem(fd, keys + i * key_size) && errno != ENOENT && !err)
			err = -errno;
	}
	free(keys);
	return err;
}

struct td_mesh_want {
	const struct td_mesh_cfg *cfg;
	const __u32 *ids;
	const __u64 *cgids;
};

static bool td_mesh_keep_svc(const void *key, const void *arg)
{
	const struct td_mesh_want *w = arg;
	struct td_vip_key k;

	for (size_t i = 0; i < w->cfg->n_services; i++) {
		td_mesh_vip_key(&w->cfg->services[i], &k);
		if (!memcmp(&k, key, sizeof(k)))
			return true;
	}
	return false;
}

static bool td_mesh_keep_cg(const void *key, const void *arg)
{
	const struct td_mesh_want *w = arg;

	for (size_t i = 0; i < w->cfg->n_services; i++)
		if (w->cfg->services[i].cgroup[0] && !memcmp(&w->cgids[i], key, sizeof(__u64)))
			return true;
	return false;
}

static bool td_mesh_keep_allow(const void *key, const void *arg)
{
	const struct td_mesh_want *w = arg;
	const struct td_mesh_allow_key *k = key;

	for (size_t i = 0; i < w->cfg->n_allow; i++) {
		const struct td_mesh_allow_cfg *r = &w->cfg->allow[i];

		if (td_mesh_cfg_id(w->cfg, w->ids, r->from) != k->src ||
		    td_mesh_cfg_id(w->cfg, w->ids, r->to) != k->dst)
			continue;
		if (!r->n_ports && k->port == 0)
			return true;
		for (size_t p = 0; p < r->n_ports; p++)
			if (r->ports[p] == k->port)
				return true;
	}
	return false;
}

/* ids for cfg's services: the pinned id of the same name, else the lowest id free longest */
static int td_mesh_assign_ids(const struct td_mesh_maps *m, const struct td_mesh_cfg *cfg,
			      __u32 *ids)
{
	struct td_mesh_name names[TD_MESH_MAX_SERVICES];
	bool taken[TD_MESH_MAX_SERVICES] = { false };

	for (__u32 i = 1; i < TD_MESH_MAX_SERVICES; i++) {
		if (bpf_map_lookup_elem(m->names, &i, &names[i]))
			return -errno;
		taken[i] = names[i].name[0] != '\0';
	}
	for (size_t s = 0; s < cfg->n_services; s++) {
		ids[s] = 0;
		for (__u32 i = 1; i < TD_MESH_MAX_SERVICES; i++)
			if (taken[i] && !strncmp(names[i].name, cfg->services[s].name,
						 sizeof(names[i].name)))
				ids[s] = i;
	}
	for (size_t s = 0; s < cfg->n_services; s++) {
		if (ids[s])
			continue;
		/* ids never used (or unused now) first; ids of removed services last */
		for (int pass = 0; pass < 2 && !ids[s]; pass++) {
			for (__u32 i = 1; i < TD_MESH_MAX_SERVICES && !ids[s]; i++) {
				bool used = false;

				for (size_t o = 0; o < cfg->n_services; o++)
					if (ids[o] == i)
						used = true;
				if (!used && (pass == 1 || !taken[i]))
					ids[s] = i;
			}
		}
		if (!ids[s])
			return -ENOSPC;
	}
	return 0;
}

int td_mesh_apply(const struct td_mesh_maps *m, const struct td_mesh_cfg *cfg,
		  const char *cgroup_root, __u32 gen)
{
	__u32 ids[TD_MESH_MAX_SERVICES] = { 0 }, one = 1, zero = 0;
	__u64 cgids[TD_MESH_MAX_SERVICES] = { 0 };
	struct td_mesh_want want = { .cfg = cfg, .ids = ids, .cgids = cgids };
	struct td_mesh_conf conf = { .default_policy = cfg->default_policy, .generation = gen };
	char root[PATH_MAX], path[PATH_MAX * 2];
	bool in_cfg[TD_MESH_MAX_SERVICES] = { false };
	int err;

	if (cfg->n_services >= TD_MESH_MAX_SERVICES)
		return -E2BIG;
	err = td_mesh_cgroup_root(cgroup_root && *cgroup_root ? cgroup_root : cfg->cgroup_root,
				  root, sizeof(root));
	if (err)
		goto cleanup;
	/* every cgroup must exist before anything is written */
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct td_mesh_service_cfg *s = &cfg->services[i];

		if (!s->cgroup[0])
			continue;
		snprintf(path, sizeof(path), "%s/%s", root, s->cgroup);
		err = td_mesh_cgroup_id(path, &cgids[i]);
		if (err) {
			td_err("mesh: service '%s': cgroup %s %s", s->name, path,
			       err == -ENOENT ? "does not exist (create it before starting the workload)"
					      : strerror(-err));
			goto cleanup;
		}
	}
	err = td_mesh_assign_ids(m, cfg, ids);
	if (err) {
		td_err("mesh: cannot assign service ids: %s", strerror(-err));
		goto cleanup;
	}
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct td_mesh_service_cfg *s = &cfg->services[i];
		struct td_mesh_name nm = { 0 };

		in_cfg[ids[i]] = true;
		snprintf(nm.name, sizeof(nm.name), "%s", s->name);
		td_mesh_vip_key(s, &nm.vip);
		nm.flags = s->sockmap ? TD_MESH_SVC_F_SOCKMAP : 0;
		if (bpf_map_update_elem(m->names, &ids[i], &nm, BPF_ANY)) {
			err = -errno;
			goto map_err;
		}
		err = td_mesh_set_backends(m, ids[i], s->backends, s->n_backends);
		if (err)
			goto cleanup;
		if (s->cgroup[0] && bpf_map_update_elem(m->cg, &cgids[i], &ids[i], BPF_ANY)) {
			err = -errno;
			goto map_err;
		}
	}
	for (size_t i = 0; i < cfg->n_allow; i++) {
		const struct td_mesh_allow_cfg *r = &cfg->allow[i];
		struct td_mesh_allow_key k = { .src = td_mesh_cfg_id(cfg, ids, r->from),
					       .dst = td_mesh_cfg_id(cfg, ids, r->to) };
		size_t np = r->n_ports ? r->n_ports : 1;

		for (size_t p = 0; p < np; p++) {
			k.port = r->n_ports ? r->ports[p] : 0;
			if (bpf_map_update_elem(m->allow, &k, &one, BPF_ANY)) {
				err = -errno;
				goto map_err;
			}
		}
	}
	if (bpf_map_update_elem(m->conf, &zero, &conf, BPF_ANY)) {
		err = -errno;
		goto map_err;
	}
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct td_mesh_service_cfg *s = &cfg->services[i];
		struct td_mesh_svc v = { .id = ids[i],
					 .flags = s->sockmap ? TD_MESH_SVC_F_SOCKMAP : 0 };
		struct td_vip_key k;

		td_mesh_vip_key(s, &k);
		if (bpf_map_update_elem(m->svc, &k, &v, BPF_ANY)) {
			err = -errno;
			goto map_err;
		}
	}
	/* what the config no longer has: VIPs first, then rules, cgroups, tables and names */
	err = td_mesh_prune(m->svc, sizeof(struct td_vip_key), TD_MESH_MAX_SERVICES,
			    td_mesh_keep_svc, &want);
	if (!err)
		err = td_mesh_prune(m->allow, sizeof(struct td_mesh_allow_key), TD_MESH_MAX_RULES,
				    td_mesh_keep_allow, &want);
	if (!err)
		err = td_mesh_prune(m->cg, sizeof(__u64), TD_MESH_MAX_CGROUPS, td_mesh_keep_cg,
				    &want);
	if (err)
		goto map_err;
	for (__u32 id = 1; id < TD_MESH_MAX_SERVICES; id++) {
		struct td_mesh_name nm = { 0 };

		if (in_cfg[id])
			continue;
		if (bpf_map_delete_elem(m->sel, &id) && errno != ENOENT) {
			err = -errno;
			goto map_err;
		}
		if (bpf_map_update_elem(m->names, &id, &nm, BPF_ANY)) {
			err = -errno;
			goto map_err;
		}
	}
	td_debug("mesh: %zu services, %zu allow rules, default %s (generation %u)",
		 cfg->n_services, cfg->n_allow,
		 cfg->default_policy == TD_MESH_POLICY_ALLOW ? "allow" : "deny", gen);
	goto cleanup;
map_err:
	td_err("mesh: cannot write the mesh maps: %s", strerror(-err));
cleanup:
	return err;
}

/* ---- counters ------------------------------------------------------------------------------ */

static const char *const td_mesh_counter_names[TD_M_CNT_MAX] = {
	[TD_M_CNT_CONNECT] = "connect",
	[TD_M_CNT_SENDMSG] = "sendmsg",
	[TD_M_CNT_RESTORE_PEER] = "restore_peer",
	[TD_M_CNT_RESTORE_RECV] = "restore_recv",
	[TD_M_CNT_ALLOW_RULE] = "allow_rule",
	[TD_M_CNT_ALLOW_DEFAULT] = "allow_default",
	[TD_M_DENY_POLICY] = "deny_policy",
	[TD_M_DENY_NO_BACKEND] = "deny_no_backend",
	[TD_M_ERR_EVENT] = "err_event",
	[TD_M_ERR_SK_STORAGE] = "err_sk_storage",
	[TD_M_ERR_PAIR] = "err_pair",
	[TD_M_SOCK_JOIN_ACTIVE] = "sock_join_active",
	[TD_M_SOCK_JOIN_PASSIVE] = "sock_join_passive",
	[TD_M_SOCK_SKIP_OPTOUT] = "sock_skip_optout",
	[TD_M_ERR_SOCK_UPDATE] = "err_sock_update",
	[TD_M_MSG_REDIRECT] = "msg_redirect",
	[TD_M_MSG_REDIRECT_BYTES] = "msg_redirect_bytes",
	[TD_M_MSG_PASS_NO_PEER] = "msg_pass_no_peer",
	[TD_M_MSG_PASS_BUDGET] = "msg_pass_budget",
	[TD_M_MSG_PASS_TCP] = "msg_pass_tcp",
	[TD_M_MSG_REARM] = "msg_rearm",
	[TD_M_MSG_PASS_FOREIGN] = "msg_pass_foreign",
	[TD_M_ERR_REDIRECT] = "err_redirect",
	[TD_M_ERR_PSOCK] = "err_psock",
};

const char *td_mesh_counter_name(unsigned int idx)
{
	if (idx >= TD_M_CNT_MAX || !td_mesh_counter_names[idx])
		return "?";
	return td_mesh_counter_names[idx];
}

int td_mesh_counters(const struct td_mesh_maps *m, __u64 *out)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 *v;
	int err = 0;

	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (__u32 i = 0; i < TD_M_CNT_MAX; i++) {
		out[i] = 0;
		if (bpf_map_lookup_elem(m->cnt, &i, v)) {
			err = -errno;
			break;
		}
		for (int c = 0; c < ncpu; c++)
			out[i] += v[c];
	}
	free(v);
	return err;
}

int td_mesh_pair_read(const struct td_mesh_maps *m, __u32 src, __u32 dst,
		      struct td_mesh_pair_stats *out)
{
	struct td_mesh_pair_key k = { .src = src, .dst = dst };
	int ncpu = libbpf_num_possible_cpus();
	struct td_mesh_pair_stats *v;
	int err = 0;

	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	memset(out, 0, sizeof(*out));
	if (bpf_map_lookup_elem(m->pair, &k, v)) {
		err = -errno;
		goto cleanup;
	}
	for (int c = 0; c < ncpu; c++) {
		out->connections += v[c].connections;
		out->datagrams += v[c].datagrams;
		out->denials += v[c].denials;
		out->no_backend += v[c].no_backend;
		out->bytes_tx += v[c].bytes_tx;
		out->bytes_rx += v[c].bytes_rx;
		if (v[c].srtt_us)
			out->srtt_us = v[c].srtt_us;
	}
cleanup:
	free(v);
	return err;
}

int td_mesh_pairs_foreach(const struct td_mesh_maps *m, td_mesh_pair_fn fn, void *ctx)
{
	struct td_mesh_pair_key keys[256], *cur = NULL;
	struct td_mesh_pair_stats st;
	size_t n = 0;
	int err = 0;

	/* keys first (bounded), so a pair created meanwhile does not restart the walk */
	while (n < sizeof(keys) / sizeof(keys[0]) &&
	       !bpf_map_get_next_key(m->pair, cur, &keys[n])) {
		cur = &keys[n];
		n++;
	}
	for (size_t i = 0; i < n; i++) {
		err = td_mesh_pair_read(m, keys[i].src, keys[i].dst, &st);
		if (err == -ENOENT)
			continue;
		if (err)
			break;
		fn(keys[i].src, keys[i].dst, &st, ctx);
	}
	return err == -ENOENT ? 0 : err;
}

int td_mesh_socks_count(const struct td_mesh_maps *m)
{
	struct td_mesh_sock_key k, *cur = NULL;
	int n = 0;

	while (n < TD_MESH_MAX_SOCKS && !bpf_map_get_next_key(m->socks, cur, &k)) {
		cur = &k;
		n++;
	}
	return n;
}

/* ---- events -------------------------------------------------------------------------------- */

struct td_mesh_events {
	struct ring_buffer *rb;
	td_mesh_event_fn fn;
	void *ctx;
};

static int td_mesh_event_cb(void *ctx, void *data, size_t size)
{
	struct td_mesh_events *ev = ctx;
	struct td_mesh_event e;

	if (size < sizeof(e))
		return 0;
	memcpy(&e, data, sizeof(e));
	ev->fn(&e, ev->ctx);
	return 0;
}

struct td_mesh_events *td_mesh_events_new(const struct td_mesh_maps *m, td_mesh_event_fn fn,
					  void *ctx)
{
	struct td_mesh_events *ev;
	int err;

	ev = calloc(1, sizeof(*ev));
	if (!ev)
		return NULL;
	ev->fn = fn;
	ev->ctx = ctx;
	ev->rb = ring_buffer__new(m->events, td_mesh_event_cb, ev, NULL);
	if (!ev->rb) {
		err = errno ? errno : EINVAL;
		free(ev);
		errno = err;
		return NULL;
	}
	return ev;
}

int td_mesh_events_fd(const struct td_mesh_events *ev)
{
	return ring_buffer__epoll_fd(ev->rb);
}

int td_mesh_events_consume(struct td_mesh_events *ev)
{
	return ring_buffer__consume(ev->rb);
}

void td_mesh_events_free(struct td_mesh_events *ev)
{
	if (!ev)
		return;
	ring_buffer__free(ev->rb);
	free(ev);
}

const char *td_mesh_event_format(const struct td_mesh_maps *m, const struct td_mesh_event *e,
				 char *buf, size_t len)
{
	char src[TD_NAME_LEN + 8], dst[TD_NAME_LEN + 8], ep[TD_ENDPOINTSTRLEN];
	char comm[sizeof(e->comm) + 1];

	memcpy(comm, e->comm, sizeof(e->comm));
	comm[sizeof(e->comm)] = '\0';
	snprintf(buf, len, "mesh: %s %s -> %s %s/%s (%s) pid %u comm %s cgroup %llu",
		 e->type == TD_MESH_EV_NO_BACKEND ? "no healthy backend for" : "denied",
		 td_mesh_id_name(m, e->src, src, sizeof(src)),
		 td_mesh_id_name(m, e->dst, dst, sizeof(dst)),
		 td_endpoint_format(&e->vip, e->family, ntohs(e->port), ep, sizeof(ep)),
		 td_proto_name(e->proto), e->hook ? "sendmsg" : "connect", e->pid, comm,
		 (unsigned long long)e->cgroup_id);
	return buf;
}
