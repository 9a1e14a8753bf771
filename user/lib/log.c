/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Logging: one "PROG: level: message" line per event on stderr, mirrored to syslog when stderr is no tty. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"

static const char *td_log_prog = "td";
static enum td_log_level td_log_level = TD_LOG_INFO;
static int td_log_syslog;   /* mirror to syslog (default: stderr is not a tty) */
static int td_log_opened;   /* openlog() done */

static const char *const td_log_names[] = {
	[TD_LOG_ERR] = "error",
	[TD_LOG_WARN] = "warning",
	[TD_LOG_INFO] = "info",
	[TD_LOG_DEBUG] = "debug",
};

static const int td_log_prio[] = {
	[TD_LOG_ERR] = LOG_ERR,
	[TD_LOG_WARN] = LOG_WARNING,
	[TD_LOG_INFO] = LOG_INFO,
	[TD_LOG_DEBUG] = LOG_DEBUG,
};

void td_log_init(const char *prog, enum td_log_level level)
{
	if (prog && *prog) {
		const char *slash = strrchr(prog, '/');

		td_log_prog = slash ? slash + 1 : prog;
	}
	if ((int)level < TD_LOG_ERR)
		level = TD_LOG_ERR;
	if (level > TD_LOG_DEBUG)
		level = TD_LOG_DEBUG;
	td_log_level = level;
	td_log_syslog = !isatty(STDERR_FILENO);
}

void td_log_set_syslog(int on)
{
	td_log_syslog = !!on;
}

enum td_log_level td_log_get_level(void)
{
	return td_log_level;
}

void td_log(enum td_log_level level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	size_t len;

	if ((int)level < TD_LOG_ERR)
		level = TD_LOG_ERR;
	if (level > TD_LOG_DEBUG)
		level = TD_LOG_DEBUG;
	if (level > td_log_level)
		return;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* one event, one line: strip trailing newlines, flatten embedded ones */
	len = strlen(msg);
	while (len && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
		msg[--len] = '\0';
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';

	fprintf(stderr, "%s: %s: %s\n", td_log_prog, td_log_names[level], msg);
	if (td_log_syslog) {
		if (!td_log_opened) {
			openlog(td_log_prog, LOG_PID, LOG_DAEMON);
			td_log_opened = 1;
		}
		syslog(td_log_prio[level], "%s", msg);
	}
}
