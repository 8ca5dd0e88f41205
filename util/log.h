/*
 * daosblk logging: one line per message, with a human timestamp, the level,
 * the component (the source folder: "nvmf/tcp", "bdev/daos", "thread") and
 * the thread ("reactor_1", "helper", "main") it comes from:
 *
 *   [2026-12-02 12:52:47.556243] NOTICE nvmf/tcp (reactor_0) tcp.c:2074 nvmf_tcp_listen: listening on ...
 *
 * Destinations (dbk_log_open):
 *   stderr   the line above (default).
 *   journal  stderr with a "<N>" syslog priority prefix and no timestamp (the
 *            journal stamps each line itself): chosen automatically when
 *            stderr is the systemd journal (JOURNAL_STREAM names its dev:ino).
 *   syslog   syslog(3), facility LOG_DAEMON, priorities LOG_ERR .. LOG_DEBUG
 *            (daosblk-tgt --syslog).
 *
 * Cost: nothing for a message below the level (one compare). A printed line
 * is formatted in a stack buffer (the date is computed once per second per
 * thread) and written with one write(2): no allocation, no stdio lock, lines
 * of different threads never interleave. Logging is not on the I/O path.
 */
#ifndef DBK_UTIL_LOG_H
#define DBK_UTIL_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

enum dbk_log_level { DBK_LOG_ERROR = 0, DBK_LOG_WARN, DBK_LOG_NOTICE, DBK_LOG_INFO, DBK_LOG_DEBUG };

enum dbk_log_dest {
	DBK_LOG_DEST_STDERR = 0,	/* "[date time.usec] LEVEL ..." on fd 2 */
	DBK_LOG_DEST_JOURNAL,		/* "<N>LEVEL ..." on fd 2, for journald's stream parser */
	DBK_LOG_DEST_SYSLOG,		/* syslog(3) */
	DBK_LOG_DEST_NONE,		/* formatted as for stderr, then dropped (the fuzzers: every message's
					 * arguments are still formatted, nothing is written) */
};

/* Messages at or below this level are printed (default NOTICE; DBK_LOG_LEVEL=debug env or -L raises it). */
void dbk_log_set_level(enum dbk_log_level level);
enum dbk_log_level dbk_log_get_level(void);
/* Debug flags (-L FLAG): "all" enables every flag. Returns 0, or -EINVAL for an unknown flag name. */
int dbk_log_enable_flag(const char *flag);
bool dbk_log_flag_enabled(const char *flag);

/*
 * Where messages go from now on. ident: the syslog identity (program name).
 * Call before other threads log (at start-up). Returns 0.
 */
int dbk_log_open(enum dbk_log_dest dest, const char *ident);
/* Back to stderr (closes the syslog connection). */
void dbk_log_close(void);
enum dbk_log_dest dbk_log_get_dest(void);
/* True when stderr is the systemd journal: $JOURNAL_STREAM is "DEV:INO" of fd 2. */
bool dbk_log_stderr_is_journal(void);

/* The name this thread's lines carry (copied; at most 15 characters). NULL: back to the default. */
void dbk_log_set_thread_name(const char *name);
/* This thread's name: the one set, else "main" on the main thread, else the thread's comm name. */
const char *dbk_log_get_thread_name(void);

/* The syslog priority of a level (LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG). */
int dbk_log_syslog_priority(enum dbk_log_level level);
/* "nvmf/tcp" for ".../<source root>/nvmf/tcp/tcp.c" (the folder below the source root); "" if none. */
void dbk_log_component(const char *file, char *buf, size_t len);

/*
 * Format one line into buf (len >= 64) as dbk_log writes it for dest: the
 * stderr form starts with the local time ts, the journal form with "<N>", the
 * syslog form with neither. Newlines in the message become spaces; the line
 * always ends with '\n' (a long one is cut and ends with "...\n"). Returns the
 * length. Exposed for the unit test.
 */
size_t dbk_log_format(char *buf, size_t len, enum dbk_log_dest dest, enum dbk_log_level level,
		      const struct timespec *ts, const char *thread, const char *file, int line, const char *func,
		      const char *fmt, va_list ap) __attribute__((format(printf, 10, 0)));

void dbk_log(enum dbk_log_level level, const char *file, int line, const char *func, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

#define DBK_ERRLOG(...) dbk_log(DBK_LOG_ERROR, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define DBK_WARNLOG(...) dbk_log(DBK_LOG_WARN, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define DBK_NOTICELOG(...) dbk_log(DBK_LOG_NOTICE, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define DBK_INFOLOG(...) dbk_log(DBK_LOG_INFO, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define DBK_DEBUGLOG(flag, ...)                                                         \
	do {                                                                            \
		if (dbk_log_flag_enabled(flag))                                         \
			dbk_log(DBK_LOG_DEBUG, __FILE__, __LINE__, __func__, __VA_ARGS__); \
	} while (0)

#endif
