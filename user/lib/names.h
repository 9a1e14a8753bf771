/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Names of ABI enums for tdctl output, metrics and config parsing. */
#ifndef TD_NAMES_H
#define TD_NAMES_H

#include "td/abi.h"

/* "rx", "pass_not_vip", "drop_malformed", ... ; NULL when out of range */
const char *td_counter_name(unsigned int counter);
/* 1 when the counter is a drop reason (TD_DROP_*) */
int td_counter_is_drop(unsigned int counter);
const char *td_mode_name(unsigned int mode);    /* "nat" | "dsr" | "?" */
const char *td_proto_name(unsigned int proto);  /* "tcp" | "udp" | "?" */
const char *td_xdp_mode_name(unsigned int m);   /* "native" | "generic" | "?" */
/* parsers: return the enum value or -EINVAL */
int td_mode_parse(const char *s);
int td_proto_parse(const char *s);
int td_xdp_mode_parse(const char *s);

#endif
