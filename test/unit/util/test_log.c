/*
 * util/log: the line formatter (timestamp, level, component, thread, journal
 * and syslog forms, cutting, newlines), journal detection, and dbk_log itself
 * writing to fd 2 from the main thread and from real reactors.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "thread/thread.h"
#include "util/log.h"

/* 2026-12-02 12:52:47.556243 UTC */
#define T0_SEC 1796215967
#define T0_NSEC 556243789

static size_t fmt(char *buf, size_t len, enum dbk_log_dest dest, enum dbk_log_level level, const struct timespec *ts,
		  const char *thread, const char *file, int line, const char *func, const char *f, ...)
	__attribute__((format(printf, 10, 11)));
static size_t fmt(char *buf, size_t len, enum dbk_log_dest dest, enum dbk_log_level level, const struct timespec *ts,
		  const char *thread, const char *file, int line, const char *func, const char *f, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, f);
	n = dbk_log_format(buf, len, dest, level, ts, thread, file, line, func, f, ap);
	va_end(ap);
	return n;
}

static void test_stderr_line(void **state)
{
	struct timespec ts = {T0_SEC, T0_NSEC};
	char buf[256];
	size_t n;

	(void)state;
	n = fmt(buf, sizeof(buf), DBK_LOG_DEST_STDERR, DBK_LOG_NOTICE, &ts, "reactor_0", DBK_TEST_SRC_ROOT "nvmf/tcp/tcp.c",
		2074, "nvmf_tcp_listen", "NVMe/TCP target listening on %s port %d", "127.0.0.1", 4420);
	assert_string_equal(buf, "[2026-12-02 12:52:47.556243] NOTICE nvmf/tcp (reactor_0) tcp.c:2074 nvmf_tcp_listen: "
				 "NVMe/TCP target listening on 127.0.0.1 port 4420\n");
	assert_int_equal(n, strlen(buf));
}

static void test_date_changes(void **state)
{
	struct timespec a = {T0_SEC, 1000}, b = {T0_SEC + 86400 + 3661, 999999999};
	char buf[256];

	(void)state;
	/* the per-thread date cache must follow the second */
	fmt(buf, sizeof(buf), DBK_LOG_DEST_STDERR, DBK_LOG_ERROR, &a, "t", "/x/rpc/server.c", 1, "f", "m");
	assert_string_equal(buf, "[2026-12-02 12:52:47.000001] ERROR rpc (t) server.c:1 f: m\n");
	fmt(buf, sizeof(buf), DBK_LOG_DEST_STDERR, DBK_LOG_ERROR, &b, "t", "/x/rpc/server.c", 1, "f", "m");
	assert_string_equal(buf, "[2026-12-03 13:53:48.999999] ERROR rpc (t) server.c:1 f: m\n");
	fmt(buf, sizeof(buf), DBK_LOG_DEST_STDERR, DBK_LOG_ERROR, &a, "t", "/x/rpc/server.c", 1, "f", "m");
	assert_string_equal(buf, "[2026-12-02 12:52:47.000001] ERROR rpc (t) server.c:1 f: m\n");
}

static void test_journal_and_syslog_forms(void **state)
{
	static const struct {
		enum dbk_log_level level;
		const char *want;
		int prio;
	} cases[] = {
		{DBK_LOG_ERROR, "<3>ERROR bdev/daos (helper) bdev_daos.c:9 g: x\n", LOG_ERR},
		{DBK_LOG_WARN, "<4>WARN bdev/daos (helper) bdev_daos.c:9 g: x\n", LOG_WARNING},
		{DBK_LOG_NOTICE, "<5>NOTICE bdev/daos (helper) bdev_daos.c:9 g: x\n", LOG_NOTICE},
		{DBK_LOG_INFO, "<6>INFO bdev/daos (helper) bdev_daos.c:9 g: x\n", LOG_INFO},
		{DBK_LOG_DEBUG, "<7>DEBUG bdev/daos (helper) bdev_daos.c:9 g: x\n", LOG_DEBUG},
	};
	struct timespec ts = {T0_SEC, T0_NSEC};
	char buf[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fmt(buf, sizeof(buf), DBK_LOG_DEST_JOURNAL, cases[i].level, &ts, "helper",
		    DBK_TEST_SRC_ROOT "bdev/daos/bdev_daos.c", 9, "g", "x");
		assert_string_equal(buf, cases[i].want);
		assert_int_equal(dbk_log_syslog_priority(cases[i].level), cases[i].prio);
		/* syslog(3) form: no date, no prefix (syslog adds its own) */
		fmt(buf, sizeof(buf), DBK_LOG_DEST_SYSLOG, cases[i].level, &ts, "helper",
		    DBK_TEST_SRC_ROOT "bdev/daos/bdev_daos.c", 9, "g", "x");
		assert_string_equal(buf, strchr(cases[i].want, '>') + 1);
	}
}

static void test_newlines_and_cut(void **state)
{
	struct timespec ts = {T0_SEC, 0};
	char big[2000], buf[128];
	size_t n;

	(void)state;
	fmt(buf, sizeof(buf), DBK_LOG_DEST_SYSLOG, DBK_LOG_INFO, &ts, "r", "/a/b/c.c", 3, "f", "two\nlines\r\n\n");
	assert_string_equal(buf, "INFO b (r) c.c:3 f: two lines\n");
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	n = fmt(buf, sizeof(buf), DBK_LOG_DEST_STDERR, DBK_LOG_INFO, &ts, "r", "/a/b/c.c", 3, "f", "%s", big);
	assert_int_equal(n, sizeof(buf) - 1);
	assert_int_equal(strlen(buf), n);
	assert_string_equal(buf + n - 4, "...\n");
	assert_int_equal(buf[n - 5], 'z');
	/* exactly full: cut too, never a line without its newline */
	n = fmt(buf, sizeof(buf), DBK_LOG_DEST_SYSLOG, DBK_LOG_INFO, &ts, "r", "/a/b/c.c", 3, "f", "%.*s",
		(int)(sizeof(buf) - 1 - strlen("INFO b (r) c.c:3 f: ")), big);
	assert_int_equal(n, sizeof(buf) - 1);
	assert_string_equal(buf + n - 4, "...\n");
}

static void test_component(void **state)
{
	char c[64];

	(void)state;
	dbk_log_component(DBK_TEST_SRC_ROOT "nvmf/tcp/tcp.c", c, sizeof(c));
	assert_string_equal(c, "nvmf/tcp");
	dbk_log_component(DBK_TEST_SRC_ROOT "thread/thread.c", c, sizeof(c));
	assert_string_equal(c, "thread");
	dbk_log_component(__FILE__, c, sizeof(c));
	assert_string_equal(c, "test/unit/util");
	dbk_log_component("/elsewhere/src/foo/bar.c", c, sizeof(c));
	assert_string_equal(c, "foo");
	dbk_log_component("../../bdev/uring/bdev_uring.c", c, sizeof(c));
	assert_string_equal(c, "bdev/uring");
	dbk_log_component("plain.c", c, sizeof(c));
	assert_string_equal(c, "");
	dbk_log_component(DBK_TEST_SRC_ROOT "bdev/daos/bdev_daos.c", c, 5);
	assert_string_equal(c, "bdev");
}

static void test_journal_detection(void **state)
{
	struct stat st;
	char v[64];

	(void)state;
	assert_int_equal(fstat(STDERR_FILENO, &st), 0);
	unsetenv("JOURNAL_STREAM");
	assert_false(dbk_log_stderr_is_journal());
	snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", v, 1);
	assert_true(dbk_log_stderr_is_journal());
	/* a journal stream inherited by a process whose stderr now goes elsewhere */
	snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino + 1);
	setenv("JOURNAL_STREAM", v, 1);
	assert_false(dbk_log_stderr_is_journal());
	setenv("JOURNAL_STREAM", "junk", 1);
	assert_false(dbk_log_stderr_is_journal());
	snprintf(v, sizeof(v), "%llu:%llux", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", v, 1);
	assert_false(dbk_log_stderr_is_journal());
	unsetenv("JOURNAL_STREAM");
}

/* ------------------------------------------------- dbk_log onto a real fd 2 */

static int g_saved_stderr = -1;
static char g_path[64];

static void capture_begin(void)
{
	int fd;

	snprintf(g_path, sizeof(g_path), "/tmp/dbk_test_log.XXXXXX");
	fd = mkstemp(g_path);
	assert_true(fd >= 0);
	g_saved_stderr = dup(STDERR_FILENO);
	assert_true(g_saved_stderr >= 0);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
}

/* The captured text (malloc'ed). */
static char *capture_end(void)
{
	FILE *f;
	char *s;
	long n;

	assert_int_equal(dup2(g_saved_stderr, STDERR_FILENO), STDERR_FILENO);
	close(g_saved_stderr);
	f = fopen(g_path, "r");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	s = calloc(1, (size_t)n + 1);
	assert_non_null(s);
	assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	unlink(g_path);
	return s;
}

static void test_dbk_log_levels_and_dest(void **state)
{
	enum dbk_log_level old = dbk_log_get_level();
	char *out, *l2;

	(void)state;
	dbk_log_set_level(DBK_LOG_NOTICE);
	capture_begin();
	DBK_NOTICELOG("first %d", 1);
	DBK_INFOLOG("not printed at NOTICE");
	dbk_log_open(DBK_LOG_DEST_JOURNAL, "test_log");
	errno = EXDEV;
	DBK_WARNLOG("second");
	assert_int_equal(errno, EXDEV);
	/* The fuzzers' destination: formatted, written nowhere. */
	dbk_log_open(DBK_LOG_DEST_NONE, NULL);
	assert_int_equal(dbk_log_get_dest(), DBK_LOG_DEST_NONE);
	errno = EXDEV;
	DBK_ERRLOG("dropped %s", "line");
	assert_int_equal(errno, EXDEV);
	dbk_log_close();
	out = capture_end();
	dbk_log_set_level(old);
	/* "[YYYY-MM-DD HH:MM:SS.uuuuuu] NOTICE test/unit/util (main) test_log.c:N test_...: first 1\n" */
	assert_int_equal(out[0], '[');
	assert_int_equal(out[5], '-');
	assert_int_equal(out[11], ' ');
	assert_int_equal(out[20], '.');
	assert_int_equal(out[27], ']');
	assert_memory_equal(out + 28, " NOTICE test/unit/util (main) test_log.c:", 41);
	assert_non_null(strstr(out, " test_dbk_log_levels_and_dest: first 1\n"));
	assert_null(strstr(out, "not printed"));
	assert_null(strstr(out, "dropped"));
	l2 = strchr(out, '\n') + 1;
	assert_memory_equal(l2, "<4>WARN test/unit/util (main) test_log.c:", 41);
	assert_non_null(strstr(l2, ": second\n"));
	assert_int_equal(strlen(strchr(l2, '\n')), 1);
	free(out);
}

static void log_on_reactor(void *ctx)
{
	(void)ctx;
	DBK_NOTICELOG("hello from reactor %d", dbk_thread_get_index(dbk_get_thread()));
	if (dbk_thread_get_index(dbk_get_thread()) == 1) {
		dbk_thread_send_msg(dbk_reactor_thread(0), log_on_reactor, NULL);
		return;
	}
	dbk_reactors_stop();
}

static void start_logging(void *ctx)
{
	(void)ctx;
	assert_int_equal(dbk_thread_send_msg(dbk_reactor_thread(1), log_on_reactor, NULL), 0);
}

static void test_reactor_names(void **state)
{
	struct dbk_reactor_opts o;
	char *out;

	(void)state;
	memset(&o, 0, sizeof(o));
	o.cores[0] = 0;
	o.cores[1] = 0;
	o.num_cores = 2;
	capture_begin();
	assert_int_equal(dbk_reactors_init(&o), 0);
	assert_int_equal(dbk_reactors_start(start_logging, NULL), 0);
	dbk_reactors_fini();
	DBK_NOTICELOG("after the reactors");
	out = capture_end();
	assert_non_null(strstr(out, " NOTICE test/unit/util (reactor_1) test_log.c:"));
	assert_non_null(strstr(out, "log_on_reactor: hello from reactor 1\n"));
	assert_non_null(strstr(out, " NOTICE test/unit/util (reactor_0) test_log.c:"));
	assert_non_null(strstr(out, "log_on_reactor: hello from reactor 0\n"));
	/* the main thread gets its own name back once reactor 0 has left its loop */
	assert_non_null(strstr(out, " (main) test_log.c:"));
	assert_non_null(strstr(out, "test_reactor_names: after the reactors\n"));
	assert_true(strstr(out, "hello from reactor 1") < strstr(out, "hello from reactor 0"));
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stderr_line),
		cmocka_unit_test(test_date_changes),
		cmocka_unit_test(test_journal_and_syslog_forms),
		cmocka_unit_test(test_newlines_and_cut),
		cmocka_unit_test(test_component),
		cmocka_unit_test(test_journal_detection),
		cmocka_unit_test(test_dbk_log_levels_and_dest),
		cmocka_unit_test(test_reactor_names),
	};

	setenv("TZ", "UTC", 1);
	tzset();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
