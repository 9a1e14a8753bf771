/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* tdctl: table-driven CLI over the pinned td datapath (works without the agent). */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>

#include "td/abi.h"
#include "admin.h"
#include "log.h"
#include "tdctl.h"

static int tdctl_cmd_help(const struct tdctl *ctl, const struct tdctl_cmd *cmd, int argc,
			  char **argv);

static const struct tdctl_cmd tdctl_cmds[] = {
	{ "attach", tdctl_cmd_attach, "IFACE [--mode native|generic]",
	  "Attach the pinned XDP program (default native mode) and the TC egress filter to IFACE." },
	{ "detach", tdctl_cmd_detach, "IFACE | --all",
	  "Remove exactly what td attached to IFACE (--all: every interface td recorded and the mesh's cgroup programs)." },
	{ "status", tdctl_cmd_status, "",
	  "Show the pin directory, program ids, attached interfaces, map occupancy and the mesh." },
	{ "services", tdctl_cmd_services, "",
	  "List services with their backends (weight, active, next hop resolved)." },
	{ "stats", tdctl_cmd_stats, "",
	  "Show per-service and per-backend traffic, datapath counters and drop reasons." },
	{ "conntrack", tdctl_cmd_conntrack, "[--flush]",
	  "List balanced flows; --flush deletes every conntrack and reverse-NAT entry." },
	{ "mesh", tdctl_cmd_mesh, "[--watch SECONDS [--count N]]",
	  "Per (source, destination) mesh service: connections, datagrams, denials, no-backend refusals, bytes each way, smoothed RTT (pinned maps; --watch refreshes)." },
	{ "reload", tdctl_cmd_reload, "",
	  "Ask tdagent to re-read its config file and apply the difference; prints the errors of an invalid file." },
	{ "backend", tdctl_cmd_backend, "drain|undrain|remove SERVICE ADDR:PORT | add SERVICE ADDR:PORT [--weight N]",
	  "Change a backend of the running agent without a file edit (a later reload restores the file)." },
	{ "help", tdctl_cmd_help, "[COMMAND]", "Show this help, or one command's help." },
};
#define TDCTL_N_CMDS (sizeof(tdctl_cmds) / sizeof(tdctl_cmds[0]))

int tdctl_usage_error(const struct tdctl_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "tdctl: %s: ", cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (usage: tdctl %s%s%s)\n", cmd->name, cmd->usage[0] ? " " : "",
		cmd->usage);
	return TDCTL_EXIT_USAGE;
}

bool tdctl_want_help(const struct tdctl_cmd *cmd, int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: tdctl [--bpffs DIR] [--socket PATH] [--json] %s%s%s\n  %s\n", cmd->name,
			       cmd->usage[0] ? " " : "", cmd->usage, cmd->help);
			return true;
		}
	}
	return false;
}

void tdctl_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void tdctl_print_help(FILE *f)
{
	size_t i;

	fprintf(f, "usage: tdctl [--bpffs DIR] [--socket PATH] [--json] COMMAND [ARGS]\n"
		   "  --bpffs DIR    pin directory (default $%s or %s)\n"
		   "  --socket PATH  tdagent's admin socket (default $%s or %s)\n"
		   "  --json         one JSON object on stdout\n"
		   "commands:\n", TD_BPFFS_ENV, TD_BPFFS_DEFAULT, TD_ADMIN_SOCKET_ENV,
		   TD_ADMIN_SOCKET_DEFAULT);
	for (i = 0; i < TDCTL_N_CMDS; i++)
		fprintf(f, "  %-10s %s\n  %-10s   %s\n", tdctl_cmds[i].name, tdctl_cmds[i].usage,
			"", tdctl_cmds[i].help);
}

static const struct tdctl_cmd *tdctl_find(const char *name)
{
	size_t i;

	for (i = 0; i < TDCTL_N_CMDS; i++)
		if (!strcmp(tdctl_cmds[i].name, name))
			return &tdctl_cmds[i];
	return NULL;
}

static int tdctl_cmd_help(const struct tdctl *ctl, const struct tdctl_cmd *cmd, int argc,
			  char **argv)
{
	const struct tdctl_cmd *c;

	if (tdctl_want_help(cmd, argc, argv))
		return 0;
	if (argc > 2)
		return tdctl_usage_error(cmd, "too many arguments");
	if (argc == 2) {
		c = tdctl_find(argv[1]);
		if (!c)
			return tdctl_usage_error(cmd, "unknown command '%s'", argv[1]);
		printf("usage: tdctl [--bpffs DIR] [--socket PATH] [--json] %s%s%s\n  %s\n", c->name,
		       c->usage[0] ? " " : "", c->usage, c->help);
		return 0;
	}
	tdctl_print_help(stdout);
	return 0;
}

static int tdctl_silent(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return 0;
}

int main(int argc, char **argv)
{
	struct tdctl ctl = { .bpffs = NULL, .json = false, .socket = NULL };
	const struct tdctl_cmd *cmd;
	char **args;
	int i, n = 0, rc;

	td_log_init("tdctl", TD_LOG_WARN);
	libbpf_set_print(tdctl_silent);
	args = calloc(argc + 1, sizeof(*args));
	if (!args) {
		fprintf(stderr, "tdctl: out of memory\n");
		return TDCTL_EXIT_FAIL;
	}
	/* global options may appear anywhere; everything else goes to the command */
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			ctl.json = true;
		} else if (!strcmp(argv[i], "--bpffs")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "tdctl: --bpffs needs a directory\n");
				rc = TDCTL_EXIT_USAGE;
				goto cleanup;
			}
			ctl.bpffs = argv[++i];
		} else if (!strncmp(argv[i], "--bpffs=", 8)) {
			ctl.bpffs = argv[i] + 8;
		} else if (!strcmp(argv[i], "--socket")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "tdctl: --socket needs a path\n");
				rc = TDCTL_EXIT_USAGE;
				goto cleanup;
			}
			ctl.socket = argv[++i];
		} else if (!strncmp(argv[i], "--socket=", 9)) {
			ctl.socket = argv[i] + 9;
		} else {
			args[n++] = argv[i];
		}
	}
	if (!ctl.bpffs)
		ctl.bpffs = getenv(TD_BPFFS_ENV);
	if (!ctl.bpffs || !ctl.bpffs[0])
		ctl.bpffs = TD_BPFFS_DEFAULT;
	if (!ctl.socket)
		ctl.socket = getenv(TD_ADMIN_SOCKET_ENV);
	if (!ctl.socket || !ctl.socket[0])
		ctl.socket = TD_ADMIN_SOCKET_DEFAULT;
	if (n == 0) {
		fprintf(stderr, "tdctl: missing command (try: tdctl help)\n");
		rc = TDCTL_EXIT_USAGE;
		goto cleanup;
	}
	if (!strcmp(args[0], "--help") || !strcmp(args[0], "-h")) {
		tdctl_print_help(stdout);
		rc = 0;
		goto cleanup;
	}
	cmd = tdctl_find(args[0]);
	if (!cmd) {
		fprintf(stderr, "tdctl: unknown command '%s' (try: tdctl help)\n", args[0]);
		rc = TDCTL_EXIT_USAGE;
		goto cleanup;
	}
	if (ctl.bpffs[0] != '/') {
		fprintf(stderr, "tdctl: --bpffs must be an absolute path, got '%s'\n", ctl.bpffs);
		rc = TDCTL_EXIT_USAGE;
		goto cleanup;
	}
	if (ctl.socket[0] != '/') {
		fprintf(stderr, "tdctl: --socket must be an absolute path, got '%s'\n", ctl.socket);
		rc = TDCTL_EXIT_USAGE;
		goto cleanup;
	}
	rc = cmd->run(&ctl, cmd, n, args);
cleanup:
	free(args);
	return rc;
}
