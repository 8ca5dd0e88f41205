/* daosblk logging: one line per message on stderr, with level and source. */
#ifndef DBK_UTIL_LOG_H
#define DBK_UTIL_LOG_H

#include <stdbool.h>

enum dbk_log_level { DBK_LOG_ERROR = 0, DBK_LOG_WARN, DBK_LOG_NOTICE, DBK_LOG_INFO, DBK_LOG_DEBUG };

/* Messages at or below this level are printed (default NOTICE; DBK_LOG_LEVEL=debug env or -L raises it). */
void dbk_log_set_level(enum dbk_log_level level);
enum dbk_log_level dbk_log_get_level(void);
/* Debug flags (-L FLAG): "all" enables every flag. Returns 0, or -EINVAL for an unknown flag name. */
int dbk_log_enable_flag(const char *flag);
bool dbk_log_flag_enabled(const char *flag);

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
