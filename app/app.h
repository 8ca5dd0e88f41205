/* daosblk-tgt internals: options, the start/stop sequence and the JSON config loader. */
#ifndef DBK_APP_APP_H
#define DBK_APP_APP_H

#include <stdbool.h>

#include "thread/thread.h"

struct dbk_app_opts {
	struct dbk_reactor_opts reactor;
	const char *cpumask;
	const char *rpc_socket;
	const char *json_config;	/* -c FILE or NULL */
	bool wait_for_rpc;
	const char *dfs_engine;		/* NULL: module default */
	const char *dfs_root;
	const char *metrics;		/* --metrics ADDR:PORT or NULL (off) */
};

/* Run the target until SIGINT/SIGTERM (or a failed start). Returns the exit status. */
int dbk_app_run(const struct dbk_app_opts *opts);

/*
 * Apply a JSON config file ({"subsystems":[{"subsystem","config":[{"method","params"}]}]}):
 * "bdev" first, then "nvmf", then the others, each entry through
 * dbk_rpc_call_local, one after the other. On the main reactor; cb(ctx, rc)
 * runs once at the end (rc 0, or non-zero after printing which entry failed).
 * *stop is checked between entries (shutdown requested: rc -ECANCELED).
 */
void dbk_app_load_config(const char *path, const bool *stop, void (*cb)(void *ctx, int rc), void *ctx);

#endif
