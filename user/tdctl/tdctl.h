/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* tdctl internals: the command table entry type, global options and small output helpers. */
#ifndef TD_TDCTL_H
#define TD_TDCTL_H

#include <stdbool.h>
#include <stdio.h>
#include <json-c/json.h>

#define TDCTL_EXIT_FAIL  1
#define TDCTL_EXIT_USAGE 2

/* global options, parsed before the command runs */
struct tdctl {
	const char *bpffs;   /* --bpffs DIR > $TD_BPFFS > TD_BPFFS_DEFAULT */
	bool json;           /* --json: one JSON object on stdout */
	const char *socket;  /* --socket PATH > $TD_ADMIN_SOCKET > TD_ADMIN_SOCKET_DEFAULT */
};

struct tdctl_cmd {
	const char *name;
	/* argv[0] is the command name; returns the exit status (0, 1 or 2) */
	int (*run)(const struct tdctl *ctl, const struct tdctl_cmd *cmd, int argc, char **argv);
	const char *usage;   /* arguments after the command name */
	const char *help;    /* one sentence */
};

/* one usage line on stderr ("tdctl: CMD: <why> (usage: tdctl CMD USAGE)"), returns 2 */
int tdctl_usage_error(const struct tdctl_cmd *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* true when argv has --help/-h; prints the command's help on stdout */
bool tdctl_want_help(const struct tdctl_cmd *cmd, int argc, char **argv);
/* JSON string with escapes */
void tdctl_json_str(FILE *f, const char *s);

/*
 * Ask the agent (cmd_admin.c): send request line, parse the response object into *resp.
 * 0; -ENOENT/-ECONNREFUSED when no agent answers (nothing printed); other -errno after one
 * line on stderr.
 */
int tdctl_agent_call(const struct tdctl *ctl, const char *line, struct json_object **resp);
/* {"cmd":"status"} answer, or NULL when no agent answers (read-only commands fall back) */
struct json_object *tdctl_agent_status(const struct tdctl *ctl);

/* handlers (cmd_dp.c: attach/detach; cmd_show.c: status/services/stats/conntrack;
 * cmd_admin.c: reload/backend) */
int tdctl_cmd_reload(const struct tdctl *ctl, const struct tdctl_cmd *cmd, int argc, char **argv);
int tdctl_cmd_backend(const struct tdctl *ctl, const struct tdctl_cmd *cmd, int argc, char **argv);
int tdctl_cmd_attach(const struct tdctl *ctl, const struct tdctl_cmd *cmd, int argc, char **argv);
int tdctl_cmd_detach(const struct tdctl *ctl, const struct tdctl_cmd *cmd, int argc, char **argv);
int tdctl_cmd_status(const struct tdctl *ctl, const struct tdctl_cmd *cmd, int argc, char **argv);
int tdctl_cmd_services(const struct tdctl *ctl, const struct tdctl_cmd *cmd, int argc,
		       char **argv);
int tdctl_cmd_stats(const struct tdctl *ctl, const struct tdctl_cmd *cmd, int argc, char **argv);
int tdctl_cmd_conntrack(const struct tdctl *ctl, const struct tdctl_cmd *cmd, int argc,
			char **argv);
/* cmd_mesh.c: tdctl mesh; the mesh part of tdctl status; the mesh part of detach --all */
int tdctl_cmd_mesh(const struct tdctl *ctl, const struct tdctl_cmd *cmd, int argc, char **argv);
/* status: a "mesh ..." line, or with --json a ,"mesh":{...} member */
void tdctl_mesh_status(const struct tdctl *ctl);
/* detach td's mesh programs of ctl->bpffs from every cgroup: count or -errno (logged) */
int tdctl_mesh_detach_all(const struct tdctl *ctl);

#endif
