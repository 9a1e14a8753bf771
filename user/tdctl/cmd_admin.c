/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* tdctl reload / backend: requests to the running tdagent over its admin socket. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "admin.h"
#include "tdctl.h"

#define TDCTL_ADMIN_TIMEOUT_MS 30000   /* a reload of a large config takes a while */
#define TDCTL_STATUS_TIMEOUT_MS 3000

static int tdctl_call_timeout(const struct tdctl *ctl, const char *line, int timeout_ms,
			      struct json_object **resp, bool quiet_down)
{
	struct json_object *o = NULL, *ok;
	char *text = NULL;
	int err;

	*resp = NULL;
	err = td_admin_call(ctl->socket, line, timeout_ms, &text);
	if (err) {
		if ((err == -ENOENT || err == -ECONNREFUSED) && quiet_down)
			goto cleanup;
		if (err == -ENOENT || err == -ECONNREFUSED)
			fprintf(stderr, "tdctl: error: no tdagent answers on %s (is it running? "
				"--socket PATH or $%s)\n", ctl->socket, TD_ADMIN_SOCKET_ENV);
		else if (err == -EACCES || err == -EPERM)
			fprintf(stderr, "tdctl: error: permission denied on %s: run as root\n",
				ctl->socket);
		else
			fprintf(stderr, "tdctl: error: admin socket %s: %s\n", ctl->socket,
				err == -EPROTO ? "the agent closed the connection" : strerror(-err));
		goto cleanup;
	}
	o = json_tokener_parse(text);
	if (!o || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "ok", &ok)) {
		fprintf(stderr, "tdctl: error: unexpected answer from tdagent: %.120s\n", text);
		json_object_put(o);
		o = NULL;
		err = -EPROTO;
		goto cleanup;
	}
	*resp = o;
cleanup:
	free(text);
	return err;
}

int tdctl_agent_call(const struct tdctl *ctl, const char *line, struct json_object **resp)
{
	return tdctl_call_timeout(ctl, line, TDCTL_ADMIN_TIMEOUT_MS, resp, false);
}

struct json_object *tdctl_agent_status(const struct tdctl *ctl)
{
	struct json_object *o = NULL, *ok;

	if (tdctl_call_timeout(ctl, "{\"cmd\":\"status\"}", TDCTL_STATUS_TIMEOUT_MS, &o, true))
		return NULL;
	if (!o || !json_object_object_get_ex(o, "ok", &ok) || !json_object_get_boolean(ok)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static bool tdctl_ok(struct json_object *o)
{
	struct json_object *ok;

	return json_object_object_get_ex(o, "ok", &ok) && json_object_get_boolean(ok);
}

static const char *tdctl_get_str(struct json_object *o, const char *key, const char *def)
{
	struct json_object *v;

	if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return def;
}

static long long tdctl_get_int(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (json_object_object_get_ex(o, key, &v))
		return (long long)json_object_get_int64(v);
	return 0;
}

/* ok:false answer: "tdctl: error: ..." and every FILE:LINE line on stderr */
static int tdctl_print_refusal(const struct tdctl *ctl, const char *what, struct json_object *o)
{
	struct json_object *errs;
	size_t i;

	if (ctl->json)
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
	fprintf(stderr, "tdctl: error: %s: %s\n", what, tdctl_get_str(o, "error", "refused"));
	if (json_object_object_get_ex(o, "errors", &errs) &&
	    json_object_is_type(errs, json_type_array))
		for (i = 0; i < json_object_array_length(errs); i++)
			fprintf(stderr, "%s\n",
				json_object_get_string(json_object_array_get_idx(errs, i)));
	return TDCTL_EXIT_FAIL;
}

int tdctl_cmd_reload(const struct tdctl *ctl, const struct tdctl_cmd *cmd, int argc, char **argv)
{
	struct json_object *o = NULL;
	int rc;

	if (tdctl_want_help(cmd, argc, argv))
		return 0;
	if (argc > 1)
		return tdctl_usage_error(cmd, "%s '%s'",
					 argv[1][0] == '-' ? "unknown option" : "unexpected argument",
					 argv[1]);
	if (tdctl_agent_call(ctl, "{\"cmd\":\"reload\"}", &o))
		return TDCTL_EXIT_FAIL;
	if (!tdctl_ok(o)) {
		rc = tdctl_print_refusal(ctl, "reload rejected", o);
		goto cleanup;
	}
	if (ctl->json) {
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	} else {
		printf("reloaded: generation %lld, %lld services (%lld unchanged, %lld rebuilt, "
		       "%lld added, %lld removed; %lld conntrack entries flushed)\n",
		       tdctl_get_int(o, "generation"), tdctl_get_int(o, "services"),
		       tdctl_get_int(o, "unchanged"), tdctl_get_int(o, "rebuilt"),
		       tdctl_get_int(o, "added"), tdctl_get_int(o, "removed"),
		       tdctl_get_int(o, "conntrack_flushed"));
		if (json_object_object_get_ex(o, "gateway_generation", NULL))
			printf("gateway: generation %lld\n", tdctl_get_int(o, "gateway_generation"));
		if (tdctl_get_int(o, "overrides_discarded"))
			printf("%lld runtime override(s) discarded: the file's view is restored\n",
			       tdctl_get_int(o, "overrides_discarded"));
	}
	rc = 0;
cleanup:
	json_object_put(o);
	return rc;
}

int tdctl_cmd_backend(const struct tdctl *ctl, const struct tdctl_cmd *cmd, int argc, char **argv)
{
	static const struct {
		const char *name;
		enum td_admin_cmd cmd;
		const char *done;
	} ops[] = {
		{ "drain", TD_ADM_DRAIN, "drained" },
		{ "undrain", TD_ADM_UNDRAIN, "undrained" },
		{ "add", TD_ADM_BACKEND_ADD, "added" },
		{ "remove", TD_ADM_BACKEND_REMOVE, "removed" },
	};
	struct td_admin_req req = {};
	struct json_object *o = NULL;
	const char *pos[3] = { NULL, NULL, NULL };
	char *line = NULL, *end;
	bool have_weight = false;
	size_t i, op = 0, npos = 0;
	unsigned long w;
	int rc;

	if (tdctl_want_help(cmd, argc, argv))
		return 0;
	req.weight = 1;
	for (i = 1; i < (size_t)argc; i++) {
		if (!strcmp(argv[i], "--weight") || !strncmp(argv[i], "--weight=", 9)) {
			const char *v = argv[i][8] == '=' ? argv[i] + 9 : NULL;

			if (!v && i + 1 >= (size_t)argc)
				return tdctl_usage_error(cmd, "--weight needs a number 0..65535");
			if (!v)
				v = argv[++i];
			errno = 0;
			w = strtoul(v, &end, 10);
			if (errno || !*v || *end || v[0] == '-' || w > 65535)
				return tdctl_usage_error(cmd, "invalid --weight '%s' (0..65535)", v);
			req.weight = (__u16)w;
			have_weight = true;
		} else if (argv[i][0] == '-') {
			return tdctl_usage_error(cmd, "unknown option '%s'", argv[i]);
		} else if (npos < 3) {
			pos[npos++] = argv[i];
		} else {
			return tdctl_usage_error(cmd, "unexpected argument '%s'", argv[i]);
		}
	}
	if (!pos[0])
		return tdctl_usage_error(cmd, "missing drain, undrain, add or remove");
	for (op = 0; op < sizeof(ops) / sizeof(ops[0]); op++)
		if (!strcmp(pos[0], ops[op].name))
			break;
	if (op == sizeof(ops) / sizeof(ops[0]))
		return tdctl_usage_error(cmd, "unknown action '%s' (drain, undrain, add, remove)",
					 pos[0]);
	if (!pos[1])
		return tdctl_usage_error(cmd, "missing SERVICE");
	if (!pos[2])
		return tdctl_usage_error(cmd, "missing ADDR:PORT");
	if (strlen(pos[1]) >= TD_NAME_LEN)
		return tdctl_usage_error(cmd, "service name longer than %d characters",
					 TD_NAME_LEN - 1);
	if (td_endpoint_parse(pos[2], &req.addr, &req.family, &req.port))
		return tdctl_usage_error(cmd, "invalid backend '%s' (ADDR:PORT or [ADDR6]:PORT)",
					 pos[2]);
	if (have_weight && ops[op].cmd != TD_ADM_BACKEND_ADD)
		return tdctl_usage_error(cmd, "--weight only goes with add");
	req.cmd = ops[op].cmd;
	snprintf(req.service, sizeof(req.service), "%s", pos[1]);
	line = td_admin_req_format(&req);
	if (!line) {
		fprintf(stderr, "tdctl: error: out of memory\n");
		return TDCTL_EXIT_FAIL;
	}
	if (tdctl_agent_call(ctl, line, &o)) {
		rc = TDCTL_EXIT_FAIL;
		goto cleanup;
	}
	if (!tdctl_ok(o)) {
		rc = tdctl_print_refusal(ctl, ops[op].name, o);
		goto cleanup;
	}
	if (ctl->json) {
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
	} else if (json_object_object_get_ex(o, "changed", NULL) && !tdctl_get_int(o, "changed")) {
		printf("unchanged: %s\n", tdctl_get_str(o, "message", ""));
	} else {
		printf("%s %s %s (generation %lld; runtime override in effect: a reload restores "
		       "the file's view)\n", ops[op].done, req.service, pos[2],
		       tdctl_get_int(o, "generation"));
	}
	rc = 0;
cleanup:
	json_object_put(o);
	free(line);
	return rc;
}
