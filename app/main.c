/* daosblk-tgt: the NVMe-over-TCP target daemon (options modelled on SPDK applications). */
#include "app/app.h"

#include "rpc/metrics.h"
#include "rpc/rpc.h"
#include "util/log.h"
#ifdef DBK_WITH_DAOS_MODULE
#include "bdev/daos/bdev_daos.h"
#endif

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DBK_VERSION_STRING "daosblk v0.1.0"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: daosblk-tgt [options]\n"
		"\n"
		"User-space NVMe-over-TCP target serving files in DAOS (DFS) containers as block devices.\n"
		"Configure it with daosblk-rpc (SPDK rpc.py-compatible) or a JSON config file.\n"
		"\n"
		"options:\n"
		"  -m, --cpumask MASK      cores to run reactors on: hex (0x3) or list ([0,1], [0-3,6]); default 0x1\n"
		"  -r, --rpc-socket PATH   JSON-RPC Unix socket (default %s)\n"
		"  -c, --json FILE         apply a configuration saved with 'daosblk-rpc save_config' at start\n"
		"                          (an empty FILE is no configuration; a missing one is an error)\n"
		"      --config FILE       same as --json\n"
		"  -L, --logflag FLAG      enable debug log flag FLAG ('all' for every flag); may repeat\n"
		"      --wait-for-rpc      wait for the framework_start_init RPC before initializing\n"
		"      --busy-poll         reactors never sleep (lowest latency, 100%% CPU per core)\n"
		"      --dfs-engine NAME   DAOS backend: local (embedded engine, default) or daos (real DAOS)\n"
		"      --dfs-root DIR      root directory of the local engine (default /var/lib/daosblk)\n"
		"      --syslog            log to syslog(3) (facility daemon) instead of stderr\n"
		"      --metrics ADDR:PORT serve Prometheus metrics at http://ADDR:PORT/metrics (off by default;\n"
		"                          e.g. 127.0.0.1:9100, [::1]:9100, 0.0.0.0:9100 for every address)\n"
		"  -h, --help              this help\n"
		"  -v, --version           print the version\n"
		"\n"
		"Log lines on stderr: [date time.usec] LEVEL component (thread) file:line function: message.\n"
		"When stderr is the systemd journal ($JOURNAL_STREAM), they carry <N> syslog priorities instead\n"
		"of the date, so journalctl -p filters them.\n"
		"SIGINT or SIGTERM shut the target down cleanly: listeners close, commands in flight complete,\n"
		"then the connections and bdevs close. Under systemd (Type=notify, $NOTIFY_SOCKET) it reports\n"
		"READY=1 once the RPC socket listens and the -c configuration is applied, and STOPPING=1.\n",
		DBK_RPC_DEFAULT_SOCKET);
}

enum { OPT_WAIT_FOR_RPC = 256, OPT_BUSY_POLL, OPT_DFS_ENGINE, OPT_DFS_ROOT, OPT_SYSLOG, OPT_METRICS };

static bool g_syslog;

static int parse_args(int argc, char **argv, struct dbk_app_opts *o)
{
	static const struct option longopts[] = {
		{"cpumask", required_argument, NULL, 'm'},
		{"rpc-socket", required_argument, NULL, 'r'},
		{"json", required_argument, NULL, 'c'},
		{"config", required_argument, NULL, 'c'},
		{"logflag", required_argument, NULL, 'L'},
		{"wait-for-rpc", no_argument, NULL, OPT_WAIT_FOR_RPC},
		{"busy-poll", no_argument, NULL, OPT_BUSY_POLL},
		{"dfs-engine", required_argument, NULL, OPT_DFS_ENGINE},
		{"dfs-root", required_argument, NULL, OPT_DFS_ROOT},
		{"syslog", no_argument, NULL, OPT_SYSLOG},
		{"metrics", required_argument, NULL, OPT_METRICS},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'v'},
		{NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "m:r:c:L:hv", longopts, NULL)) != -1) {
		switch (c) {
		case 'm': o->cpumask = optarg; break;
		case 'r': o->rpc_socket = optarg; break;
		case 'c': o->json_config = optarg; break;
		case 'L':
			if (dbk_log_enable_flag(optarg) != 0) {
				fprintf(stderr, "daosblk-tgt: -L: invalid log flag '%s'\n", optarg);
				return 1;
			}
			break;
		case OPT_WAIT_FOR_RPC: o->wait_for_rpc = true; break;
		case OPT_BUSY_POLL: o->reactor.busy_poll = true; break;
		case OPT_DFS_ENGINE: o->dfs_engine = optarg; break;
		case OPT_DFS_ROOT: o->dfs_root = optarg; break;
		case OPT_SYSLOG: g_syslog = true; break;
		case OPT_METRICS: o->metrics = optarg; break;
		case 'h': usage(stdout); exit(0);
		case 'v': printf("%s\n", DBK_VERSION_STRING); exit(0);
		default:
			fprintf(stderr, "daosblk-tgt: see --help for the options\n");
			return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "daosblk-tgt: unexpected argument '%s' (see --help)\n", argv[optind]);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct dbk_app_opts o = {.cpumask = "0x1", .rpc_socket = DBK_RPC_DEFAULT_SOCKET};
	char err[1024];

	if (parse_args(argc, argv, &o) != 0)
		return 1;
	if (dbk_parse_core_mask(o.cpumask, o.reactor.cores, &o.reactor.num_cores, err, sizeof(err)) != 0 ||
	    dbk_check_cores_usable(o.reactor.cores, o.reactor.num_cores, err, sizeof(err)) != 0) {
		fprintf(stderr, "daosblk-tgt: invalid core mask '%s': %s\n", o.cpumask, err);
		return 1;
	}
	if (o.metrics) {
		struct sockaddr_storage ss;
		socklen_t sl;

		if (dbk_metrics_parse_addr(o.metrics, &ss, &sl, err, sizeof(err)) != 0) {
			fprintf(stderr, "daosblk-tgt: --metrics: %s\n", err);
			return 1;
		}
	}
	o.reactor.pin = true;
	if (g_syslog)
		dbk_log_open(DBK_LOG_DEST_SYSLOG, "daosblk-tgt");
	else if (dbk_log_stderr_is_journal())
		dbk_log_open(DBK_LOG_DEST_JOURNAL, "daosblk-tgt");
	if (o.dfs_engine || o.dfs_root) {
#ifdef DBK_WITH_DAOS_MODULE
		if (dbk_bdev_daos_set_engine(o.dfs_engine ? o.dfs_engine : "local", o.dfs_root, err, sizeof(err)) != 0) {
			fprintf(stderr, "daosblk-tgt: --dfs-engine/--dfs-root: %s\n", err);
			return 1;
		}
#else
		fprintf(stderr, "daosblk-tgt: --dfs-engine/--dfs-root: this build has no DAOS bdev module\n");
		return 1;
#endif
	}
	return dbk_app_run(&o);
}
