/*
 * accept(2) for listeners that must survive running out of file descriptors.
 *
 * A level-triggered listener whose accept() fails with EMFILE stays readable,
 * so a plain "log and return" spins the reactor at 100 % and floods the log
 * while the connections wait in the backlog forever. dbk_accept_guarded():
 *  - keeps headroom: a connection whose fd lands within `headroom` of
 *    RLIMIT_NOFILE is closed at once (the kernel hands out the lowest free fd,
 *    so such an fd means that many are in use), leaving fds for the RPC
 *    server, new bdevs, event queues and pipes;
 *  - on EMFILE/ENFILE, closes the guard's spare fd (/dev/null, opened by
 *    dbk_accept_guard_init), accepts the connection, closes it and reopens the
 *    spare: the host sees its connection closed instead of hanging, and the
 *    backlog drains, so the listener stops being readable;
 *  - logs one warning per second at most, with the number refused since.
 * One guard per listener, used from the listener's thread only (no lock).
 * Cold path: nothing here runs per I/O.
 */
#ifndef DBK_UTIL_ACCEPT_GUARD_H
#define DBK_UTIL_ACCEPT_GUARD_H

#include <stdint.h>

struct dbk_accept_guard {
	const char *what;	/* "nvmf_tcp 127.0.0.1:4420", for the log */
	unsigned headroom;	/* fds to keep free; 0: none (only the EMFILE spare) */
	int spare;		/* -1 when it could not be (re)opened */
	uint64_t refused;	/* connections closed for want of fds, in all */
	uint64_t refused_unlogged;
	uint64_t last_warn_ns;
};

/* Opens the spare fd. Returns 0 or a negative errno (the guard still works, without the spare). */
int dbk_accept_guard_init(struct dbk_accept_guard *g, const char *what, unsigned headroom);
void dbk_accept_guard_fini(struct dbk_accept_guard *g);

/*
 * accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC) with the above.
 * Returns the fd, or -1 with errno: EAGAIN (nothing pending), EMFILE (a
 * connection was refused: call again, more may be pending), or another
 * accept error (already logged unless EINTR/ECONNABORTED).
 */
int dbk_accept_guarded(struct dbk_accept_guard *g, int lfd);

#endif
