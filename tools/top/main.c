/*
 * daosblk-top: a live view of a running daosblk-tgt, refreshed every interval:
 * per bdev IOPS, MiB/s and average latency (from bdev_get_iostat, the bdev
 * core's counters), per reactor busy/idle time (framework_get_reactors).
 * Like SPDK's scripts/iostat.py, but one screen for both, and in C like the
 * other tools. Each report is the difference of two samples taken one
 * interval apart; rates use the target's own clock (the RPCs' ticks).
 *
 * Exit status: 0 success (or interrupted), 1 the target cannot be reached or answers an error, 2 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "tools/rpc/rpc_client.h"

#define DEFAULT_SOCKET "/var/tmp/daosblk.sock"
#define EXIT_USAGE 2
#define NAME_MAX_LEN 128

static const char *g_prog = "daosblk-top";

static struct {
	const char *sock;
	const char *bdev;
	double interval_s;
	double timeout_s;
	long count;	/* reports; 0: until interrupted */
	bool once;
	bool clear;
} g = {.sock = DEFAULT_SOCKET, .interval_s = 1.0, .timeout_s = 10.0};

static volatile sig_atomic_t g_stop;

static void usage(FILE *out)
{
	fprintf(out,
		"usage: daosblk-top [-s SOCKET] [-i INTERVAL] [-n COUNT] [--once] [-b BDEV]\n"
		"\n"
		"Live view of a running daosblk-tgt, refreshed every INTERVAL seconds:\n"
		"  reactors  busy%% and idle%% of each reactor's time, loop iterations and sleeps per second,\n"
		"            pollers and file descriptors it serves (framework_get_reactors)\n"
		"  bdevs     IOPS (all I/O), reads/s, writes/s, other/s (flush, unmap, write zeroes, ...),\n"
		"            read and write MiB/s, average latency of all, read and write I/O in microseconds,\n"
		"            measured by the bdev core from submission to completion (bdev_get_iostat)\n"
		"Each report covers the last interval. On a terminal the screen is cleared and redrawn;\n"
		"otherwise (or with --once) reports follow each other, separated by a blank line.\n"
		"\n"
		"options:\n"
		"  -s, --server SOCKET    the target's JSON-RPC socket (default %s)\n"
		"  -i, --interval SECS    seconds between reports (default 1; fractions allowed, 0.1 .. 3600)\n"
		"  -n, --count COUNT      print COUNT reports, then exit (default: until Ctrl-C)\n"
		"      --once             one report, no screen clearing (for scripts): same as -n 1 without a TTY\n"
		"  -b, --bdev NAME        only this bdev\n"
		"  -t, --timeout SECS     give up on an RPC answer after SECS seconds (default 10)\n"
		"  -h, --help             this help\n"
		"\n"
		"exit status: 0 success, 1 the target cannot be reached or answers an error, 2 usage error\n",
		DEFAULT_SOCKET);
}

/* ------------------------------------------------------------- RPC client */

static struct dbk_rpc_client g_cli = DBK_RPC_CLIENT_INIT("daosblk-top", DEFAULT_SOCKET, 10.0);

static double now_mono(void)
{
	return dbk_rpc_client_now();
}

/* The result of method (new reference), or NULL with the reason on stderr. */
static json_t *call(const char *method, json_t *params)
{
	char *msg = NULL;
	int code;
	json_t *result;

	g_cli.sock = g.sock;
	g_cli.timeout_s = g.timeout_s;
	result = dbk_rpc_client_call(&g_cli, method, params, &code, &msg);
	if (!result && code != 0)
		fprintf(stderr, "%s: %s: %s\n", g_prog, method, msg ? msg : "error");
	free(msg);
	return result;
}

/* ---------------------------------------------------------------- samples */

enum { K_READ, K_WRITE, K_OTHER, K_NUM };

struct bdev_sample {
	char name[NAME_MAX_LEN];
	uint64_t ops[K_NUM], bytes[K_NUM], lat[K_NUM];	/* lat: total ticks of the ops */
};

struct reactor_sample {
	char name[NAME_MAX_LEN];
	int64_t lcore;
	uint64_t busy, idle, iterations, sleeps;
	int64_t pollers, fds;
};

struct sample {
	uint64_t tick_rate, ticks;
	struct bdev_sample *b;
	size_t nb;
	struct reactor_sample *r;
	size_t nr;
};

static uint64_t u64(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

static void sample_free(struct sample *s)
{
	free(s->b);
	free(s->r);
	memset(s, 0, sizeof(*s));
}

static int take_sample(struct sample *s)
{
	static const char *const other[] = {"unmap", "write_zeroes", "compare", "flush", "reset"};
	json_t *params = g.bdev ? json_pack("{s:s}", "name", g.bdev) : NULL;
	json_t *io = call("bdev_get_iostat", params), *re, *arr;
	size_t i;

	json_decref(params);
	memset(s, 0, sizeof(*s));
	if (!io)
		return -1;
	re = call("framework_get_reactors", NULL);
	if (!re) {
		json_decref(io);
		return -1;
	}
	s->tick_rate = u64(io, "tick_rate");
	s->ticks = u64(io, "ticks");
	arr = json_object_get(io, "bdevs");
	s->nb = json_array_size(arr);
	s->b = calloc(s->nb ? s->nb : 1, sizeof(*s->b));
	for (i = 0; s->b && i < s->nb; i++) {
		const json_t *o = json_array_get(arr, i);
		struct bdev_sample *b = &s->b[i];
		const char *name = json_string_value(json_object_get(o, "name"));
		char key[64];

		snprintf(b->name, sizeof(b->name), "%s", name ? name : "?");
		b->ops[K_READ] = u64(o, "num_read_ops");
		b->bytes[K_READ] = u64(o, "bytes_read");
		b->lat[K_READ] = u64(o, "read_latency_ticks");
		b->ops[K_WRITE] = u64(o, "num_write_ops");
		b->bytes[K_WRITE] = u64(o, "bytes_written");
		b->lat[K_WRITE] = u64(o, "write_latency_ticks");
		for (size_t k = 0; k < sizeof(other) / sizeof(other[0]); k++) {
			snprintf(key, sizeof(key), "num_%s_ops", other[k]);
			b->ops[K_OTHER] += u64(o, key);
			snprintf(key, sizeof(key), "%s_latency_ticks", other[k]);
			b->lat[K_OTHER] += u64(o, key);
		}
	}
	arr = json_object_get(re, "reactors");
	s->nr = json_array_size(arr);
	s->r = calloc(s->nr ? s->nr : 1, sizeof(*s->r));
	for (i = 0; s->r && i < s->nr; i++) {
		const json_t *o = json_array_get(arr, i);
		const json_t *th = json_array_get(json_object_get(o, "lw_threads"), 0);
		const char *name = json_string_value(json_object_get(th, "name"));
		struct reactor_sample *r = &s->r[i];

		snprintf(r->name, sizeof(r->name), "%s", name ? name : "?");
		r->lcore = json_integer_value(json_object_get(o, "lcore"));
		r->busy = u64(o, "busy");
		r->idle = u64(o, "idle");
		r->iterations = u64(o, "iterations");
		r->sleeps = u64(o, "sleeps");
		r->pollers = json_integer_value(json_object_get(o, "num_pollers"));
		r->fds = json_integer_value(json_object_get(o, "num_fds"));
	}
	json_decref(io);
	json_decref(re);
	if (!s->b || !s->r) {
		fprintf(stderr, "%s: out of memory\n", g_prog);
		sample_free(s);
		return -1;
	}
	if (s->tick_rate == 0) {
		fprintf(stderr, "%s: bdev_get_iostat gave no tick_rate\n", g_prog);
		sample_free(s);
		return -1;
	}
	return 0;
}

/* ----------------------------------------------------------------- report */

static uint64_t delta(uint64_t now, uint64_t before)
{
	return now >= before ? now - before : 0; /* a counter reset (bdev recreated): count from zero */
}

static double lat_us(uint64_t ticks, uint64_t ops, uint64_t tick_rate)
{
	return ops ? (double)ticks / (double)ops * 1e6 / (double)tick_rate : 0.0;
}

static void print_report(const struct sample *a, const struct sample *b)
{
	double secs = (double)delta(b->ticks, a->ticks) / (double)b->tick_rate;
	uint64_t tot_ops[K_NUM] = {0}, tot_bytes[K_NUM] = {0}, tot_lat[K_NUM] = {0};
	char when[32];
	time_t t = time(NULL);
	struct tm tm;

	if (secs <= 0)
		secs = 1e-9;
	if (localtime_r(&t, &tm) == NULL || strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(when, sizeof(when), "?");
	if (g.clear)
		fputs("\033[H\033[2J", stdout);
	printf("daosblk-top  %s  %s  interval %.2f s\n\n", g.sock, when, secs);

	printf("%-16s %5s %7s %7s %10s %9s %8s %5s\n", "reactor", "core", "busy%", "idle%", "iter/s", "sleeps/s",
	       "pollers", "fds");
	for (size_t i = 0; i < b->nr; i++) {
		const struct reactor_sample *r = &b->r[i], *p = NULL;
		uint64_t busy, idle, it, sl;
		double tot;

		for (size_t j = 0; j < a->nr; j++)
			if (a->r[j].lcore == r->lcore && strcmp(a->r[j].name, r->name) == 0)
				p = &a->r[j];
		busy = p ? delta(r->busy, p->busy) : 0;
		idle = p ? delta(r->idle, p->idle) : 0;
		it = p ? delta(r->iterations, p->iterations) : 0;
		sl = p ? delta(r->sleeps, p->sleeps) : 0;
		tot = (double)(busy + idle);
		printf("%-16s %5" PRId64 " %7.1f %7.1f %10.0f %9.0f %8" PRId64 " %5" PRId64 "\n", r->name, r->lcore,
		       tot > 0 ? 100.0 * (double)busy / tot : 0.0, tot > 0 ? 100.0 * (double)idle / tot : 0.0,
		       (double)it / secs, (double)sl / secs, r->pollers, r->fds);
	}

	printf("\n%-16s %9s %9s %9s %8s %9s %9s %9s %9s %9s\n", "bdev", "IOPS", "read/s", "write/s", "other/s",
	       "rMiB/s", "wMiB/s", "lat_us", "rlat_us", "wlat_us");
	for (size_t i = 0; i < b->nb; i++) {
		const struct bdev_sample *c = &b->b[i], *p = NULL;
		uint64_t ops[K_NUM], bytes[K_NUM], lat[K_NUM], all_ops = 0, all_lat = 0;

		for (size_t j = 0; j < a->nb; j++)
			if (strcmp(a->b[j].name, c->name) == 0)
				p = &a->b[j];
		for (int k = 0; k < K_NUM; k++) {
			ops[k] = delta(c->ops[k], p ? p->ops[k] : 0);
			bytes[k] = delta(c->bytes[k], p ? p->bytes[k] : 0);
			lat[k] = delta(c->lat[k], p ? p->lat[k] : 0);
			all_ops += ops[k];
			all_lat += lat[k];
			tot_ops[k] += ops[k];
			tot_bytes[k] += bytes[k];
			tot_lat[k] += lat[k];
		}
		printf("%-16.16s %9.0f %9.0f %9.0f %8.0f %9.1f %9.1f %9.1f %9.1f %9.1f\n", c->name,
		       (double)all_ops / secs, (double)ops[K_READ] / secs, (double)ops[K_WRITE] / secs,
		       (double)ops[K_OTHER] / secs, (double)bytes[K_READ] / secs / 1048576.0,
		       (double)bytes[K_WRITE] / secs / 1048576.0, lat_us(all_lat, all_ops, b->tick_rate),
		       lat_us(lat[K_READ], ops[K_READ], b->tick_rate), lat_us(lat[K_WRITE], ops[K_WRITE], b->tick_rate));
	}
	if (b->nb == 0) {
		printf("(no bdevs)\n");
	} else if (b->nb > 1) {
		uint64_t all_ops = tot_ops[K_READ] + tot_ops[K_WRITE] + tot_ops[K_OTHER];
		uint64_t all_lat = tot_lat[K_READ] + tot_lat[K_WRITE] + tot_lat[K_OTHER];
		printf("%-16s %9.0f %9.0f %9.0f %8.0f %9.1f %9.1f %9.1f %9.1f %9.1f\n", "(total)",
		       (double)all_ops / secs, (double)tot_ops[K_READ] / secs, (double)tot_ops[K_WRITE] / secs,
		       (double)tot_ops[K_OTHER] / secs, (double)tot_bytes[K_READ] / secs / 1048576.0,
		       (double)tot_bytes[K_WRITE] / secs / 1048576.0, lat_us(all_lat, all_ops, b->tick_rate),
		       lat_us(tot_lat[K_READ], tot_ops[K_READ], b->tick_rate),
		       lat_us(tot_lat[K_WRITE], tot_ops[K_WRITE], b->tick_rate));
	}
	fflush(stdout);
}

/* ------------------------------------------------------------------- main */

static void on_signal(int signo)
{
	(void)signo;
	g_stop = 1;
}

/* Sleep until the monotonic time t (false if interrupted by a signal that asks to stop). */
static bool sleep_until(double t)
{
	for (;;) {
		double left = t - now_mono();
		struct timespec ts;

		if (g_stop)
			return false;
		if (left <= 0)
			return true;
		ts.tv_sec = (time_t)left;
		ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
		nanosleep(&ts, NULL);
	}
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	enum { OPT_ONCE = 256 };
	static const struct option longopts[] = {
		{"server", required_argument, NULL, 's'},
		{"interval", required_argument, NULL, 'i'},
		{"count", required_argument, NULL, 'n'},
		{"once", no_argument, NULL, OPT_ONCE},
		{"bdev", required_argument, NULL, 'b'},
		{"timeout", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct sample prev, cur;
	struct sigaction sa;
	double next;
	long done = 0;
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, "s:i:n:b:t:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's': g.sock = optarg; break;
		case 'b': g.bdev = optarg; break;
		case 'i':
			if (parse_double(optarg, 0.1, 3600, &g.interval_s) != 0) {
				fprintf(stderr, "%s: -i: '%s' is not a number of seconds from 0.1 to 3600\n", g_prog, optarg);
				return EXIT_USAGE;
			}
			break;
		case 't':
			if (parse_double(optarg, 0.001, 1e6, &g.timeout_s) != 0) {
				fprintf(stderr, "%s: -t: '%s' is not a positive number of seconds\n", g_prog, optarg);
				return EXIT_USAGE;
			}
			break;
		case 'n': {
			char *end;
			errno = 0;
			g.count = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || g.count < 1) {
				fprintf(stderr, "%s: -n: '%s' is not a positive count\n", g_prog, optarg);
				return EXIT_USAGE;
			}
			break;
		}
		case OPT_ONCE: g.once = true; break;
		case 'h': usage(stdout); return 0;
		default:
			fprintf(stderr, "%s: see --help for the options\n", g_prog);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", g_prog, argv[optind]);
		return EXIT_USAGE;
	}
	if (g.once) {
		if (g.count > 1) {
			fprintf(stderr, "%s: --once and -n %ld contradict each other\n", g_prog, g.count);
			return EXIT_USAGE;
		}
		g.count = 1;
	}
	g.clear = !g.once && isatty(STDOUT_FILENO);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	if (take_sample(&prev) != 0) {
		dbk_rpc_client_close(&g_cli);
		return 1;
	}
	next = now_mono();
	while (g.count == 0 || done < g.count) {
		next += g.interval_s;
		if (!sleep_until(next))
			break;
		if (take_sample(&cur) != 0) {
			rc = g_stop ? 0 : 1;
			break;
		}
		if (done > 0 && !g.clear)
			putchar('\n');
		print_report(&prev, &cur);
		sample_free(&prev);
		prev = cur;
		done++;
	}
	sample_free(&prev);
	dbk_rpc_client_close(&g_cli);
	return rc;
}
