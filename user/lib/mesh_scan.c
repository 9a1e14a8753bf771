/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Find the cgroup2 folders where the mesh programs of one bpffs dir are attached (no agent needed). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "log.h"
#include "mesh.h"
#include "mesh_scan.h"

struct td_mesh_scan {
	__u32 cnt_id;            /* id of the td_m_cnt map pinned under bpffs */
	td_mesh_scan_fn fn;
	void *ctx;
	size_t dirs;             /* folders visited */
	int found;
};

/* is program id a td mesh program (td_m_*) that uses the map cnt_id? */
static bool td_mesh_scan_prog_ours(__u32 id, __u32 cnt_id)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info), map_ids[16], i, n;
	bool ours = false;
	int fd;

	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return false;
	memset(&info, 0, sizeof(info));
	info.nr_map_ids = sizeof(map_ids) / sizeof(map_ids[0]);
	info.map_ids = (__u64)(unsigned long)map_ids;
	if (!bpf_obj_get_info_by_fd(fd, &info, &len) && !strncmp(info.name, "td_m_", 5)) {
		n = info.nr_map_ids < 16 ? info.nr_map_ids : 16;
		for (i = 0; i < n; i++)
			if (map_ids[i] == cnt_id)
				ours = true;
	}
	close(fd);
	return ours;
}

/* does folder fd carry one of our programs directly? */
static bool td_mesh_scan_dir_ours(int fd, __u32 cnt_id)
{
	static const enum bpf_attach_type types[] = { BPF_CGROUP_INET4_CONNECT,
						      BPF_CGROUP_SOCK_OPS };
	size_t t;

	for (t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		__u32 ids[64], cnt = 64, flags = 0, k;

		if (bpf_prog_query(fd, types[t], 0, &flags, ids, &cnt))
			continue;
		for (k = 0; k < cnt && k < 64; k++)
			if (td_mesh_scan_prog_ours(ids[k], cnt_id))
				return true;
	}
	return false;
}

static int td_mesh_scan_dir(struct td_mesh_scan *s, const char *path, int depth)
{
	char sub[PATH_MAX];
	struct dirent *de;
	DIR *d = NULL;
	int fd, err = 0;

	if (++s->dirs > TD_MESH_SCAN_MAX_DIRS)
		return 0;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;              /* removed meanwhile, or not ours to read */
	if (td_mesh_scan_dir_ours(fd, s->cnt_id)) {
		s->found++;
		if (s->fn) {
			err = s->fn(path, s->ctx);
			if (err)
				goto cleanup;
		}
	}
	if (depth >= TD_MESH_SCAN_DEPTH)
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
		err = td_mesh_scan_dir(s, sub, depth + 1);
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

int td_mesh_scan_attached(const char *bpffs, td_mesh_scan_fn fn, void *ctx)
{
	struct td_mesh_scan s = { .fn = fn, .ctx = ctx };
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	char path[PATH_MAX], mnt[PATH_MAX];
	int fd, err;

	snprintf(path, sizeof(path), "%s/%s", bpffs, TD_MAP_M_CNT);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : -errno;
	memset(&info, 0, sizeof(info));
	err = bpf_obj_get_info_by_fd(fd, &info, &len) ? -errno : 0;
	close(fd);
	if (err) {
		td_err("mesh: %s: %s", path, strerror(-err));
		return err;
	}
	s.cnt_id = info.id;
	err = td_mesh_cgroup2_mount(mnt, sizeof(mnt));
	if (err) {
		td_err("mesh: no cgroup2 mount to look for attachments: %s", strerror(-err));
		return err;
	}
	err = td_mesh_scan_dir(&s, mnt, 0);
	return err ? err : s.found;
}

struct td_mesh_detach_ctx {
	const char *bpffs;
	int n;
};

static int td_mesh_detach_one(const char *cgroup, void *arg)
{
	struct td_mesh_detach_ctx *c = arg;
	int n = td_mesh_detach(c->bpffs, cgroup);

	if (n < 0)
		return n;
	if (n)
		td_info("mesh: %d program(s) detached from cgroup %s", n, cgroup);
	c->n += n;
	return 0;
}

int td_mesh_detach_everywhere(const char *bpffs)
{
	struct td_mesh_detach_ctx c = { .bpffs = bpffs };
	int err = td_mesh_scan_attached(bpffs, td_mesh_detach_one, &c);

	if (err == -ENOENT)
		return 0;
	return err < 0 ? err : c.n;
}
