/* The socket seam (sock.h) over a plain TCP socket: the system calls themselves. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nvmf/tcp/sock.h"

static ssize_t plain_readv(struct dbk_tcp_sock *s, const struct iovec *iov, int iovcnt)
{
	if (iovcnt == 1)
		return recv(s->fd, iov[0].iov_base, iov[0].iov_len, 0);
	return readv(s->fd, iov, iovcnt);
}

static ssize_t plain_writev(struct dbk_tcp_sock *s, const struct iovec *iov, int iovcnt, unsigned flags)
{
	struct msghdr mh = {.msg_iov = (struct iovec *)(uintptr_t)iov, .msg_iovlen = (size_t)iovcnt};
	return sendmsg(s->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT | ((flags & DBK_SOCK_F_MORE) ? MSG_MORE : 0));
}

static ssize_t plain_splice(struct dbk_tcp_sock *s, int pipe_rd, size_t len, unsigned flags)
{
	return splice(pipe_rd, NULL, s->fd, NULL, len,
		      SPLICE_F_MOVE | SPLICE_F_NONBLOCK | ((flags & DBK_SOCK_F_MORE) ? SPLICE_F_MORE : 0));
}

static void plain_close(struct dbk_tcp_sock *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

const struct dbk_tcp_sock_ops dbk_tcp_sock_plain_ops = {
	.name = "plain",
	.readv = plain_readv,
	.writev = plain_writev,
	.splice = plain_splice,
	.close = plain_close,
};
