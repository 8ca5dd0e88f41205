/*
 * mpath_probe: a write-and-verify loop on a block device for the failover tests, run inside the
 * kernel-initiator guest (compiled statically on the host: cc -O2 -static; the guest has no libc).
 *
 *   mpath_probe DEV FIRST_BLOCK NBLOCKS STOPFILE [PROGRESSFILE]
 *
 * Writes 4 KiB blocks FIRST_BLOCK .. FIRST_BLOCK+NBLOCKS-1 round robin with O_DIRECT|O_DSYNC (every write is
 * durable when it returns: the kernel sends FUA or a flush), each tagged with a sequence number and a pattern
 * derived from it, reads each one back (O_DIRECT) and compares. Every completed write+read pair is one op;
 * the time between two completed ops is a "gap". Runs until STOPFILE exists, then re-reads every block and
 * checks it holds the last data written there. Writes the op count to PROGRESSFILE (if given) about every
 * 100 ms so a script can wait for progress.
 *
 * Prints (guest console; the host test parses the @@ lines):
 *   @@DBK-VALUE:probe_t0=S@@  when it started (CLOCK_MONOTONIC seconds)
 *   @@DBK-GAP:T_S,LEN_MS@@    every gap of 100 ms or more: its start (seconds since the probe started) and length
 *   @@DBK-VALUE:probe_max_gap_ms=N@@, probe_ops=N, probe_errors=N, probe_verified=N
 * Exit 0 if no I/O error reached it and everything verified; 1 otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BS 4096
#define MAGIC 0x44424b4d50524f42ull	/* "DBKMPROB" */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fill(uint64_t *b, uint64_t seq, uint64_t blk)
{
	uint64_t x = seq * 0x9E3779B97F4A7C15ull ^ blk;

	b[0] = MAGIC;
	b[1] = seq;
	b[2] = blk;
	for (size_t i = 3; i < BS / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = x;
	}
}

int main(int argc, char **argv)
{
	const char *dev, *stop, *prog;
	uint64_t first, n, *last, seq = 0, ops = 0, errors = 0, verified = 0;
	uint64_t *wb, *rb;
	double t0, tlast, tprog = 0, max_gap = 0;
	int fd;

	if (argc < 5) {
		fprintf(stderr, "usage: %s DEV FIRST_BLOCK NBLOCKS STOPFILE [PROGRESSFILE]\n", argv[0]);
		return 2;
	}
	dev = argv[1];
	first = strtoull(argv[2], NULL, 0);
	n = strtoull(argv[3], NULL, 0);
	stop = argv[4];
	prog = argc > 5 ? argv[5] : NULL;
	fd = open(dev, O_RDWR | O_DIRECT | O_DSYNC);
	if (fd < 0 || n == 0) {
		fprintf(stderr, "mpath_probe: cannot open %s: %s\n", dev, strerror(errno));
		return 2;
	}
	last = calloc(n, sizeof(*last));
	if (!last || posix_memalign((void **)&wb, BS, BS) || posix_memalign((void **)&rb, BS, BS))
		return 2;
	t0 = tlast = now_s();
	printf("@@DBK-VALUE:probe_t0=%.3f@@\n", t0);	/* CLOCK_MONOTONIC: the guest's uptime, to place the gaps */
	fflush(stdout);
	while (access(stop, F_OK) != 0) {
		uint64_t k = seq % n, blk = first + k;
		ssize_t w, r;
		double t;

		seq++;
		fill(wb, seq, blk);
		w = pwrite(fd, wb, BS, (off_t)(blk * BS));
		if (w != BS) {
			errors++;
			printf("mpath_probe: write of block %llu failed: %s\n", (unsigned long long)blk,
			       w < 0 ? strerror(errno) : "short write");
			usleep(10000);
			continue;
		}
		last[k] = seq;
		r = pread(fd, rb, BS, (off_t)(blk * BS));
		if (r != BS) {
			errors++;
			printf("mpath_probe: read of block %llu failed: %s\n", (unsigned long long)blk,
			       r < 0 ? strerror(errno) : "short read");
			usleep(10000);
			continue;
		}
		if (memcmp(wb, rb, BS) != 0) {
			errors++;
			printf("mpath_probe: block %llu read back differs (seq %llu)\n", (unsigned long long)blk,
			       (unsigned long long)seq);
		}
		ops++;
		t = now_s();
		if (t - tlast > max_gap)
			max_gap = t - tlast;
		if (t - tlast >= 0.1) {
			printf("@@DBK-GAP:%.3f,%.1f@@\n", tlast - t0, (t - tlast) * 1e3);
			fflush(stdout);
		}
		tlast = t;
		if (prog && t - tprog >= 0.1) {
			FILE *f = fopen(prog, "w");

			if (f) {
				fprintf(f, "%llu\n", (unsigned long long)ops);
				fclose(f);
			}
			tprog = t;
		}
	}
	for (uint64_t k = 0; k < n; k++) {
		if (!last[k])
			continue;
		fill(wb, last[k], first + k);
		if (pread(fd, rb, BS, (off_t)((first + k) * BS)) != BS || memcmp(wb, rb, BS) != 0) {
			errors++;
			printf("mpath_probe: final check of block %llu failed (seq %llu)\n",
			       (unsigned long long)(first + k), (unsigned long long)last[k]);
		} else {
			verified++;
		}
	}
	printf("@@DBK-VALUE:probe_max_gap_ms=%.0f@@\n@@DBK-VALUE:probe_ops=%llu@@\n"
	       "@@DBK-VALUE:probe_errors=%llu@@\n@@DBK-VALUE:probe_verified=%llu@@\n",
	       max_gap * 1e3, (unsigned long long)ops, (unsigned long long)errors, (unsigned long long)verified);
	printf("mpath_probe: %llu ops, %llu blocks verified, %llu errors, longest gap %.0f ms\n",
	       (unsigned long long)ops, (unsigned long long)verified, (unsigned long long)errors, max_gap * 1e3);
	close(fd);
	free(last);
	free(wb);
	free(rb);
	return errors ? 1 : 0;
}
