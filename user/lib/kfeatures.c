/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Kernel feature probe: refuse to load the datapath, naming the first missing BPF feature. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <bpf/libbpf.h>

#include "kfeatures.h"

struct td_prog_feature {
	enum bpf_prog_type type;
	const char *name;
};

struct td_map_feature {
	enum bpf_map_type type;
	const char *name;
};

struct td_helper_feature {
	enum bpf_prog_type prog;
	enum bpf_func_id helper;
	const char *name;
};

static const struct td_prog_feature td_progs[] = {
	{ BPF_PROG_TYPE_XDP, "program type XDP" },
	{ BPF_PROG_TYPE_SCHED_CLS, "program type SCHED_CLS (tc)" },
};

static const struct td_map_feature td_maps_needed[] = {
	{ BPF_MAP_TYPE_HASH, "map type HASH" },
	{ BPF_MAP_TYPE_ARRAY, "map type ARRAY" },
	{ BPF_MAP_TYPE_LRU_HASH, "map type LRU_HASH" },
	{ BPF_MAP_TYPE_ARRAY_OF_MAPS, "map type ARRAY_OF_MAPS" },
	{ BPF_MAP_TYPE_PERCPU_ARRAY, "map type PERCPU_ARRAY" },
};

static const struct td_helper_feature td_helpers[] = {
	{ BPF_PROG_TYPE_XDP, BPF_FUNC_redirect, "helper bpf_redirect for XDP" },
	{ BPF_PROG_TYPE_XDP, BPF_FUNC_fib_lookup, "helper bpf_fib_lookup for XDP" },
	{ BPF_PROG_TYPE_XDP, BPF_FUNC_ktime_get_ns, "helper bpf_ktime_get_ns for XDP" },
	{ BPF_PROG_TYPE_SCHED_CLS, BPF_FUNC_l3_csum_replace, "helper bpf_l3_csum_replace for tc" },
	{ BPF_PROG_TYPE_SCHED_CLS, BPF_FUNC_l4_csum_replace, "helper bpf_l4_csum_replace for tc" },
	{ BPF_PROG_TYPE_SCHED_CLS, BPF_FUNC_skb_store_bytes, "helper bpf_skb_store_bytes for tc" },
};

/* libbpf probes return 1 (supported), 0 (not supported) or -errno (could not probe). */
static int td_probe_result(int ret, const char *what, char *msg, size_t len)
{
	if (ret == 1)
		return 0;
	if (ret == 0) {
		snprintf(msg, len, "kernel lacks %s (needed by the td datapath)", what);
		return -EOPNOTSUPP;
	}
	snprintf(msg, len, "cannot probe %s: %s", what, strerror(-ret));
	return ret;
}

int td_features_probe(char *msg, size_t len)
{
	size_t i;
	int err = 0;

	for (i = 0; i < sizeof(td_progs) / sizeof(td_progs[0]); i++) {
		err = td_probe_result(libbpf_probe_bpf_prog_type(td_progs[i].type, NULL),
				      td_progs[i].name, msg, len);
		if (err)
			goto cleanup;
	}
	for (i = 0; i < sizeof(td_maps_needed) / sizeof(td_maps_needed[0]); i++) {
		err = td_probe_result(libbpf_probe_bpf_map_type(td_maps_needed[i].type, NULL),
				      td_maps_needed[i].name, msg, len);
		if (err)
			goto cleanup;
	}
	for (i = 0; i < sizeof(td_helpers) / sizeof(td_helpers[0]); i++) {
		err = td_probe_result(libbpf_probe_bpf_helper(td_helpers[i].prog,
							      td_helpers[i].helper, NULL),
				      td_helpers[i].name, msg, len);
		if (err)
			goto cleanup;
	}
cleanup:
	return err;
}
