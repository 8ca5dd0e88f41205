/* accept(2) that survives running out of file descriptors: see accept_guard.h. */
#include "util/accept_guard.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WARN_INTERVAL_NS 1000000000ull

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int open_spare(void)
{
	return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

int dbk_accept_guard_init(struct dbk_accept_guard *g, const char *what, unsigned headroom)
{
	memset(g, 0, sizeof(*g));
	g->what = what;
	g->headroom = headroom;
	g->spare = open_spare();
	return g->spare < 0 ? -errno : 0;
}

void dbk_accept_guard_fini(struct dbk_accept_guard *g)
{
	if (g->spare >= 0)
		close(g->spare);
	g->spare = -1;
}

static unsigned long nofile_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return ~0ul;
	return (unsigned long)rl.rlim_cur;
}

static void refused(struct dbk_accept_guard *g, const char *why)
{
	uint64_t now = now_ns();

	g->refused++;
	g->refused_unlogged++;
	if (g->last_warn_ns == 0 || now - g->last_warn_ns >= WARN_INTERVAL_NS) {
		DBK_WARNLOG("%s: %s (RLIMIT_NOFILE %lu): refused %llu connection(s) in the last second, %llu in all",
			    g->what, why, nofile_limit(), (unsigned long long)g->refused_unlogged,
			    (unsigned long long)g->refused);
		g->refused_unlogged = 0;
		g->last_warn_ns = now;
	}
}

/* Closes a connection we cannot serve: an RST, so the host learns at once and nothing lingers in TIME_WAIT. */
static void drop(int fd)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

int dbk_accept_guarded(struct dbk_accept_guard *g, int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd >= 0) {
		if (g->headroom && (unsigned long)fd + g->headroom >= nofile_limit()) {
			drop(fd);
			refused(g, "too few file descriptors left");
			errno = EMFILE;
			return -1;
		}
		return fd;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED)
		return -1;
	if (errno != EMFILE && errno != ENFILE) {
		int e = errno;

		DBK_ERRLOG("%s: accept: %s", g->what, strerror(e));
		errno = e;
		return -1;
	}
	/* Out of fds: give the spare up for a moment to take the connection off the backlog and close it. */
	if (g->spare < 0)
		g->spare = open_spare();
	if (g->spare >= 0) {
		close(g->spare);
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			drop(fd);
		g->spare = open_spare(); /* -1 if another thread took the slot: reopened next time */
		if (fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return -1;
	}
	refused(g, "out of file descriptors");
	errno = EMFILE;
	return -1;
}
