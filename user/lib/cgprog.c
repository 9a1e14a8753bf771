/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Attach/detach a set of pinned cgroup programs and find the folders where they are attached. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "cgprog.h"
#include "log.h"
#include "mesh.h"

#define TD_CGPROG_MAX_ATTACHED 64       /* programs read per (folder, hook) */
#define TD_CGPROG_MAX_MAPS     16       /* map ids read per program */

/* what attach, detach and the walk need to tell ours */
struct td_cgprog_ctx {
	const struct td_cgprog_set *s;
	__u32 cnt_id;                   /* id of bpffs/<cnt_map>, 0 when the set has none */
};

/* bpffs/<prefix><name> opened; a missing pin is not logged when quiet. fd or -errno. */
static int td_cgprog_pin_open(const struct td_cgprog_set *s, const char *bpffs,
			      const char *prefix, const char *name, bool quiet)
{
	char path[PATH_MAX];
	int fd, err;

	if (snprintf(path, sizeof(path), "%s/%s%s", bpffs, prefix, name) >= (int)sizeof(path)) {
		td_err("%s: bpffs path too long: %s", s->who, bpffs);
		return -ENAMETOOLONG;
	}
	fd = bpf_obj_get(path);
	if (fd < 0) {
		err = -errno;
		if (err != -ENOENT || !quiet)
			td_err("%s: cannot open %s: %s%s%s%s", s->who, path, strerror(-err),
			       err == -ENOENT ? " (" : "", err == -ENOENT ? s->what : "",
			       err == -ENOENT ? " not loaded)" : "");
		return err;
	}
	return fd;
}

/* id of the BPF program (prog) or map fd refers to; 0 on error */
static __u32 td_cgprog_obj_id(int fd, bool prog)
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

/* c->cnt_id from bpffs/<cnt_map> (left 0 without one). 0 or -errno (-ENOENT quiet if asked). */
static int td_cgprog_ctx_init(struct td_cgprog_ctx *c, const struct td_cgprog_set *s,
			      const char *bpffs, bool quiet)
{
	int fd;

	c->s = s;
	c->cnt_id = 0;
	if (!s->cnt_map)
		return 0;
	fd = td_cgprog_pin_open(s, bpffs, "", s->cnt_map, quiet);
	if (fd < 0)
		return fd;
	c->cnt_id = td_cgprog_obj_id(fd, false);
	close(fd);
	return 0;
}

/* the default rule: named <name_prefix><hook> (any hook when NULL) and using the map cnt_id */
static bool td_cgprog_named_with_map(__u32 id, const char *name_prefix, const char *hook,
				     __u32 cnt_id)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info), map_ids[TD_CGPROG_MAX_MAPS];
	char want[BPF_OBJ_NAME_LEN];
	bool ours = false, named;
	int fd;

	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return false;
	memset(&info, 0, sizeof(info));
	info.nr_map_ids = TD_CGPROG_MAX_MAPS;
	info.map_ids = (__u64)(unsigned long)map_ids;
	snprintf(want, sizeof(want), "%s%s", name_prefix, hook ? hook : "");
	if (!bpf_obj_get_info_by_fd(fd, &info, &len)) {
		named = hook ? !strcmp(info.name, want) : !strncmp(info.name, want, strlen(want));
		for (__u32 i = 0; named && i < info.nr_map_ids && i < TD_CGPROG_MAX_MAPS; i++)
			if (map_ids[i] == cnt_id)
				ours = true;
	}
	close(fd);
	return ours;
}

static bool td_cgprog_ours(const struct td_cgprog_ctx *c, __u32 id, const char *hook)
{
	if (c->s->ours)
		return c->s->ours(id, hook, c->s->ours_ctx);
	return td_cgprog_named_with_map(id, c->s->name_prefix, hook, c->cnt_id);
}

/* the folder cgroup and c, for attach and detach */
static int td_cgprog_open_target(struct td_cgprog_ctx *c, const struct td_cgprog_set *s,
				 const char *bpffs, const char *cgroup, int *cg_fd)
{
	int err;

	err = td_cgprog_ctx_init(c, s, bpffs, false);
	if (err)
		return err;
	*cg_fd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*cg_fd < 0) {
		err = -errno;
		td_err("%s: cannot open cgroup %s: %s", s->who, cgroup, strerror(-err));
		return err;
	}
	return 0;
}

/* ids of the programs attached to cg_fd at type into ids[*cnt] (logged on error) */
static int td_cgprog_query(const struct td_cgprog_set *s, int cg_fd, const char *cgroup,
			   enum bpf_attach_type type, __u32 *ids, __u32 *cnt)
{
	__u32 flags = 0;
	int err;

	if (!bpf_prog_query(cg_fd, type, 0, &flags, ids, cnt))
		return 0;
	err = -errno;
	td_err("%s: cannot query cgroup %s: %s", s->who, cgroup, strerror(-err));
	return err;
}

int td_cgprog_attach(const struct td_cgprog_set *s, const char *bpffs, const char *cgroup)
{
	int cg_fd = -1, prog_fd = -1, old_fd = -1, err;
	struct td_cgprog_ctx c;

	err = td_cgprog_open_target(&c, s, bpffs, cgroup, &cg_fd);
	if (err)
		goto cleanup;
	for (size_t i = 0; i < s->n_progs; i++) {
		const struct td_cgprog *p = &s->progs[i];
		LIBBPF_OPTS(bpf_prog_attach_opts, ao, .flags = BPF_F_ALLOW_MULTI);
		__u32 ids[TD_CGPROG_MAX_ATTACHED], cnt = TD_CGPROG_MAX_ATTACHED, new_id, old_id = 0;

		prog_fd = td_cgprog_pin_open(s, bpffs, s->pin_prefix, p->hook, false);
		if (prog_fd < 0) {
			err = prog_fd;
			goto cleanup;
		}
		new_id = td_cgprog_obj_id(prog_fd, true);
		err = td_cgprog_query(s, cg_fd, cgroup, p->type, ids, &cnt);
		if (err)
			goto cleanup;
		for (__u32 k = 0; k < cnt && k < TD_CGPROG_MAX_ATTACHED; k++) {
			if (ids[k] == new_id) {
				old_id = new_id;
				break;
			}
			if (!old_id && td_cgprog_ours(&c, ids[k], p->hook))
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
				td_err("%s: cannot attach %s%s to cgroup %s: %s%s", s->who,
				       s->name_prefix, p->hook, cgroup, strerror(-err),
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
cleanup:
	if (old_fd >= 0)
		close(old_fd);
	if (prog_fd >= 0)
		close(prog_fd);
	if (cg_fd >= 0)
		close(cg_fd);
	return err;
}

int td_cgprog_detach(const struct td_cgprog_set *s, const char *bpffs, const char *cgroup)
{
	int cg_fd = -1, fd, err, n = 0;
	struct td_cgprog_ctx c;

	err = td_cgprog_open_target(&c, s, bpffs, cgroup, &cg_fd);
	if (err)
		goto cleanup;
	for (size_t i = 0; i < s->n_progs; i++) {
		const struct td_cgprog *p = &s->progs[i];
		__u32 ids[TD_CGPROG_MAX_ATTACHED], cnt = TD_CGPROG_MAX_ATTACHED;

		err = td_cgprog_query(s, cg_fd, cgroup, p->type, ids, &cnt);
		if (err)
			goto cleanup;
		for (__u32 k = 0; k < cnt && k < TD_CGPROG_MAX_ATTACHED; k++) {
			if (!td_cgprog_ours(&c, ids[k], p->hook))
				continue;
			fd = bpf_prog_get_fd_by_id(ids[k]);
			if (fd < 0)
				continue;       /* gone meanwhile */
			if (bpf_prog_detach2(fd, cg_fd, p->type)) {
				err = -errno;
				close(fd);
				td_err("%s: cannot detach %s%s from %s: %s", s->who, s->name_prefix,
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

/* ---- walk of the cgroup2 tree -------------------------------------------------------------- */

struct td_cgprog_scan {
	struct td_cgprog_ctx c;
	td_cgprog_scan_fn fn;
	void *ctx;
	size_t dirs;                    /* folders visited */
	int found;
};

/* does folder fd carry one of ours directly (probes: connect4, sockops)? */
static bool td_cgprog_dir_ours(const struct td_cgprog_ctx *c, int fd)
{
	static const enum bpf_attach_type probes[] = { BPF_CGROUP_INET4_CONNECT,
						       BPF_CGROUP_SOCK_OPS };

	for (size_t t = 0; t < sizeof(probes) / sizeof(probes[0]); t++) {
		__u32 ids[TD_CGPROG_MAX_ATTACHED], cnt = TD_CGPROG_MAX_ATTACHED, flags = 0;

		if (bpf_prog_query(fd, probes[t], 0, &flags, ids, &cnt))
			continue;
		for (__u32 k = 0; k < cnt && k < TD_CGPROG_MAX_ATTACHED; k++)
			if (td_cgprog_ours(c, ids[k], NULL))
				return true;
	}
	return false;
}

static int td_cgprog_scan_dir(struct td_cgprog_scan *s, const char *path, int depth)
{
	char sub[PATH_MAX];
	struct dirent *de;
	DIR *d = NULL;
	int fd, err = 0;

	if (++s->dirs > TD_CGPROG_SCAN_MAX_DIRS)
		return 0;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;              /* removed meanwhile, or not ours to read */
	if (td_cgprog_dir_ours(&s->c, fd)) {
		s->found++;
		if (s->fn) {
			err = s->fn(path, s->ctx);
			if (err)
				goto cleanup;
		}
	}
	if (depth >= TD_CGPROG_SCAN_DEPTH)
		goto cleanup;
	d = fdopendir(fd);
	if (!d)
		goto cleanup;
	fd = -1;                       /* owned by d now */
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || !strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name) >= sizeof(sub))
			continue;
		err = td_cgprog_scan_dir(s, sub, depth + 1);
		if (err)
			goto cleanup;
	}
cleanup:
	if (d)
		closedir(d);
	if (fd >= 0)
		close(fd);
	return err;
}

int td_cgprog_scan(const struct td_cgprog_set *s, const char *bpffs, td_cgprog_scan_fn fn,
		   void *ctx)
{
	struct td_cgprog_scan w = { .fn = fn, .ctx = ctx };
	char root[PATH_MAX];
	int err;

	err = td_cgprog_ctx_init(&w.c, s, bpffs, true);
	if (err)
		return err;
	err = td_mesh_cgroup2_mount(root, sizeof(root));
	if (err) {
		td_err("%s: no cgroup2 filesystem mounted to look for attachments: %s", s->who,
		       strerror(-err));
		return err;
	}
	err = td_cgprog_scan_dir(&w, root, 0);
	return err ? err : w.found;
}

struct td_cgprog_everywhere {
	const struct td_cgprog_set *s;
	const char *bpffs;
	int (*detach)(const char *bpffs, const char *cgroup);
	int total;
};

static int td_cgprog_detach_found(const char *cgroup, void *arg)
{
	struct td_cgprog_everywhere *e = arg;
	int n;

	n = e->detach ? e->detach(e->bpffs, cgroup) : td_cgprog_detach(e->s, e->bpffs, cgroup);
	if (n < 0)
		return n;
	if (n && e->s->log_detached)
		td_info("%s: %d program(s) detached from cgroup %s", e->s->who, n, cgroup);
	e->total += n;
	return 0;
}

int td_cgprog_detach_everywhere(const struct td_cgprog_set *s, const char *bpffs,
				int (*detach)(const char *bpffs, const char *cgroup))
{
	struct td_cgprog_everywhere e = { .s = s, .bpffs = bpffs, .detach = detach };
	int err;

	err = td_cgprog_scan(s, bpffs, td_cgprog_detach_found, &e);
	if (err == -ENOENT)
		return 0;
	return err < 0 ? err : e.total;
}
