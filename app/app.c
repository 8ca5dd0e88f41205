/*
 * daosblk-tgt's life cycle, all on the main reactor:
 *   start: [--metrics endpoint] [RPC server in startup state, wait for framework_start_init]
 *          bdev layer -> NVMe-oF target -> RPC server -> -c config -> ready (sd_notify READY=1)
 *   stop (SIGINT/SIGTERM via a signalfd, spdk_kill_instance, failed start):
 *          (sd_notify STOPPING=1) RPC server -> metrics endpoint (after the scrape in flight) -> NVMe-oF target
 *          (listeners stop, qpairs disconnect once every request they execute has completed) -> bdev layer
 *          -> reactors
 */
#include "keyring/keyring.h"
#include "app/app.h"
#include "app/notify.h"

#include "rpc/metrics.h"
#include "rpc/rpc.h"
#include "util/log.h"
#ifdef DBK_HAVE_BDEV
#include "bdev/bdev.h"
#endif
#ifdef DBK_HAVE_NVMF
#include "nvmf/nvmf.h"
#endif

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

static struct {
	const struct dbk_app_opts *opts;
	int exit_code;
	int sigfd;
	struct dbk_fd_handler *sig_h;
	bool bdev_up, nvmf_up, rpc_up, metrics_up;
	bool initializing;	/* config being applied: shutdown waits for the current entry */
	bool stop_requested;
	bool stopping;
} g_app = {.sigfd = -1};

static void app_stop(int exit_code);

/* ------------------------------------------------------------ shutdown */

static void bdev_fini_done(void *ctx)
{
	(void)ctx;
	dbk_keyring_cleanup();	/* hosts dropped their keys with their subsystems */
	dbk_reactors_stop();
}

static void nvmf_fini_done(void *ctx)
{
	(void)ctx;
	g_app.nvmf_up = false;
#ifdef DBK_HAVE_BDEV
	if (g_app.bdev_up) {
		g_app.bdev_up = false;
		dbk_bdev_subsystem_fini(bdev_fini_done, NULL);
		return;
	}
#endif
	bdev_fini_done(NULL);
}

static void metrics_stopped(void *ctx)
{
	(void)ctx;
#ifdef DBK_HAVE_NVMF
	if (g_app.nvmf_up) {
		dbk_nvmf_tgt_fini(nvmf_fini_done, NULL);
		return;
	}
#endif
	nvmf_fini_done(NULL);
}

static void app_stop(int exit_code)
{
	if (exit_code && !g_app.exit_code)
		g_app.exit_code = exit_code;
	g_app.stop_requested = true;
	if (g_app.initializing || g_app.stopping)
		return;		/* the config loader stops after its current entry and calls us again */
	g_app.stopping = true;
	dbk_notify("STOPPING=1\nSTATUS=shutting down");
	if (g_app.rpc_up) {
		dbk_rpc_server_stop();
		g_app.rpc_up = false;
	}
	dbk_fd_unregister(&g_app.sig_h);
	if (g_app.metrics_up) {
		g_app.metrics_up = false;
		dbk_metrics_server_stop(metrics_stopped, NULL);	/* once no scrape is being gathered */
		return;
	}
	metrics_stopped(NULL);
}

static void signal_event(void *ctx, uint32_t events)
{
	struct signalfd_siginfo si;
	int signo;

	(void)ctx;
	(void)events;
	if (read(g_app.sigfd, &si, sizeof(si)) != sizeof(si))
		return;
	signo = (int)si.ssi_signo;
	if (!g_app.stop_requested)
		fprintf(stderr, "daosblk-tgt: %s received, shutting down\n", signo == SIGINT ? "SIGINT" : "SIGTERM");
	app_stop(0);
}

static void rpc_shutdown(void *ctx)
{
	(void)ctx;
	fprintf(stderr, "daosblk-tgt: shutdown requested over RPC\n");
	app_stop(0);
}

/* ------------------------------------------------------------ start */

static void print_ready(void)
{
	char cores[DBK_MAX_REACTORS * 4 + 1] = "";
	size_t off = 0;

	for (int i = 0; i < g_app.opts->reactor.num_cores && off < sizeof(cores) - 8; i++)
		off += (size_t)snprintf(cores + off, sizeof(cores) - off, "%s%u", i ? "," : "",
					g_app.opts->reactor.cores[i]);
	printf("daosblk-tgt: ready (reactors on cores %s; RPC on %s)\n", cores, g_app.opts->rpc_socket);
	fflush(stdout);
	/* Type=notify: the RPC socket listens and the -c config is applied. */
	dbk_notify("READY=1\nSTATUS=ready");
}

static void config_done(void *ctx, int rc)
{
	(void)ctx;
	g_app.initializing = false;
	if (rc != 0 && rc != -ECANCELED) {
		fprintf(stderr, "daosblk-tgt: configuration failed; shutting down\n");
		dbk_rpc_framework_init_done(rc);
		app_stop(1);
		return;
	}
	if (g_app.stop_requested) {
		dbk_rpc_framework_init_done(-ECANCELED);
		app_stop(0);
		return;
	}
	dbk_rpc_framework_init_done(0);
	print_ready();
}

static int start_rpc(void)
{
	int rc = dbk_rpc_server_start(g_app.opts->rpc_socket);

	if (rc) {
		fprintf(stderr, "daosblk-tgt: cannot serve RPC on %s: %s\n", g_app.opts->rpc_socket, strerror(-rc));
		return rc;
	}
	g_app.rpc_up = true;
	dbk_rpc_set_shutdown_fn(rpc_shutdown, NULL);
	return 0;
}

/* Subsystems, RPC (unless already up), config. */
static void init_subsystems(void *ctx)
{
	int rc;

	(void)ctx;
#ifdef DBK_HAVE_BDEV
	rc = dbk_bdev_subsystem_init();
	if (rc) {
		fprintf(stderr, "daosblk-tgt: bdev layer initialization failed: %s\n", strerror(-rc));
		goto fail;
	}
	g_app.bdev_up = true;
#endif
#ifdef DBK_HAVE_NVMF
	rc = dbk_nvmf_tgt_init();
	if (rc) {
		fprintf(stderr, "daosblk-tgt: NVMe-oF target initialization failed: %s\n", strerror(-rc));
		goto fail;
	}
	g_app.nvmf_up = true;
#endif
	if (!g_app.rpc_up) {
		rc = start_rpc();
		if (rc)
			goto fail;
	}
	/* Subsystems are up: runtime methods (bdev_*, nvmf_*) are allowed, also for the config. */
	dbk_rpc_set_state(DBK_RPC_RUNTIME);
	if (g_app.opts->json_config) {
		g_app.initializing = true;
		dbk_app_load_config(g_app.opts->json_config, &g_app.stop_requested, config_done, NULL);
		return;
	}
	config_done(NULL, 0);
	return;
fail:
	(void)rc;
	dbk_rpc_framework_init_done(rc);
	app_stop(1);
}

static void app_start(void *ctx)
{
	sigset_t set;

	(void)ctx;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	g_app.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (g_app.sigfd >= 0)
		g_app.sig_h = dbk_fd_register(g_app.sigfd, EPOLLIN, signal_event, NULL, "signals");
	if (!g_app.sig_h) {
		fprintf(stderr, "daosblk-tgt: cannot watch signals: %s\n", strerror(errno));
		app_stop(1);
		return;
	}
	if (g_app.opts->metrics) {
		char err[256];

		if (dbk_metrics_server_start(g_app.opts->metrics, err, sizeof(err)) != 0) {
			fprintf(stderr, "daosblk-tgt: cannot serve metrics on %s\n", err);
			app_stop(1);
			return;
		}
		g_app.metrics_up = true;
		printf("daosblk-tgt: metrics on http://%s/metrics\n", g_app.opts->metrics);
		fflush(stdout);
	}
	dbk_rpc_set_state(DBK_RPC_STARTUP);
	if (g_app.opts->wait_for_rpc) {
		if (start_rpc() != 0) {
			app_stop(1);
			return;
		}
		dbk_rpc_set_start_init_fn(init_subsystems, NULL);
		printf("daosblk-tgt: waiting for framework_start_init on %s\n", g_app.opts->rpc_socket);
		fflush(stdout);
		return;
	}
	init_subsystems(NULL);
}

int dbk_app_run(const struct dbk_app_opts *opts)
{
	sigset_t set;
	int rc;

	g_app.opts = opts;
	/* SIGINT/SIGTERM are read from a signalfd on the main reactor; every thread inherits the mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	rc = dbk_reactors_init(&opts->reactor);
	if (rc) {
		fprintf(stderr, "daosblk-tgt: cannot create the reactors: %s\n", strerror(-rc));
		return 1;
	}
	rc = dbk_reactors_start(app_start, NULL);
	dbk_reactors_fini();
	if (g_app.sigfd >= 0)
		close(g_app.sigfd);
	if (rc && !g_app.exit_code) {
		fprintf(stderr, "daosblk-tgt: reactors failed: %s\n", strerror(-rc));
		g_app.exit_code = 1;
	}
	return g_app.exit_code;
}
