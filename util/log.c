#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#ifndef DBK_LOG_SRC_ROOT
#define DBK_LOG_SRC_ROOT ""
#endif

#define DBK_MAX_LOG_FLAGS 32
#define LINE_MAX_BYTES 1024

/* Set at start-up (options, environment), read by every thread afterwards. */
static enum dbk_log_level g_level = DBK_LOG_NOTICE;
static enum dbk_log_dest g_dest = DBK_LOG_DEST_STDERR;
static bool g_all_flags;
static char g_flags[DBK_MAX_LOG_FLAGS][32];
static int g_nflags;

/* Per thread: its name, and the formatted date of the last second it logged in. */
static __thread char tl_name[16];
static __thread bool tl_name_set;
static __thread time_t tl_sec = (time_t)-1;
static __thread char tl_date[32];

static const char *const g_level_names[] = {"ERROR", "WARN", "NOTICE", "INFO", "DEBUG"};

/* DBK_LOG_LEVEL=debug|info, read once before main() so that -L and dbk_log_set_level() come after it. */
__attribute__((constructor)) static void log_env_init(void)
{
	const char *e = getenv("DBK_LOG_LEVEL");

	if (e && strcasecmp(e, "debug") == 0) {
		g_level = DBK_LOG_DEBUG;
		g_all_flags = true;
	} else if (e && strcasecmp(e, "info") == 0) {
		g_level = DBK_LOG_INFO;
	}
}

void dbk_log_set_level(enum dbk_log_level level) { g_level = level; }
enum dbk_log_level dbk_log_get_level(void) { return g_level; }

int dbk_log_enable_flag(const char *flag)
{
	if (flag == NULL || flag[0] == '\0' || strlen(flag) >= sizeof(g_flags[0]))
		return -EINVAL;
	if (strcmp(flag, "all") == 0)
		g_all_flags = true;
	else if (g_nflags < DBK_MAX_LOG_FLAGS)
		snprintf(g_flags[g_nflags++], sizeof(g_flags[0]), "%s", flag);
	else
		return -ENOSPC;
	g_level = DBK_LOG_DEBUG;
	return 0;
}

bool dbk_log_flag_enabled(const char *flag)
{
	if (g_level < DBK_LOG_DEBUG)
		return false;
	if (g_all_flags)
		return true;
	for (int i = 0; i < g_nflags; i++)
		if (strcmp(g_flags[i], flag) == 0)
			return true;
	return false;
}

/* ------------------------------------------------------------ destinations */

bool dbk_log_stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char tail;

	if (e == NULL || sscanf(e, "%llu:%llu%c", &dev, &ino, &tail) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) != 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

int dbk_log_open(enum dbk_log_dest dest, const char *ident)
{
	if (g_dest == DBK_LOG_DEST_SYSLOG && dest != DBK_LOG_DEST_SYSLOG)
		closelog();
	if (dest == DBK_LOG_DEST_SYSLOG)
		openlog(ident && ident[0] ? ident : "daosblk", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	g_dest = dest;
	return 0;
}

void dbk_log_close(void)
{
	dbk_log_open(DBK_LOG_DEST_STDERR, NULL);
}

enum dbk_log_dest dbk_log_get_dest(void) { return g_dest; }

int dbk_log_syslog_priority(enum dbk_log_level level)
{
	switch (level) {
	case DBK_LOG_ERROR: return LOG_ERR;
	case DBK_LOG_WARN: return LOG_WARNING;
	case DBK_LOG_NOTICE: return LOG_NOTICE;
	case DBK_LOG_INFO: return LOG_INFO;
	default: return LOG_DEBUG;
	}
}

/* ------------------------------------------------------------- thread name */

void dbk_log_set_thread_name(const char *name)
{
	if (name == NULL) {
		tl_name_set = false;
		return;
	}
	snprintf(tl_name, sizeof(tl_name), "%s", name);
	tl_name_set = true;
}

const char *dbk_log_get_thread_name(void)
{
	if (!tl_name_set) {
		if (gettid() == getpid())
			snprintf(tl_name, sizeof(tl_name), "main");
		else if (prctl(PR_GET_NAME, tl_name, 0, 0, 0) != 0 || tl_name[0] == '\0')
			snprintf(tl_name, sizeof(tl_name), "tid %d", (int)gettid());
		tl_name[sizeof(tl_name) - 1] = '\0';
		tl_name_set = true;
	}
	return tl_name;
}

/* -------------------------------------------------------------- formatting */

void dbk_log_component(const char *file, char *buf, size_t len)
{
	const char *root = DBK_LOG_SRC_ROOT;
	size_t rl = strlen(root);
	const char *rel = file ? file : "";
	const char *last;
	size_t n;

	if (len == 0)
		return;
	if (rl > 0 && strncmp(rel, root, rl) == 0) {
		rel += rl;
	} else if (rel[0] == '/') {
		/* outside the source tree: the name of the file's folder */
		const char *p = strrchr(rel, '/');
		while (p > rel && p[-1] != '/')
			p--;
		rel = p;
	} else {
		while (strncmp(rel, "./", 2) == 0 || strncmp(rel, "../", 3) == 0)
			rel += rel[1] == '/' ? 2 : 3;
	}
	last = strrchr(rel, '/');
	n = last ? (size_t)(last - rel) : 0;
	if (n >= len)
		n = len - 1;
	memcpy(buf, rel, n);
	buf[n] = '\0';
}

/* "2026-12-02 12:52:47" for sec in local time, formatted once per second per thread. */
static const char *date_of(time_t sec)
{
	struct tm tm;

	if (sec != tl_sec) {
		if (localtime_r(&sec, &tm) == NULL ||
		    strftime(tl_date, sizeof(tl_date), "%Y-%m-%d %H:%M:%S", &tm) == 0)
			snprintf(tl_date, sizeof(tl_date), "%lld", (long long)sec);
		tl_sec = sec;
	}
	return tl_date;
}

size_t dbk_log_format(char *buf, size_t len, enum dbk_log_dest dest, enum dbk_log_level level,
		      const struct timespec *ts, const char *thread, const char *file, int line, const char *func,
		      const char *fmt, va_list ap)
{
	char comp[64];
	const char *base;
	size_t n = 0, head;
	int r;

	if (level < DBK_LOG_ERROR || level > DBK_LOG_DEBUG)
		level = DBK_LOG_DEBUG;
	file = file ? file : "?";
	base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
	dbk_log_component(file, comp, sizeof(comp));
	if (dest == DBK_LOG_DEST_STDERR)
		r = snprintf(buf, len, "[%s.%06ld] ", date_of(ts->tv_sec), ts->tv_nsec / 1000);
	else if (dest == DBK_LOG_DEST_JOURNAL)
		r = snprintf(buf, len, "<%d>", dbk_log_syslog_priority(level));
	else
		r = 0;
	n = r > 0 ? (size_t)r : 0;
	if (n < len) {
		r = snprintf(buf + n, len - n, "%s %s (%s) %s:%d %s: ", g_level_names[level], comp[0] ? comp : "-",
			     thread ? thread : "?", base, line, func ? func : "?");
		n += r > 0 ? (size_t)r : 0;
	}
	head = n < len ? n : len - 1;
	if (n < len) {
		r = vsnprintf(buf + n, len - n, fmt, ap);
		n += r > 0 ? (size_t)r : 0;
	}
	if (n >= len - 1) {
		/* cut: room for "...\n" */
		n = len - 5;
		memcpy(buf + n, "...", 3);
		n += 3;
	} else {
		while (n > head && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
			n--;
	}
	for (size_t i = head; i < n; i++)
		if (buf[i] == '\n' || buf[i] == '\r')
			buf[i] = ' ';
	buf[n++] = '\n';
	buf[n] = '\0';
	return n;
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

void dbk_log(enum dbk_log_level level, const char *file, int line, const char *func, const char *fmt, ...)
{
	char buf[LINE_MAX_BYTES];
	enum dbk_log_dest dest = g_dest;
	struct timespec ts = {0};
	int saved = errno;
	va_list ap;
	size_t n;

	if (level > g_level)
		return;
	if (dest == DBK_LOG_DEST_STDERR)
		clock_gettime(CLOCK_REALTIME, &ts);
	va_start(ap, fmt);
	n = dbk_log_format(buf, sizeof(buf), dest, level, &ts, dbk_log_get_thread_name(), file, line, func, fmt, ap);
	va_end(ap);
	if (dest == DBK_LOG_DEST_SYSLOG) {
		buf[n - 1] = '\0';
		syslog(LOG_DAEMON | dbk_log_syslog_priority(level), "%s", buf);
	} else if (dest != DBK_LOG_DEST_NONE) {
		write_all(STDERR_FILENO, buf, n);
	}
	errno = saved;
}
