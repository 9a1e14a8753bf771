/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* td_mesh_ctl subcommands for the sockmap redirect tests (sockmap_io.c). */
#ifndef TD_SOCKMAP_IO_H
#define TD_SOCKMAP_IO_H

#include <stdbool.h>

/*
 * stress-server, stress-client, reorder, sockdel: *handled tells whether argv[1] was one of
 * them; then 0 or -errno.
 */
int td_io_main(int argc, char **argv, bool *handled);

#endif
