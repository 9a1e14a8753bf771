/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Active health checks (TCP connect, HTTP GET), many at once without threads, driven by the caller's loop. */
#ifndef TD_HEALTH_H
#define TD_HEALTH_H

/*
 * Contract
 *  - One struct td_health holds a set of targets, each identified by a caller-chosen stable key
 *    (td_health_key_format: "SERVICE/ADDR:PORT"). td_health_set() replaces the whole set; a key
 *    present before and after keeps its state (healthy, counters, a check in flight).
 *  - Nothing blocks and nothing runs on its own: the caller polls td_health_fd() for POLLIN
 *    (an epoll fd: add it to the agent's own epoll or poll set) and wakes up no later than
 *    td_health_next_deadline_ms(); then it calls td_health_process(now), which reads results,
 *    times out late checks and starts due ones. Times are CLOCK_MONOTONIC milliseconds
 *    (td_health_now_ms()).
 *  - State machine per target, counters of consecutive results:
 *        UP   --(fall consecutive failures)--> DOWN
 *        DOWN --(rise consecutive passes)----> UP
 *    A target starts UP (unless initially_down): "healthy until proven otherwise", because the
 *    agent restarts and reloads while traffic flows; starting DOWN would empty every Maglev ring
 *    for rise * interval after each start and move established flows. The first check of a new
 *    target runs at once, so a dead backend is out within (fall - 1) * interval + timeout.
 *    initially_down is for callers that prefer a new backend to prove itself first (rise passes).
 *  - on_change(arg, key, healthy) is called from td_health_process() on every UP<->DOWN
 *    transition and never for the initial state, nor from td_health_set(). It must not call
 *    td_health_set() or td_health_free() (td_health_set returns -EBUSY).
 *  - Checks of one target never overlap: the next check starts interval ms after the previous
 *    one started, and timeout <= interval. A local failure (out of fds or ephemeral ports, no
 *    memory) is not the backend's fault: it is recorded in last_error but counts neither way.
 *  - TCP: a non-blocking connect() must complete within timeout. HTTP: connect, send
 *    "GET PATH HTTP/1.1" with Host, "Connection: close" and "User-Agent: td-health", read the
 *    status line "HTTP/x.y NNN"; 200..399 pass; another code, garbage, a reset, a close before
 *    the status line or a timeout fail. Connections are closed with RST (SO_LINGER 0), so
 *    frequent checks leave no TIME_WAIT sockets behind on the agent's node.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "td/abi.h"
#include "addr.h"

enum td_hc_type { TD_HC_NONE = 0, TD_HC_TCP = 1, TD_HC_HTTP = 2 };

#define TD_HC_PATH_LEN  256   /* HTTP path incl. NUL                                  */
#define TD_HC_ERR_LEN   64    /* td_hc_status.last_error incl. NUL                    */
#define TD_HC_KEYSTRLEN (TD_NAME_LEN + TD_ENDPOINTSTRLEN)   /* "SERVICE/[ADDR]:PORT" + NUL */

/* One thing to check. Everything is copied by td_health_set(). */
struct td_hc_target {
	const char *key;          /* stable identity, non-empty, unique in a set              */
	union td_addr addr;       /* be                                                       */
	__u8 family;              /* TD_AF_INET or TD_AF_INET6                                */
	__u8 type;                /* TD_HC_TCP or TD_HC_HTTP                                  */
	__u16 port;               /* host order, 1..65535                                     */
	const char *path;         /* HTTP only: starts with '/', no spaces or controls; NULL = "/" */
	__u32 interval_ms;        /* >= 1                                                     */
	__u32 timeout_ms;         /* 1..interval_ms                                           */
	__u32 rise;               /* >= 1 consecutive passes to go UP                         */
	__u32 fall;               /* >= 1 consecutive failures to go DOWN                     */
	bool initially_down;      /* start DOWN instead of UP (only for a key new to the set) */
};

/* Snapshot of one target (td_health_get), for tdctl, metrics and logs. */
struct td_hc_status {
	bool healthy;
	bool in_flight;           /* a check is running now                                   */
	bool last_ok;             /* result of the last finished check (false before any)     */
	__u32 passes;             /* consecutive passes (0 after a failure)                   */
	__u32 fails;              /* consecutive failures (0 after a pass)                    */
	__u64 checks;             /* finished checks, passed or failed                        */
	__u64 failures;           /* failed checks                                            */
	__u64 local_errors;       /* checks that could not start (fds, ports, memory)         */
	__u32 last_ms;            /* duration of the last finished check                      */
	__u64 changed_ms;         /* when healthy last changed (or the key was added/reset)   */
	char last_error[TD_HC_ERR_LEN];  /* why the last check failed; "" after a pass       */
};

typedef void (*td_health_cb)(void *arg, const char *key, bool healthy);

/* New empty checker; on_change may be NULL. NULL + errno on failure. */
struct td_health *td_health_new(td_health_cb on_change, void *arg);
/* Close every socket and free; NULL is a no-op. */
void td_health_free(struct td_health *h);
/*
 * Replace the target set. All-or-nothing: -EINVAL (a bad target or a duplicate key), -ENOMEM,
 * -EBUSY (called from on_change) leave the previous set running untouched. A key already present
 * with the same probe (family, addr, port, type, path) keeps its state and any check in flight;
 * new interval/timeout/rise/fall apply from the next check. A key whose probe changed restarts
 * as if new. Keys not in targets are dropped (their check is aborted). n = 0 clears the set.
 */
int td_health_set(struct td_health *h, const struct td_hc_target *targets, size_t n);
/* The epoll fd to poll for POLLIN; owned by h. */
int td_health_fd(const struct td_health *h);
/* Read results, time out late checks, start due ones. 0 or -errno (-EBUSY if re-entered). */
int td_health_process(struct td_health *h, uint64_t now_ms);
/* Earliest time process() has timed work to do; 0 = now (new targets); UINT64_MAX = none. */
uint64_t td_health_next_deadline_ms(const struct td_health *h);
/* Status of key: 0, -ENOENT or -EINVAL. */
int td_health_get(const struct td_health *h, const char *key, struct td_hc_status *st);
/* Number of targets in the set. */
size_t td_health_count(const struct td_health *h);
/* CLOCK_MONOTONIC in milliseconds. */
uint64_t td_health_now_ms(void);
/* "web/10.0.1.11:8080", "dns6/[fd00::1]:53" into buf (>= TD_HC_KEYSTRLEN); returns buf. */
const char *td_health_key_format(char *buf, size_t len, const char *service,
				 const union td_addr *addr, __u8 family, __u16 port);
/* "tcp" | "http" | "none" | "?" */
const char *td_hc_type_name(unsigned int type);

#endif
