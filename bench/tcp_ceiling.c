/*
 * daosblk-tcp-ceiling: raw loopback TCP throughput between two pinned threads, no NVMe.
 *
 * One TCP connection over 127.0.0.1 (ephemeral port). The sender thread, pinned to --send-core,
 * send()s --size bytes per message into a non-blocking socket, retrying at once on EAGAIN (and
 * finishing a message a short send() left half done); the receiver thread, pinned to --recv-core,
 * recv()s into a --size buffer in the same busy-polling loop. Both sockets have TCP_NODELAY, as
 * daosblk-tgt and daosblk-perf set it. After --seconds the sender stops, the receiver drains to EOF,
 * and the totals of both sides must agree.
 *
 * Throughput is the receiver's byte count over the window (GB/s = 1e9 bytes/s). Both threads poll,
 * so both show ~100 % CPU; "busy %" is the share of the window spent inside send()/recv() calls that
 * moved data, which tells the saturated side (near 100 %) from the one that mostly finds nothing to
 * do. Over loopback the sender's send() also runs the receive-side TCP processing (softirq) on the
 * sender's core, so the sender is usually the one that saturates.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct side {
	const char *name;
	int fd;
	int core;           /* -1: not pinned */
	size_t size;
	char *buf;
	int err;            /* errno of a failure, 0 if none */
	const char *what;   /* the call that failed */
	/* measured by the thread itself over its own run */
	uint64_t bytes;     /* all bytes moved, window and drain */
	uint64_t calls, eagain, msgs, win_msgs;
	uint64_t busy_ns;   /* time inside calls that moved data, until stop */
	double wall_s, user_s, sys_s;
};

static atomic_int g_go;      /* 1: start, 2: stop */
static atomic_int g_failed;  /* a side failed: the other stops waiting for it */
static atomic_uint_fast64_t g_rx_bytes; /* receiver's running count, read by main at the window end */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double tv_s(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void fail(struct side *s, const char *what, int err)
{
	s->what = what;
	s->err = err;
	atomic_store(&g_failed, 1);
	atomic_store(&g_go, 2);
}

static void *sender(void *arg)
{
	struct side *s = arg;
	while (atomic_load(&g_go) == 0)
		;
	struct rusage r0, r1;
	getrusage(RUSAGE_THREAD, &r0);
	uint64_t t0 = now_ns(), stop_at = 0;
	size_t off = 0;
	while (atomic_load_explicit(&g_go, memory_order_relaxed) == 1) {
		uint64_t c0 = now_ns();
		ssize_t n = send(s->fd, s->buf + off, s->size - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		s->calls++;
		if (n > 0) {
			s->busy_ns += now_ns() - c0;
			s->bytes += (uint64_t)n;
			off += (size_t)n;
			if (off == s->size) {
				off = 0;
				s->msgs++;
			}
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			s->eagain++;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else {
			fail(s, "send", n < 0 ? errno : EPIPE);
			break;
		}
	}
	stop_at = now_ns();
	getrusage(RUSAGE_THREAD, &r1);
	s->win_msgs = s->msgs;
	s->wall_s = (double)(stop_at - t0) / 1e9;
	s->user_s = tv_s(r1.ru_utime) - tv_s(r0.ru_utime);
	s->sys_s = tv_s(r1.ru_stime) - tv_s(r0.ru_stime);
	/* No half message at the end: finish it so the stream stays whole (not timed). */
	while (off != 0 && !atomic_load(&g_failed)) {
		ssize_t n = send(s->fd, s->buf + off, s->size - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			s->bytes += (uint64_t)n;
			off = (off + (size_t)n) % s->size;
			if (off == 0)
				s->msgs++;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			continue;
		} else {
			fail(s, "send", n < 0 ? errno : EPIPE);
		}
	}
	shutdown(s->fd, SHUT_WR);
	return NULL;
}

static void *receiver(void *arg)
{
	struct side *s = arg;
	while (atomic_load(&g_go) == 0)
		;
	struct rusage r0, r1;
	getrusage(RUSAGE_THREAD, &r0);
	uint64_t t0 = now_ns();
	bool stopped = false;
	for (;;) {
		if (!stopped && atomic_load_explicit(&g_go, memory_order_relaxed) == 2) {
			uint64_t t1 = now_ns();
			getrusage(RUSAGE_THREAD, &r1);
			s->wall_s = (double)(t1 - t0) / 1e9;
			s->user_s = tv_s(r1.ru_utime) - tv_s(r0.ru_utime);
			s->sys_s = tv_s(r1.ru_stime) - tv_s(r0.ru_stime);
			stopped = true;
		}
		uint64_t c0 = now_ns();
		ssize_t n = recv(s->fd, s->buf, s->size, MSG_DONTWAIT);
		if (n > 0) {
			s->bytes += (uint64_t)n;
			atomic_store_explicit(&g_rx_bytes, s->bytes, memory_order_relaxed);
			if (!stopped) {
				s->calls++;
				s->busy_ns += now_ns() - c0;
			}
		} else if (n == 0) {
			break; /* sender's FIN: everything has arrived */
		} else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
			if (!stopped) {
				s->calls++;
				s->eagain++;
			}
		} else {
			fail(s, "recv", errno);
			break;
		}
	}
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: daosblk-tcp-ceiling [options]\n"
		"Raw loopback TCP throughput in one direction between two pinned threads (no NVMe): the\n"
		"sender send()s SIZE bytes per message into a non-blocking socket, the receiver recv()s into\n"
		"a SIZE buffer; both busy-poll (retry at once on EAGAIN), TCP_NODELAY, 127.0.0.1, ephemeral port.\n"
		"\n"
		"  --size BYTES     bytes per send() and receive buffer size; K/M suffix = KiB/MiB (128K)\n"
		"  --seconds S      length of the measured window, may be fractional (5)\n"
		"  --send-core N    pin the sender thread to core N, -1 = not pinned (0)\n"
		"  --recv-core N    pin the receiver thread to core N, -1 = not pinned (1)\n"
		"  --congestion-control NAME  TCP congestion control of both ends, set before listen()/connect()\n"
		"                   (default: the system's; see /proc/sys/net/ipv4/tcp_available_congestion_control)\n"
		"  --json           one JSON object on stdout instead of the text lines\n"
		"  -h, --help       this text\n"
		"\n"
		"GB/s = 1e9 bytes/s received over the window. CPU %% = the thread's utime+stime over the\n"
		"window (getrusage RUSAGE_THREAD; 100 = one core); both threads poll, so both are near 100.\n"
		"busy %% = share of the window spent inside send()/recv() calls that moved data: the\n"
		"saturated side is near 100. Loopback runs the receive-side TCP work on the sender's core.\n"
		"Exit status: 0 when data moved and both sides' totals agree, 1 on failure, 2 on bad usage.\n");
}

static int parse_size(const char *s, size_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || s[0] == '-')
		return -1;
	if (*end == 'K' || *end == 'k') {
		v *= 1024, end++;
	} else if (*end == 'M' || *end == 'm') {
		v *= 1024 * 1024, end++;
	}
	if (*end != '\0' || v == 0 || v > 64ull * 1024 * 1024)
		return -1;
	*out = (size_t)v;
	return 0;
}

static int parse_core(const char *s, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < -1 || v >= CPU_SETSIZE)
		return -1;
	*out = (int)v;
	return 0;
}

static void print_side_json(const struct side *s, double window_s)
{
	double cpu = s->wall_s > 0 ? 100.0 * (s->user_s + s->sys_s) / s->wall_s : 0;
	printf("\"%s\": {\"core\": %d, \"cpu_pct\": %.1f, \"user_pct\": %.1f, \"sys_pct\": %.1f, "
	       "\"busy_pct\": %.1f, \"calls\": %" PRIu64 ", \"eagain\": %" PRIu64 ", \"bytes\": %" PRIu64 "}",
	       s->name, s->core, cpu, s->wall_s > 0 ? 100.0 * s->user_s / s->wall_s : 0,
	       s->wall_s > 0 ? 100.0 * s->sys_s / s->wall_s : 0,
	       window_s > 0 ? 100.0 * (double)s->busy_ns / 1e9 / window_s : 0, s->calls, s->eagain, s->bytes);
}

static void print_side_text(const struct side *s, double window_s)
{
	double cpu = s->wall_s > 0 ? 100.0 * (s->user_s + s->sys_s) / s->wall_s : 0;
	char core[16];
	if (s->core < 0)
		snprintf(core, sizeof(core), "unpinned");
	else
		snprintf(core, sizeof(core), "core %d", s->core);
	printf("%-8s (%s): CPU %5.1f %% (user %.1f, sys %.1f), busy %5.1f %%, %" PRIu64 " calls, %" PRIu64
	       " EAGAIN\n",
	       s->name, core, cpu, s->wall_s > 0 ? 100.0 * s->user_s / s->wall_s : 0,
	       s->wall_s > 0 ? 100.0 * s->sys_s / s->wall_s : 0,
	       window_s > 0 ? 100.0 * (double)s->busy_ns / 1e9 / window_s : 0, s->calls, s->eagain);
}

int main(int argc, char **argv)
{
	size_t size = 128 * 1024;
	double seconds = 5;
	int send_core = 0, recv_core = 1;
	bool json = false;
	const char *cc = NULL;
	enum { O_SIZE = 256, O_SECONDS, O_SEND_CORE, O_RECV_CORE, O_JSON, O_CC };
	static const struct option opts[] = {
		{"size", required_argument, NULL, O_SIZE},
		{"seconds", required_argument, NULL, O_SECONDS},
		{"send-core", required_argument, NULL, O_SEND_CORE},
		{"recv-core", required_argument, NULL, O_RECV_CORE},
		{"json", no_argument, NULL, O_JSON},
		{"congestion-control", required_argument, NULL, O_CC},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case O_SIZE:
			if (parse_size(optarg, &size) != 0) {
				fprintf(stderr, "tcp-ceiling: --size: a byte count from 1 to 64M, got '%s'\n", optarg);
				return 2;
			}
			break;
		case O_SECONDS:
			errno = 0;
			seconds = strtod(optarg, &end);
			if (errno || end == optarg || *end != '\0' || !(seconds > 0 && seconds <= 86400)) {
				fprintf(stderr, "tcp-ceiling: --seconds: a number above 0, got '%s'\n", optarg);
				return 2;
			}
			break;
		case O_SEND_CORE:
		case O_RECV_CORE:
			if (parse_core(optarg, c == O_SEND_CORE ? &send_core : &recv_core) != 0) {
				fprintf(stderr, "tcp-ceiling: --%s-core: a core number or -1, got '%s'\n",
					c == O_SEND_CORE ? "send" : "recv", optarg);
				return 2;
			}
			break;
		case O_JSON:
			json = true;
			break;
		case O_CC:
			cc = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tcp-ceiling: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}

	/* Connection: listener on 127.0.0.1:0, connect, accept. */
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof(sa);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cc && lfd >= 0 && cfd >= 0 &&
	    (setsockopt(lfd, IPPROTO_TCP, TCP_CONGESTION, cc, (socklen_t)strlen(cc)) != 0 ||
	     setsockopt(cfd, IPPROTO_TCP, TCP_CONGESTION, cc, (socklen_t)strlen(cc)) != 0)) {
		fprintf(stderr, "tcp-ceiling: --congestion-control %s: %s (see "
			"/proc/sys/net/ipv4/tcp_available_congestion_control)\n", cc, strerror(errno));
		return 2;
	}
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 1) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0) {
		fprintf(stderr, "tcp-ceiling: listen on 127.0.0.1: %s\n", strerror(errno));
		return 1;
	}
	if (cfd < 0 || connect(cfd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		fprintf(stderr, "tcp-ceiling: connect to 127.0.0.1:%u: %s\n", ntohs(sa.sin_port), strerror(errno));
		return 1;
	}
	int afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (afd < 0) {
		fprintf(stderr, "tcp-ceiling: accept: %s\n", strerror(errno));
		return 1;
	}
	close(lfd);
	char ccname[32] = "";	/* what the kernel runs on the sending side */
	socklen_t ccl = sizeof(ccname) - 1;
	if (getsockopt(cfd, IPPROTO_TCP, TCP_CONGESTION, ccname, &ccl) != 0)
		snprintf(ccname, sizeof(ccname), "?");
	int one = 1;
	if (fcntl(cfd, F_SETFL, O_NONBLOCK) != 0 || fcntl(afd, F_SETFL, O_NONBLOCK) != 0) {
		fprintf(stderr, "tcp-ceiling: O_NONBLOCK: %s\n", strerror(errno));
		return 1;
	}
	setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(afd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	struct side snd = {.name = "sender", .fd = cfd, .core = send_core, .size = size};
	struct side rcv = {.name = "receiver", .fd = afd, .core = recv_core, .size = size};
	snd.buf = malloc(size);
	rcv.buf = malloc(size);
	if (!snd.buf || !rcv.buf) {
		fprintf(stderr, "tcp-ceiling: out of memory\n");
		free(snd.buf);
		free(rcv.buf);
		return 1;
	}
	memset(snd.buf, 0xa5, size);
	memset(rcv.buf, 0, size);

	pthread_t ts, tr;
	if (pthread_create(&tr, NULL, receiver, &rcv) != 0 || pthread_create(&ts, NULL, sender, &snd) != 0) {
		fprintf(stderr, "tcp-ceiling: pthread_create failed\n");
		exit(1); /* a started thread still uses its buffer */
	}
	/* Pin from here (before the start flag) so a bad core number fails before any traffic. */
	int rc_s = 0, rc_r = 0;
	if (send_core >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(send_core, &set);
		rc_s = pthread_setaffinity_np(ts, sizeof(set), &set);
	}
	if (recv_core >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(recv_core, &set);
		rc_r = pthread_setaffinity_np(tr, sizeof(set), &set);
	}
	if (rc_s || rc_r) {
		fprintf(stderr, "tcp-ceiling: cannot pin the %s to core %d: %s\n", rc_s ? "sender" : "receiver",
			rc_s ? send_core : recv_core, strerror(rc_s ? rc_s : rc_r));
		atomic_store(&g_go, 2);
		shutdown(cfd, SHUT_RDWR);
		shutdown(afd, SHUT_RDWR);
		pthread_join(ts, NULL);
		pthread_join(tr, NULL);
		free(snd.buf);
		free(rcv.buf);
		return 1;
	}
	uint64_t t0 = now_ns();
	atomic_store(&g_go, 1);
	struct timespec ts_sleep = {.tv_sec = (time_t)seconds,
				    .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9)};
	while (nanosleep(&ts_sleep, &ts_sleep) != 0 && errno == EINTR)
		;
	uint64_t rx_at_end = atomic_load(&g_rx_bytes);
	uint64_t t1 = now_ns();
	int expected = 1;
	atomic_compare_exchange_strong(&g_go, &expected, 2);
	pthread_join(ts, NULL);
	pthread_join(tr, NULL);
	close(cfd);
	close(afd);
	free(snd.buf);
	free(rcv.buf);

	double window = (double)(t1 - t0) / 1e9;
	double gbps = (double)rx_at_end / window / 1e9;
	int rc = 0;
	const char *problem = NULL;
	char msg[160];
	if (snd.err || rcv.err) {
		struct side *f = snd.err ? &snd : &rcv;
		snprintf(msg, sizeof(msg), "%s failed: %s", f->what, strerror(f->err));
		problem = msg;
	} else if (rx_at_end == 0) {
		problem = "no data moved";
	} else if (snd.bytes != rcv.bytes) {
		snprintf(msg, sizeof(msg), "sent %" PRIu64 " bytes but received %" PRIu64, snd.bytes, rcv.bytes);
		problem = msg;
	}
	if (problem) {
		fprintf(stderr, "tcp-ceiling: %s\n", problem);
		rc = 1;
	}

	if (json) {
		printf("{\"congestion_control\": \"%s\", ", ccname);
		printf("\"size\": %zu, \"seconds\": %.3f, \"send_core\": %d, \"recv_core\": %d, "
		       "\"bytes\": %" PRIu64 ", \"messages\": %" PRIu64 ", \"gbps\": %.3f, \"gibps\": %.3f, "
		       "\"sent_total\": %" PRIu64 ", \"received_total\": %" PRIu64 ", \"ok\": %s, ",
		       size, window, send_core, recv_core, rx_at_end, snd.win_msgs, gbps,
		       (double)rx_at_end / window / (1024.0 * 1024 * 1024), snd.bytes, rcv.bytes,
		       rc == 0 ? "true" : "false");
		print_side_json(&snd, window);
		printf(", ");
		print_side_json(&rcv, window);
		printf("}\n");
	} else {
		printf("loopback TCP (%s), %zu B send()s, %.2f s: %.2f GB/s (%.2f GiB/s), %" PRIu64 " bytes received\n",
		       ccname, size, window, gbps, (double)rx_at_end / window / (1024.0 * 1024 * 1024), rx_at_end);
		print_side_text(&snd, window);
		print_side_text(&rcv, window);
	}
	return rc;
}
