/*
 * dbk_accept_guarded with real sockets on loopback and a lowered RLIMIT_NOFILE:
 * connections are served below the headroom, refused (closed, so the peer sees
 * it) within it and when accept() itself runs out of fds, the backlog drains so
 * the listener stops being readable, and service resumes once fds are free.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "util/accept_guard.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static int g_lfd = -1;
static uint16_t g_port;
static struct rlimit g_saved;

static int setup(void **state)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);

	(void)state;
	g_lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (g_lfd < 0 || bind(g_lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(g_lfd, 128) != 0 ||
	    getsockname(g_lfd, (struct sockaddr *)&sa, &len) != 0)
		return -1;
	g_port = ntohs(sa.sin_port);
	return getrlimit(RLIMIT_NOFILE, &g_saved);
}

static int teardown(void **state)
{
	(void)state;
	close(g_lfd);
	return setrlimit(RLIMIT_NOFILE, &g_saved);
}

static int dial(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(g_port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The peer's view: 1 if the target closed (EOF or reset) within 2 s, 0 if still open. */
static int peer_closed(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char b;

	if (poll(&p, 1, 2000) != 1)
		return 0;
	return recv(fd, &b, 1, MSG_DONTWAIT) <= 0;
}

static bool listener_readable(void)
{
	struct pollfd p = {.fd = g_lfd, .events = POLLIN};
	return poll(&p, 1, 0) == 1;
}

/* Lowest free fd now: the next fd the kernel hands out. */
static int next_fd(void)
{
	int fd = dup(0);
	close(fd);
	return fd;
}

static void test_headroom(void **state)
{
	struct dbk_accept_guard g;
	int peers[3], fd;

	(void)state;
	assert_int_equal(dbk_accept_guard_init(&g, "test", 4), 0);
	/* Room for exactly one accepted connection: its fd lands below limit - headroom. */
	struct rlimit rl = g_saved;
	rl.rlim_cur = (rlim_t)next_fd() + 3 + 4 + 1; /* 3 peer sockets come first */
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	for (int i = 0; i < 3; i++)
		assert_true((peers[i] = dial()) >= 0);
	fd = dbk_accept_guarded(&g, g_lfd);
	assert_true(fd >= 0);
	/* The next one would leave fewer than 4 free: refused, and the peer sees it closed. */
	assert_int_equal(dbk_accept_guarded(&g, g_lfd), -1);
	assert_int_equal(errno, EMFILE);
	assert_int_equal(g.refused, 1);
	assert_int_equal(dbk_accept_guarded(&g, g_lfd), -1);
	assert_int_equal(errno, EMFILE);
	assert_int_equal(g.refused, 2);
	assert_int_equal(dbk_accept_guarded(&g, g_lfd), -1);
	assert_int_equal(errno, EAGAIN);
	assert_false(peer_closed(peers[0]));
	assert_true(peer_closed(peers[1]));
	assert_true(peer_closed(peers[2]));
	close(fd);
	for (int i = 0; i < 3; i++)
		close(peers[i]);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &g_saved), 0);
	dbk_accept_guard_fini(&g);
}

static void test_emfile(void **state)
{
	struct dbk_accept_guard g;
	int peers[8], fill[64], nfill = 0, fd;

	(void)state;
	assert_int_equal(dbk_accept_guard_init(&g, "test", 0), 0);
	for (int i = 0; i < 8; i++)
		assert_true((peers[i] = dial()) >= 0);
	/* Use up every fd: accept() itself fails with EMFILE. */
	struct rlimit rl = g_saved;
	rl.rlim_cur = (rlim_t)next_fd() + 4;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	while (nfill < 64 && (fill[nfill] = dup(0)) >= 0)
		nfill++;
	assert_true(nfill > 0 && nfill < 64);
	int refused = 0;
	for (int i = 0; i < 20; i++) {
		fd = dbk_accept_guarded(&g, g_lfd);
		assert_int_equal(fd, -1);
		if (errno == EAGAIN)
			break;
		assert_int_equal(errno, EMFILE);
		refused++;
	}
	assert_int_equal(refused, 8);
	assert_false(listener_readable()); /* drained: a level-triggered poller would not spin */
	for (int i = 0; i < 8; i++)
		assert_true(peer_closed(peers[i]));
	/* fds come back: service resumes. */
	for (int i = 0; i < nfill; i++)
		close(fill[i]);
	for (int i = 0; i < 8; i++)
		close(peers[i]);
	int p = dial();
	assert_true(p >= 0);
	struct pollfd pl = {.fd = g_lfd, .events = POLLIN};
	assert_int_equal(poll(&pl, 1, 2000), 1);
	fd = dbk_accept_guarded(&g, g_lfd);
	assert_true(fd >= 0);
	assert_false(peer_closed(p));
	close(fd);
	close(p);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &g_saved), 0);
	dbk_accept_guard_fini(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_headroom),
		cmocka_unit_test(test_emfile),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
