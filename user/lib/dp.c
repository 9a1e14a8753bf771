/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Datapath lifecycle: load and pin the BPF objects, adopt pinned maps, attach and detach interfaces. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "dp.h"
#include "log.h"
#include "names.h"
#include "xdp_lb.skel.h"
#include "tc_lb.skel.h"

#define TD_BPFFS_MOUNT "/sys/fs/bpf"

struct td_map_slot {
	const char *name;
	size_t off;
};

static const struct td_map_slot td_map_slots[] = {
	{ TD_MAP_SVC, offsetof(struct td_maps, svc) },
	{ TD_MAP_VIPS, offsetof(struct td_maps, vips) },
	{ TD_MAP_SVC_INFO, offsetof(struct td_maps, svc_info) },
	{ TD_MAP_BACKENDS, offsetof(struct td_maps, backends) },
	{ TD_MAP_MAGLEV, offsetof(struct td_maps, maglev) },
	{ TD_MAP_CT, offsetof(struct td_maps, ct) },
	{ TD_MAP_RNAT, offsetof(struct td_maps, rnat) },
	{ TD_MAP_PORTS, offsetof(struct td_maps, ports) },
	{ TD_MAP_SVC_STATS, offsetof(struct td_maps, svc_stats) },
	{ TD_MAP_BE_STATS, offsetof(struct td_maps, be_stats) },
	{ TD_MAP_COUNTERS, offsetof(struct td_maps, counters) },
	{ TD_MAP_IFACES, offsetof(struct td_maps, ifaces) },
};
#define TD_N_MAPS (sizeof(td_map_slots) / sizeof(td_map_slots[0]))

static int *td_map_fd(struct td_maps *m, size_t i)
{
	return (int *)((char *)m + td_map_slots[i].off);
}

void td_maps_init(struct td_maps *m)
{
	size_t i;

	for (i = 0; i < TD_N_MAPS; i++)
		*td_map_fd(m, i) = -1;
}

void td_maps_close(struct td_maps *m)
{
	size_t i;

	for (i = 0; i < TD_N_MAPS; i++) {
		int *fd = td_map_fd(m, i);

		if (*fd >= 0)
			close(*fd);
		*fd = -1;
	}
}

/* open a pin under bpffs; logs the one line that explains a failure */
static int td_pin_open(const char *bpffs, const char *name, int *fd_out)
{
	char path[PATH_MAX];
	int fd, err = 0;

	if (snprintf(path, sizeof(path), "%s/%s", bpffs, name) >= (int)sizeof(path)) {
		td_err("bpffs path too long: %s", bpffs);
		return -ENAMETOOLONG;
	}
	fd = bpf_obj_get(path);
	if (fd < 0) {
		err = -errno;
		if (err == -ENOENT)
			td_err("no td datapath pinned at %s: start tdagent first", bpffs);
		else if (err == -EPERM || err == -EACCES)
			td_err("permission denied opening %s: run as root", path);
		else
			td_err("cannot open %s: %s", path, strerror(-err));
		return err;
	}
	*fd_out = fd;
	return 0;
}

int td_maps_open(const char *bpffs, struct td_maps *m)
{
	size_t i;
	int err = 0;

	td_maps_init(m);
	if (geteuid() != 0) {
		td_err("permission denied: td needs root (CAP_BPF, CAP_NET_ADMIN)");
		err = -EPERM;
		goto cleanup;
	}
	for (i = 0; i < TD_N_MAPS; i++) {
		err = td_pin_open(bpffs, td_map_slots[i].name, td_map_fd(m, i));
		if (err)
			goto cleanup;
	}
cleanup:
	if (err)
		td_maps_close(m);
	return err;
}

static bool td_is_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

int td_bpffs_prepare(const char *bpffs)
{
	char parent[PATH_MAX];
	char *slash;
	int err = 0;

	if (td_is_bpffs(bpffs))
		goto cleanup;
	if (strncmp(bpffs, TD_BPFFS_MOUNT "/", strlen(TD_BPFFS_MOUNT) + 1) == 0 &&
	    !td_is_bpffs(TD_BPFFS_MOUNT)) {
		if (mount("bpf", TD_BPFFS_MOUNT, "bpf", 0, "mode=0700")) {
			err = -errno;
			td_err("cannot mount bpffs at %s: %s", TD_BPFFS_MOUNT, strerror(-err));
			goto cleanup;
		}
		td_info("mounted bpffs at %s", TD_BPFFS_MOUNT);
	}
	snprintf(parent, sizeof(parent), "%s", bpffs);
	slash = strrchr(parent, '/');
	if (slash && slash != parent)
		*slash = '\0';
	if (!td_is_bpffs(parent)) {
		err = -EINVAL;
		td_err("%s is not on a bpf filesystem", bpffs);
		goto cleanup;
	}
	if (mkdir(bpffs, 0700) && errno != EEXIST) {
		err = -errno;
		td_err("cannot create %s: %s", bpffs, strerror(-err));
		goto cleanup;
	}
cleanup:
	return err;
}

static bool td_pin_exists(const char *bpffs, const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", bpffs, name);
	return access(path, F_OK) == 0;
}

bool td_dp_is_pinned(const char *bpffs)
{
	return td_pin_exists(bpffs, TD_MAP_IFACES) && td_pin_exists(bpffs, TD_PIN_PROG_XDP_LB);
}

int td_pin_replace(int fd, const char *bpffs, const char *name)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	int err = 0;

	snprintf(path, sizeof(path), "%s/%s", bpffs, name);
	snprintf(tmp, sizeof(tmp), "%s/%s_new_%d", bpffs, name, (int)getpid());
	unlink(tmp);
	if (bpf_obj_pin(fd, tmp)) {
		err = -errno;
		td_err("cannot pin %s: %s", tmp, strerror(-err));
		goto cleanup;
	}
	if (rename(tmp, path)) {
		err = -errno;
		td_err("cannot rename %s to %s: %s", tmp, path, strerror(-err));
		unlink(tmp);
	}
cleanup:
	return err;
}

/* max_entries of an already pinned map, 0 when not pinned */
static __u32 td_pinned_max_entries(const char *bpffs, const char *name)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char path[PATH_MAX];
	__u32 max = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", bpffs, name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	if (!bpf_obj_get_info_by_fd(fd, &info, &len))
		max = info.max_entries;
	close(fd);
	return max;
}

static int td_obj_size_ct(struct bpf_object *obj, __u32 size)
{
	const char *names[] = { TD_MAP_CT, TD_MAP_RNAT };
	size_t i;
	int err;

	for (i = 0; i < 2; i++) {
		struct bpf_map *map = bpf_object__find_map_by_name(obj, names[i]);

		if (!map)
			return -ENOENT;
		err = bpf_map__set_max_entries(map, size);
		if (err)
			return err;
	}
	return 0;
}

int td_dp_load(const char *bpffs, __u32 conntrack_size, bool *adopted)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = bpffs);
	struct xdp_lb *xdp = NULL;
	struct tc_lb *tc = NULL;
	__u32 pinned_ct;
	int err;

	err = td_bpffs_prepare(bpffs);
	if (err)
		goto cleanup;
	*adopted = td_pin_exists(bpffs, TD_MAP_SVC);
	pinned_ct = td_pinned_max_entries(bpffs, TD_MAP_CT);
	if (pinned_ct && pinned_ct != conntrack_size) {
		td_warn("l4.conntrack_size %u differs from the pinned td_ct (%u entries): keeping %u "
			"so established flows survive; run tdagent --cleanup to resize",
			conntrack_size, pinned_ct, pinned_ct);
		conntrack_size = pinned_ct;
	}

	xdp = xdp_lb__open_opts(&oo);
	if (!xdp) {
		err = -errno;
		td_err("cannot open BPF object xdp_lb: %s", strerror(-err));
		goto cleanup;
	}
	err = td_obj_size_ct(xdp->obj, conntrack_size);
	if (err) {
		td_err("cannot size conntrack maps: %s", strerror(-err));
		goto cleanup;
	}
	err = xdp_lb__load(xdp);
	if (err) {
		td_err("cannot load xdp_lb (pinned maps at %s incompatible? try --cleanup): %s",
		       bpffs, strerror(-err));
		goto cleanup;
	}
	tc = tc_lb__open_opts(&oo);
	if (!tc) {
		err = -errno;
		td_err("cannot open BPF object tc_lb: %s", strerror(-err));
		goto cleanup;
	}
	err = td_obj_size_ct(tc->obj, conntrack_size);
	if (err) {
		td_err("cannot size conntrack maps: %s", strerror(-err));
		goto cleanup;
	}
	err = tc_lb__load(tc);
	if (err) {
		td_err("cannot load tc_lb (pinned maps at %s incompatible? try --cleanup): %s",
		       bpffs, strerror(-err));
		goto cleanup;
	}
	err = td_pin_replace(bpf_program__fd(xdp->progs.td_xdp_lb), bpffs, TD_PIN_PROG_XDP_LB);
	if (err)
		goto cleanup;
	err = td_pin_replace(bpf_program__fd(tc->progs.td_tc_lb), bpffs, TD_PIN_PROG_TC_LB);
	if (err)
		goto cleanup;
	td_debug("datapath %s at %s (td_ct %u entries)", *adopted ? "adopted" : "pinned", bpffs,
		 conntrack_size);
cleanup:
	tc_lb__destroy(tc);
	xdp_lb__destroy(xdp);
	return err;
}

int td_ifindex(const char *ifname, int *ifindex)
{
	unsigned int idx;

	if (strlen(ifname) >= TD_IFNAME_LEN) {
		td_err("interface name too long: %s", ifname);
		return -EINVAL;
	}
	idx = if_nametoindex(ifname);
	if (!idx) {
		td_err("unknown interface %s", ifname);
		return -ENODEV;
	}
	*ifindex = (int)idx;
	return 0;
}

/* name of a loaded program by id ("" when gone) */
static void td_prog_name(__u32 id, char *name, size_t len)
{
	struct bpf_prog_info info = {};
	__u32 ilen = sizeof(info);
	int fd;

	name[0] = '\0';
	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return;
	if (!bpf_obj_get_info_by_fd(fd, &info, &ilen))
		snprintf(name, len, "%s", info.name);
	close(fd);
}

static bool td_prog_is(__u32 id, const char *want)
{
	char name[BPF_OBJ_NAME_LEN];

	if (!id)
		return false;
	td_prog_name(id, name, sizeof(name));
	return strcmp(name, want) == 0;
}

static __u32 td_fd_prog_id(int fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return 0;
	return info.id;
}

static __u32 td_xdp_mode_flag(int mode)
{
	return mode == TD_XDP_GENERIC ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
}

static int td_tc_query(int ifindex, __u32 *prog_id)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, q, .handle = TD_TC_HANDLE, .priority = TD_TC_PRIORITY);
	int err;

	*prog_id = 0;
	err = bpf_tc_query(&hook, &q);
	if (err)
		return err;
	*prog_id = q.prog_id;
	return 0;
}

int td_dp_attach_state(int ifindex, struct td_attach_state *st)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	__u32 tc_id = 0;
	int err;

	memset(st, 0, sizeof(*st));
	st->xdp_mode = -1;
	err = bpf_xdp_query(ifindex, 0, &q);
	if (err)
		return err;
	if (td_prog_is(q.drv_prog_id, TD_PROG_NAME_XDP_LB)) {
		st->xdp_prog_id = q.drv_prog_id;
		st->xdp_mode = TD_XDP_NATIVE;
	} else if (td_prog_is(q.skb_prog_id, TD_PROG_NAME_XDP_LB)) {
		st->xdp_prog_id = q.skb_prog_id;
		st->xdp_mode = TD_XDP_GENERIC;
	}
	if (!td_tc_query(ifindex, &tc_id) && td_prog_is(tc_id, TD_PROG_NAME_TC_LB))
		st->tc_prog_id = tc_id;
	return 0;
}

int td_dp_attach(const char *bpffs, const char *ifname, enum td_xdp_mode mode)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	LIBBPF_OPTS(bpf_xdp_attach_opts, xo);
	LIBBPF_OPTS(bpf_tc_hook, hook, .attach_point = BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, to, .handle = TD_TC_HANDLE, .priority = TD_TC_PRIORITY,
		    .flags = BPF_TC_F_REPLACE);
	int xdp_fd = -1, tc_fd = -1, ifaces_fd = -1, old_fd = -1, other_fd = -1;
	__u32 same_id, other_id, tc_id = 0, flags = td_xdp_mode_flag(mode);
	bool hook_created = false, xdp_new = false;
	struct td_iface ent = {}, old = {};
	char name[BPF_OBJ_NAME_LEN];
	__u32 key;
	int ifindex, err;

	if (geteuid() != 0) {
		td_err("permission denied: attaching needs root");
		err = -EPERM;
		goto cleanup;
	}
	err = td_ifindex(ifname, &ifindex);
	if (err)
		goto cleanup;
	err = td_pin_open(bpffs, TD_PIN_PROG_XDP_LB, &xdp_fd);
	if (!err)
		err = td_pin_open(bpffs, TD_PIN_PROG_TC_LB, &tc_fd);
	if (!err)
		err = td_pin_open(bpffs, TD_MAP_IFACES, &ifaces_fd);
	if (err)
		goto cleanup;
	key = ifindex;

	/* 1. refuse foreign programs before changing anything */
	err = bpf_xdp_query(ifindex, 0, &q);
	if (err) {
		td_err("cannot query XDP on %s: %s", ifname, strerror(-err));
		goto cleanup;
	}
	same_id = mode == TD_XDP_GENERIC ? q.skb_prog_id : q.drv_prog_id;
	other_id = mode == TD_XDP_GENERIC ? q.drv_prog_id : q.skb_prog_id;
	if (q.hw_prog_id) {
		err = -EBUSY;
		td_err("%s has an offloaded XDP program (id %u): detach it first", ifname,
		       q.hw_prog_id);
		goto cleanup;
	}
	if ((same_id && !td_prog_is(same_id, TD_PROG_NAME_XDP_LB)) ||
	    (other_id && !td_prog_is(other_id, TD_PROG_NAME_XDP_LB))) {
		__u32 id = same_id ? same_id : other_id;

		if (same_id && td_prog_is(same_id, TD_PROG_NAME_XDP_LB))
			id = other_id;
		td_prog_name(id, name, sizeof(name));
		err = -EBUSY;
		td_err("%s already has a foreign XDP program (id %u, name %s): detach it first",
		       ifname, id, name[0] ? name : "?");
		goto cleanup;
	}
	if (!td_tc_query(ifindex, &tc_id) && tc_id && !td_prog_is(tc_id, TD_PROG_NAME_TC_LB)) {
		td_prog_name(tc_id, name, sizeof(name));
		err = -EBUSY;
		td_err("%s has a foreign tc egress filter at handle 0x%x priority 0x%x (prog %s)",
		       ifname, TD_TC_HANDLE, TD_TC_PRIORITY, name[0] ? name : "?");
		goto cleanup;
	}
	if (bpf_map_lookup_elem(ifaces_fd, &key, &old))
		memset(&old, 0, sizeof(old));

	/* 2. XDP: replace td's program atomically, or install where nothing is attached */
	if (other_id) {
		/* td attached in the other mode: the kernel allows only one mode at a time */
		other_fd = bpf_prog_get_fd_by_id(other_id);
		LIBBPF_OPTS(bpf_xdp_attach_opts, dop, .old_prog_fd = other_fd);
		err = bpf_xdp_detach(ifindex, td_xdp_mode_flag(mode == TD_XDP_GENERIC ?
						   TD_XDP_NATIVE : TD_XDP_GENERIC), &dop);
		if (err) {
			td_err("cannot switch XDP mode on %s: %s", ifname, strerror(-err));
			goto cleanup;
		}
	}
	if (same_id) {
		old_fd = bpf_prog_get_fd_by_id(same_id);
		if (old_fd < 0) {
			err = -errno;
			td_err("cannot open attached XDP program %u: %s", same_id, strerror(-err));
			goto cleanup;
		}
		xo.old_prog_fd = old_fd;
	} else {
		flags |= XDP_FLAGS_UPDATE_IF_NOEXIST;
		xdp_new = true;
	}
	err = bpf_xdp_attach(ifindex, xdp_fd, flags, &xo);
	if (err) {
		if (err == -EBUSY || err == -EEXIST)
			td_err("%s: another XDP program was attached meanwhile: not replacing it",
			       ifname);
		else
			td_err("cannot attach XDP (%s mode) to %s: %s", td_xdp_mode_name(mode),
			       ifname, strerror(-err));
		goto cleanup;
	}

	/* 3. TC egress: clsact (remember whether we created it) + td's filter */
	hook.ifindex = ifindex;
	err = bpf_tc_hook_create(&hook);
	if (!err)
		hook_created = true;
	else if (err != -EEXIST) {
		td_err("cannot create clsact qdisc on %s: %s", ifname, strerror(-err));
		goto rollback;
	}
	to.prog_fd = tc_fd;
	err = bpf_tc_attach(&hook, &to);
	if (err) {
		td_err("cannot attach tc egress filter to %s: %s", ifname, strerror(-err));
		goto rollback;
	}

	/* 4. bookkeeping */
	snprintf(ent.name, sizeof(ent.name), "%s", ifname);
	ent.flags = TD_IF_F_XDP | TD_IF_F_TC;
	if (hook_created || (old.flags & TD_IF_F_TC_HOOK))
		ent.flags |= TD_IF_F_TC_HOOK;
	ent.xdp_mode = mode;
	err = bpf_map_update_elem(ifaces_fd, &key, &ent, BPF_ANY);
	if (err) {
		err = -errno;
		td_err("cannot record %s in td_ifaces: %s", ifname, strerror(-err));
		goto rollback;
	}
	td_info("attached to %s (ifindex %d, xdp %s, tc egress)", ifname, ifindex,
		td_xdp_mode_name(mode));
	goto cleanup;

rollback:
	if (hook_created) {
		hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		bpf_tc_hook_destroy(&hook);
	}
	if (xdp_new) {
		LIBBPF_OPTS(bpf_xdp_attach_opts, rb, .old_prog_fd = xdp_fd);
		bpf_xdp_detach(ifindex, td_xdp_mode_flag(mode), &rb);
	}
cleanup:
	if (other_fd >= 0)
		close(other_fd);
	if (old_fd >= 0)
		close(old_fd);
	if (ifaces_fd >= 0)
		close(ifaces_fd);
	if (tc_fd >= 0)
		close(tc_fd);
	if (xdp_fd >= 0)
		close(xdp_fd);
	return err;
}

/* Remove td's attachments from ifindex (which may be gone) and its td_ifaces entry. */
static int td_detach_ifindex(int ifaces_fd, int ifindex, const char *ifname, bool quiet_missing)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, to, .handle = TD_TC_HANDLE, .priority = TD_TC_PRIORITY);
	struct td_attach_state st;
	struct td_iface ent;
	char cur[IF_NAMESIZE] = "";
	bool have_ent, did = false;
	__u32 key = ifindex;
	int err = 0, fd;

	have_ent = bpf_map_lookup_elem(ifaces_fd, &key, &ent) == 0;
	if (have_ent && (!if_indextoname(ifindex, cur) || strncmp(cur, ent.name, TD_IFNAME_LEN))) {
		/* the recorded interface is gone (its ifindex may now be someone else's) */
		bpf_map_delete_elem(ifaces_fd, &key);
		td_info("forgot %.*s (ifindex %d): interface no longer exists", TD_IFNAME_LEN,
			ent.name, ifindex);
		goto cleanup;
	}
	if (td_dp_attach_state(ifindex, &st)) {
		/* interface is gone: nothing left in the kernel but our bookkeeping */
		memset(&st, 0, sizeof(st));
	}
	if (st.xdp_prog_id) {
		fd = bpf_prog_get_fd_by_id(st.xdp_prog_id);
		LIBBPF_OPTS(bpf_xdp_attach_opts, xo, .old_prog_fd = fd);
		err = fd < 0 ? -errno : bpf_xdp_detach(ifindex, td_xdp_mode_flag(st.xdp_mode), &xo);
		if (fd >= 0)
			close(fd);
		if (err) {
			td_err("cannot detach XDP from %s: %s", ifname, strerror(-err));
			goto cleanup;
		}
		did = true;
	}
	if (st.tc_prog_id) {
		err = bpf_tc_detach(&hook, &to);
		if (err) {
			td_err("cannot detach tc filter from %s: %s", ifname, strerror(-err));
			goto cleanup;
		}
		did = true;
	}
	if (have_ent && (ent.flags & TD_IF_F_TC_HOOK)) {
		hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		err = bpf_tc_hook_destroy(&hook);
		if (err && err != -ENOENT && err != -EINVAL && err != -ENODEV)
			td_warn("cannot remove clsact qdisc from %s: %s", ifname, strerror(-err));
		err = 0;
	}
	if (have_ent) {
		bpf_map_delete_elem(ifaces_fd, &key);
		did = true;
	}
	if (!did && !quiet_missing) {
		err = -ENOENT;
		td_err("td is not attached to %s", ifname);
		goto cleanup;
	}
	if (did)
		td_info("detached from %s (ifindex %d)", ifname, ifindex);
cleanup:
	return err;
}

int td_dp_detach(const char *bpffs, const char *ifname)
{
	int ifaces_fd = -1, ifindex, err;

	if (geteuid() != 0) {
		td_err("permission denied: detaching needs root");
		err = -EPERM;
		goto cleanup;
	}
	err = td_ifindex(ifname, &ifindex);
	if (err)
		goto cleanup;
	err = td_pin_open(bpffs, TD_MAP_IFACES, &ifaces_fd);
	if (err)
		goto cleanup;
	err = td_detach_ifindex(ifaces_fd, ifindex, ifname, false);
cleanup:
	if (ifaces_fd >= 0)
		close(ifaces_fd);
	return err;
}

static int td_detach_all_fd(int ifaces_fd)
{
	__u32 keys[TD_MAX_IFACES], key, next;
	struct td_iface ent;
	int n = 0, i, err = 0, ret;
	void *prev = NULL;

	while (n < TD_MAX_IFACES && bpf_map_get_next_key(ifaces_fd, prev, &next) == 0) {
		keys[n++] = next;
		key = next;
		prev = &key;
	}
	for (i = 0; i < n; i++) {
		char name[TD_IFNAME_LEN + 1] = "?";

		if (!bpf_map_lookup_elem(ifaces_fd, &keys[i], &ent))
			snprintf(name, sizeof(name), "%.*s", TD_IFNAME_LEN, ent.name);
		ret = td_detach_ifindex(ifaces_fd, (int)keys[i], name, true);
		if (ret && !err)
			err = ret;
	}
	return err ? err : n;
}

int td_dp_detach_all(const char *bpffs)
{
	int ifaces_fd = -1, err;

	if (geteuid() != 0) {
		td_err("permission denied: detaching needs root");
		err = -EPERM;
		goto cleanup;
	}
	err = td_pin_open(bpffs, TD_MAP_IFACES, &ifaces_fd);
	if (err)
		goto cleanup;
	err = td_detach_all_fd(ifaces_fd);
cleanup:
	if (ifaces_fd >= 0)
		close(ifaces_fd);
	return err;
}

int td_dp_cleanup(const char *bpffs)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *dir = NULL;
	int fd, err = 0;

	if (geteuid() != 0) {
		td_err("permission denied: cleanup needs root");
		err = -EPERM;
		goto cleanup;
	}
	snprintf(path, sizeof(path), "%s/%s", bpffs, TD_MAP_IFACES);
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		err = td_detach_all_fd(fd);
		close(fd);
		if (err < 0)
			goto cleanup;
		err = 0;
	}
	dir = opendir(bpffs);
	if (!dir) {
		if (errno != ENOENT) {
			err = -errno;
			td_err("cannot open %s: %s", bpffs, strerror(-err));
		}
		goto cleanup;
	}
	while ((de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", bpffs, de->d_name);
		if (unlink(path)) {
			err = -errno;
			td_err("cannot unpin %s: %s", path, strerror(-err));
			goto cleanup;
		}
	}
	if (rmdir(bpffs)) {
		err = -errno;
		td_err("cannot remove %s: %s", bpffs, strerror(-err));
		goto cleanup;
	}
	td_info("removed td datapath pinned at %s", bpffs);
cleanup:
	if (dir)
		closedir(dir);
	return err;
}

int td_dp_prog_ids(const char *bpffs, __u32 *xdp_id, __u32 *tc_id)
{
	const char *names[] = { TD_PIN_PROG_XDP_LB, TD_PIN_PROG_TC_LB };
	__u32 *ids[] = { xdp_id, tc_id };
	char path[PATH_MAX];
	int i, fd;

	for (i = 0; i < 2; i++) {
		*ids[i] = 0;
		snprintf(path, sizeof(path), "%s/%s", bpffs, names[i]);
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		*ids[i] = td_fd_prog_id(fd);
		close(fd);
	}
	return 0;
}
