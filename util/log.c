#include "util/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define DBK_MAX_LOG_FLAGS 32

static enum dbk_log_level g_level = DBK_LOG_NOTICE;
static bool g_all_flags;
static char g_flags[DBK_MAX_LOG_FLAGS][32];
static int g_nflags;

static const char *const g_level_names[] = {"ERROR", "WARN", "NOTICE", "INFO", "DEBUG"};

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

void dbk_log(enum dbk_log_level level, const char *file, int line, const char *func, const char *fmt, ...)
{
	static int env_checked;
	char buf[1024];
	struct timespec ts;
	va_list ap;
	int n;

	if (!env_checked) {
		const char *e = getenv("DBK_LOG_LEVEL");
		env_checked = 1;
		if (e && strcasecmp(e, "debug") == 0) {
			g_level = DBK_LOG_DEBUG;
			g_all_flags = true;
		} else if (e && strcasecmp(e, "info") == 0) {
			g_level = DBK_LOG_INFO;
		}
	}
	if (level > g_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	n = snprintf(buf, sizeof(buf), "[%lld.%06ld] %s %s:%d %s: ", (long long)ts.tv_sec, ts.tv_nsec / 1000,
		     g_level_names[level], strrchr(file, '/') ? strrchr(file, '/') + 1 : file, line, func);
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(buf))
		vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	n = strlen(buf);
	if (n > 0 && buf[n - 1] != '\n' && (size_t)n < sizeof(buf) - 1) {
		buf[n++] = '\n';
		buf[n] = '\0';
	}
	fputs(buf, stderr);
}
