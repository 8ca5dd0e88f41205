/*
 * sd_notify(3) without libsystemd: one AF_UNIX datagram to the socket named by $NOTIFY_SOCKET, a
 * path ("/run/systemd/notify") or an abstract name ("@..."). The manager checks the sender's PID
 * from the socket credentials; daosblk-tgt never forks, so every thread may send.
 */
#include "app/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void warn_once(const char *what, int err)
{
	static int warned;

	if (warned++)
		return;
	fprintf(stderr, "daosblk-tgt: cannot notify the service manager (NOTIFY_SOCKET=%s): %s: %s\n",
		getenv("NOTIFY_SOCKET"), what, strerror(err));
}

int dbk_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len;
	socklen_t salen;
	ssize_t n;
	int fd, err;

	if (!path || !*path)
		return 0;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len < 2 || len > sizeof(sa.sun_path) - (path[0] == '/')) {
		warn_once("not an absolute path or abstract (@) socket name", EINVAL);
		return -EINVAL;
	}
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';	/* abstract namespace: the name is not NUL-terminated */
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		err = errno;
		warn_once("socket", err);
		return -err;
	}
	n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (const struct sockaddr *)&sa, salen);
	err = errno;
	close(fd);
	if (n < 0) {
		warn_once("sendto", err);
		return -err;
	}
	return 1;
}
