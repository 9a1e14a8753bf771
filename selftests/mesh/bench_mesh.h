/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* td_mesh_ctl subcommands for the mesh benchmark (bench_mesh.c, driven by scripts/bench.sh). */
#ifndef TD_BENCH_MESH_H
#define TD_BENCH_MESH_H

#include <stdbool.h>

/*
 * bench-server, bench-rr, bench-bulk: *handled tells whether argv[1] was one of them; then
 * 0 or -errno.
 */
int td_bench_main(int argc, char **argv, bool *handled);

#endif
