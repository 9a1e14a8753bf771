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

struct td_admin_srv;
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

#endif
