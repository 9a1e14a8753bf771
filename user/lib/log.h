/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Logging: one line per event to stderr ("tdagent: LEVEL: msg"), level set by -v. */
#ifndef TD_LOG_H
#define TD_LOG_H

enum td_log_level { TD_LOG_ERR = 0, TD_LOG_WARN, TD_LOG_INFO, TD_LOG_DEBUG };

void td_log_init(const char *prog, enum td_log_level level);
enum td_log_level td_log_get_level(void);
/* Mirror to syslog: td_log_init enables it when stderr is not a tty; on = 0/1 overrides. */
void td_log_set_syslog(int on);
void td_log(enum td_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define td_err(...)   td_log(TD_LOG_ERR, __VA_ARGS__)
#define td_warn(...)  td_log(TD_LOG_WARN, __VA_ARGS__)
#define td_info(...)  td_log(TD_LOG_INFO, __VA_ARGS__)
#define td_debug(...) td_log(TD_LOG_DEBUG, __VA_ARGS__)

#endif
