/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* CUnit suite for the logger: line format and level filtering (stderr captured in a temp file). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <CUnit/CUnit.h>

#include "log.h"
#include "unit.h"

/* run fn with stderr redirected to a temp file; returns its contents (malloc'd) or NULL */
static char *capture_stderr(void (*fn)(void))
{
	char path[] = "/tmp/td_unit_log.XXXXXX", *out = NULL;
	int fd = mkstemp(path), saved = -1;
	long len;
	FILE *f = NULL;

	if (fd < 0)
		return NULL;
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	if (saved < 0 || dup2(fd, STDERR_FILENO) < 0)
		goto cleanup;
	fn();
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	f = fopen(path, "r");
	if (!f)
		goto cleanup;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	out = calloc(1, len + 1);
	if (out && fread(out, 1, len, f) != (size_t)len) {
		free(out);
		out = NULL;
	}
cleanup:
	if (f)
		fclose(f);
	if (saved >= 0) {
		dup2(saved, STDERR_FILENO);
		close(saved);
	}
	close(fd);
	unlink(path);
	return out;
}

static void emit(void)
{
	td_log_init("/usr/sbin/tdtest", TD_LOG_INFO);
	td_log_set_syslog(0);   /* stderr is a file here: keep test lines out of the journal */
	td_err("bad %d", 1);
	td_warn("careful");
	td_info("two\nlines\n");
	td_debug("hidden");
	td_log_init("tdtest", TD_LOG_DEBUG);
	td_log_set_syslog(0);
	td_debug("shown");
	td_log_init("tdtest", TD_LOG_ERR);
	td_log_set_syslog(0);
	td_warn("hidden too");
}

static void test_format(void)
{
	char *out = capture_stderr(emit);

	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	CU_ASSERT_STRING_EQUAL(out, "tdtest: error: bad 1\n"
				    "tdtest: warning: careful\n"
				    "tdtest: info: two lines\n"
				    "tdtest: debug: shown\n");
	CU_ASSERT_EQUAL(td_log_get_level(), TD_LOG_ERR);
	free(out);
	td_log_init("td_unit", TD_LOG_WARN);
}

int td_suite_log(void)
{
	CU_pSuite s = CU_add_suite("log", NULL, NULL);

	if (!s)
		return CU_get_error();
	if (!CU_add_test(s, "format and levels", test_format))
		return CU_get_error();
	return 0;
}
