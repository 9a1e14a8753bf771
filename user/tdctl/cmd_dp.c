/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* tdctl attach / detach: put td's programs on an interface or take them off again. */
#include <string.h>

#include "dp.h"
#include "names.h"
#include "tdctl.h"

int tdctl_cmd_attach(const struct tdctl *ctl, const struct tdctl_cmd *cmd, int argc, char **argv)
{
	const char *ifname = NULL;
	int mode = TD_XDP_NATIVE, i;

	if (tdctl_want_help(cmd, argc, argv))
		return 0;
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--mode") || !strncmp(argv[i], "--mode=", 7)) {
			const char *v = argv[i][6] == '=' ? argv[i] + 7 : NULL;

			if (!v && i + 1 >= argc)
				return tdctl_usage_error(cmd, "--mode needs native or generic");
			if (!v)
				v = argv[++i];
			mode = td_xdp_mode_parse(v);
			if (mode < 0)
				return tdctl_usage_error(cmd, "invalid --mode '%s' (native or generic)",
							 v);
		} else if (argv[i][0] == '-') {
			return tdctl_usage_error(cmd, "unknown option '%s'", argv[i]);
		} else if (!ifname) {
			ifname = argv[i];
		} else {
			return tdctl_usage_error(cmd, "unexpected argument '%s'", argv[i]);
		}
	}
	if (!ifname)
		return tdctl_usage_error(cmd, "missing IFACE");
	if (td_dp_attach(ctl->bpffs, ifname, mode))
		return TDCTL_EXIT_FAIL;
	if (ctl->json) {
		printf("{\"attached\":");
		tdctl_json_str(stdout, ifname);
		printf(",\"xdp_mode\":\"%s\",\"tc\":true}\n", td_xdp_mode_name(mode));
	} else {
		printf("attached %s (xdp %s, tc egress)\n", ifname, td_xdp_mode_name(mode));
	}
	return 0;
}

int tdctl_cmd_detach(const struct tdctl *ctl, const struct tdctl_cmd *cmd, int argc, char **argv)
{
	const char *ifname = NULL;
	bool all = false;
	int i, n;

	if (tdctl_want_help(cmd, argc, argv))
		return 0;
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--all"))
			all = true;
		else if (argv[i][0] == '-')
			return tdctl_usage_error(cmd, "unknown option '%s'", argv[i]);
		else if (!ifname)
			ifname = argv[i];
		else
			return tdctl_usage_error(cmd, "unexpected argument '%s'", argv[i]);
	}
	if (all && ifname)
		return tdctl_usage_error(cmd, "give IFACE or --all, not both");
	if (!all && !ifname)
		return tdctl_usage_error(cmd, "missing IFACE or --all");
	if (all) {
		int nm;

		n = td_dp_detach_all(ctl->bpffs);
		nm = tdctl_mesh_detach_all(ctl);
		if (n < 0 || nm < 0)
			return TDCTL_EXIT_FAIL;
		if (ctl->json)
			printf("{\"detached\":%d,\"mesh_programs_detached\":%d}\n", n, nm);
		else if (!nm)
			printf("detached %d interface(s)\n", n);
		else
			printf("detached %d interface(s)\ndetached %d mesh cgroup program(s)\n", n,
			       nm);
		return 0;
	}
	if (td_dp_detach(ctl->bpffs, ifname))
		return TDCTL_EXIT_FAIL;
	if (ctl->json) {
		printf("{\"detached\":");
		tdctl_json_str(stdout, ifname);
		printf("}\n");
	} else {
		printf("detached %s\n", ifname);
	}
	return 0;
}
