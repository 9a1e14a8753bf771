/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* tdagent internals: the agent's state, its libev watchers, and the operations the admin API calls. */
#ifndef TD_AGENT_H
#define TD_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <ev.h>

#include "config.h"
#include "dp.h"
#include "health.h"
#include "mesh.h"
#include "nl.h"
#include "state.h"

#ifndef TD_VERSION
#define TD_VERSION "0.3.0"
#endif

#define TD_AGENT_REFRESH_S        1.0                /* next-hop refresh period      */

/* Outcome of the last reload, for status and metrics. */
struct td_reload_result {
	bool done;               /* a reload was attempted since start                     */
	bool ok;
	time_t time;             /* wall clock of the attempt                              */
	__u32 generation;        /* generation after it (unchanged when it failed)         */
	struct td_errors errors; /* FILE:LINE: message lines of a rejected config          */
};

/*
 * Mesh services have no health: key in the config: every backend of a mesh service gets a TCP
 * check of its own address and port with these fixed settings (docs/operations.md). Their keys
 * are "mesh:SERVICE/ADDR:PORT", apart from the L4 services' keys.
 */
#define TD_AGENT_MESH_HC_INTERVAL_MS 1000
#define TD_AGENT_MESH_HC_TIMEOUT_MS  500
#define TD_AGENT_MESH_HC_RISE        2
#define TD_AGENT_MESH_HC_FALL        2
#define TD_AGENT_MESH_HC_PREFIX      "mesh:"
#define TD_AGENT_GW_DRAIN_MS         5000   /* gateway requests in flight at stop / removal */
#define TD_AGENT_HC_KEYLEN           (TD_HC_KEYSTRLEN + 8)   /* room for the mesh: prefix */
#define TD_AGENT_MESH_LOG_PER_S      10     /* denial log lines per second, then suppressed */

/* The mesh as the agent drives it (user/lib/mesh.h does the work). */
struct td_agent_mesh {
	bool open;                   /* mesh programs pinned and maps open                      */
	bool attached;               /* programs attached to root by this agent                 */
	bool dirty;                  /* a mesh backend changed health: re-set its table         */
	char root[PATH_MAX];         /* resolved mesh.cgroup_root the programs are attached to  */
	struct td_mesh_maps maps;
	struct td_mesh_events *events;   /* denial reader, NULL when off                        */
	ev_io events_io;
	ev_timer log_timer;          /* reports the lines suppressed in a window                */
	double win_start;            /* rate limit window (ev_now)                              */
	unsigned int win_lines;
	__u64 suppressed;            /* lines not logged in the current window                  */
	__u64 events_seen;           /* denial events read since start                          */
};

struct td_admin_srv;
struct json_object;
struct td_metrics_http;

struct td_agent {
	/* fixed at start */
	const char *config_path;
	char bpffs[PATH_MAX];        /* copies: a reload replaces cfg, these stay until restart */
	char admin_path[PATH_MAX];
	time_t started;
	/* running state */
	struct td_config cfg;        /* the file's view (last valid config)                   */
	struct td_overrides ovr;     /* runtime overrides on top of it (admin API)            */
	struct td_config eff;        /* what was applied: cfg + ovr + health (rings)           */
	struct td_state st;          /* ids of eff, generation                                  */
	struct td_maps m;
	struct td_nl *nl;
	struct td_health *health;
	bool health_dirty;           /* a backend changed health: re-apply after processing    */
	size_t n_failopen;           /* services where every backend is down (health ignored) */
	struct td_reload_result last_reload;
	/* loop */
	struct ev_loop *loop;
	ev_signal sig_term, sig_int, sig_hup;
	ev_timer refresh;
	ev_io health_io;
	ev_timer health_timer;
	struct td_admin_srv *admin;
	struct td_metrics_http *metrics;   /* NULL when node.metrics_listen is off            */
	char metrics_addr[64];       /* address it is bound to ("" = off)                       */
	ev_io metrics_io;
	ev_timer metrics_timer;
	struct td_agent_mesh mesh;
	struct td_gw *gw;            /* NULL when there is no gateway: section              */
	struct td_fp *fp;            /* NULL when there is no forward_proxy: section        */
	bool fp_redirect;            /* transparent-mode programs attached by this agent    */
	bool fp_has_map;             /* a->fp was given fp_origdst_fd                        */
	int fp_origdst_fd;           /* pinned td_fp_origdst, opened once; -1 until needed   */
	ev_signal sig_usr1;          /* reopen the gateway access log                         */
	int stop_sig;
};

/* ---- ops.c: what signals and admin requests do ------------------------------------------- */

/*
 * Apply file + ovr (+ health) to the maps as a diff. On success a->eff, a->st are replaced and
 * next hops of new backends are resolved; on failure nothing in a changes. 0 or -errno.
 */
int td_agent_apply(struct td_agent *a, const struct td_config *file,
		   const struct td_overrides *ovr);
/*
 * Re-read the config file. Invalid: nothing changes, errors are logged and kept in
 * a->last_reload. Valid: interfaces attached/detached, state applied as a diff, overrides
 * discarded (logged). 0, -EINVAL (invalid file, or unknown interface) or -errno.
 */
int td_agent_reload(struct td_agent *a, const char *why);
/* One admin request line -> one response line (malloc'd, no newline; NULL on out of memory). */
char *td_agent_handle(void *arg, const char *line, size_t len);
/* Give the health checker the backends of the runtime view. */
void td_agent_health_sync(struct td_agent *a);
/* (Re)arm the health timer from td_health_next_deadline_ms(). */
void td_agent_health_arm(struct td_agent *a);

/* ---- mesh.c: the mesh: section (cgroup programs, identity policy, denial events) -------- */

void td_agent_mesh_init(struct td_agent *a);
/*
 * Everything of cfg's mesh: section that can fail before anything changes: the cgroup root
 * and every service's cgroup folder exist. Appends FILE:LINE errors to errs; 0 or -EINVAL.
 */
int td_agent_mesh_check(const struct td_agent *a, const struct td_config *cfg,
			struct td_errors *errs);
/*
 * Make the running mesh follow cfg: with a mesh: section load/adopt the programs, apply the
 * section (down backends left out), attach to its cgroup root (moving from an old root) and
 * read denial events; without one, detach the programs (maps, live sockets and their state
 * stay pinned). start: also detach programs left attached by an earlier agent when cfg has no
 * mesh. 0 or -errno (logged).
 */
int td_agent_mesh_sync(struct td_agent *a, const struct td_config *cfg, bool start);
/* Health changed for a mesh backend: swap in the selection tables of the healthy backends. */
void td_agent_mesh_health(struct td_agent *a);
/* Fill up to cap health targets (keys: cap x TD_AGENT_HC_KEYLEN) for the mesh backends. */
size_t td_agent_mesh_targets(const struct td_agent *a, struct td_hc_target *t,
			     char (*keys)[TD_AGENT_HC_KEYLEN], size_t cap);
/* number of backends of cfg's mesh services */
size_t td_agent_mesh_n_backends(const struct td_config *cfg);
/* the "mesh" object of the admin status answer (NULL when cfg has no mesh and none is open) */
struct json_object *td_agent_mesh_json(const struct td_agent *a);
/* Stop the watchers and close the maps; attachments and pins stay. */
void td_agent_mesh_stop(struct td_agent *a);

/* ---- metrics_srv.c: the Prometheus endpoint on the agent's loop -------------------------- */

/*
 * Listening socket for node.metrics_listen addr (loopback only): the fd, -ENOENT when addr is
 * "" (off), or -errno after one log line. Opened before anything changes, so a reload that
 * cannot bind is rejected as a whole.
 */
int td_agent_metrics_open(const char *addr);
/*
 * Serve lfd (from td_agent_metrics_open; < 0 = off) in place of the current endpoint, if any:
 * scrapes render td_metrics_collect() of a->m with the agent's generation, last reload and
 * health. 0 or -errno (logged; lfd is closed either way).
 */
int td_agent_metrics_start(struct td_agent *a, int lfd, const char *addr);
/* Stop serving and close every connection; a no-op when off. */
void td_agent_metrics_stop(struct td_agent *a);

/* ---- admin_srv.c: the admin socket on the agent's loop ----------------------------------- */

typedef char *(*td_admin_handler_fn)(void *arg, const char *line, size_t len);

/*
 * Listen on path (td_admin_listen) and serve it from loop: root peers only (SO_PEERCRED),
 * requests of at most TD_ADMIN_MAX_REQUEST bytes, idle clients closed after
 * TD_ADMIN_IDLE_S seconds, at most TD_ADMIN_MAX_CLIENTS at once. NULL + errno.
 */
struct td_admin_srv *td_admin_srv_new(struct ev_loop *loop, const char *path,
				      td_admin_handler_fn fn, void *arg);
/* Close every client and the listener; unlink the socket if it is still ours. NULL is a no-op. */
void td_admin_srv_free(struct td_admin_srv *s);

#define TD_ADMIN_IDLE_S      10.0
#define TD_ADMIN_MAX_CLIENTS 64


/* ---- gateway.c: the gateway: section (user/gateway/gateway.h) ------------------------------ */

struct td_gw;
struct json_object;
struct td_metrics_buf;

/* --check: build and drop the gateway of cfg (files, route table); 0 or -EINVAL */
int td_agent_gw_check(const struct td_config *cfg, struct td_errors *errs);
/* start the gateway of a->cfg if it has one; 0 or -errno (logged) */
int td_agent_gw_start(struct td_agent *a);
/* reload step: switch the gateway to ncfg's section (or start it); nothing changes on error */
int td_agent_gw_reload(struct td_agent *a, const struct td_config *ncfg, struct td_errors *errs);
/* after a successful reload: stop the gateway when ncfg has no gateway: section */
void td_agent_gw_commit(struct td_agent *a, const struct td_config *ncfg);
void td_agent_gw_stop(struct td_agent *a);
/* active checks of the gateway's upstreams (malloc'd, td_gw_health_targets_free); count or -errno */
int td_agent_gw_targets(struct td_agent *a, struct td_hc_target **out);
/* a health transition: true when key was the gateway's */
bool td_agent_gw_health(struct td_agent *a, const char *key, bool healthy);
int td_agent_gw_metrics(struct td_agent *a, struct td_metrics_buf *out);
/* "gateway" member of status: false when off */
struct json_object *td_agent_gw_json(struct td_agent *a);
int td_agent_gw_reopen_log(struct td_agent *a);

/* ---- fproxy.c: the forward_proxy: section (user/proxy/fproxy.h) --------------------------- */

struct td_fp;

int td_agent_fp_check(const struct td_config *cfg, struct td_errors *errs);
int td_agent_fp_start(struct td_agent *a);
int td_agent_fp_reload(struct td_agent *a, const struct td_config *ncfg, struct td_errors *errs);
void td_agent_fp_commit(struct td_agent *a, const struct td_config *ncfg);
void td_agent_fp_stop(struct td_agent *a);
/* at exit: stop, and close the map descriptor */
void td_agent_fp_close(struct td_agent *a);
int td_agent_fp_metrics(struct td_agent *a, struct td_metrics_buf *out);
/* "forward_proxy" member of status: false when off */
struct json_object *td_agent_fp_json(struct td_agent *a);
int td_agent_fp_reopen_log(struct td_agent *a);

#endif
