/*
 * Fuzz harness: the JSON config loader (daosblk-tgt -c FILE, app/json_config.c).
 *
 * The input is the file. It is written to a memfd and loaded by the real
 * loader, which checks its shape and replays every entry through the real
 * RPC methods against a daemon-less target core in this process (bdev layer,
 * NVMe-oF target with TCP, in a network namespace of its own). The loader
 * must call back exactly once; then everything is torn down.
 */
#include "fuzz/common/fuzz_env.h"

#include "app/app.h"
#include "bdev/daos/bdev_daos.h"
#include "rpc/rpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static volatile bool g_done;
static int g_calls;

static void loaded(void *ctx, int rc)
{
	(void)ctx;
	(void)rc;
	g_calls++;
	g_done = true;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];

	(void)argc;
	(void)argv;
	fuzz_env_init(FUZZ_NETNS | FUZZ_QUIET_STDIO);
	if (dbk_bdev_daos_set_engine("local", fuzz_tmpdir(), err, sizeof(err)) != 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const bool no_stop = false;
	char path[64];
	int fd = memfd_create("dbk-fuzz-config", MFD_CLOEXEC);

	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	fuzz_core_up();
	g_done = false;
	g_calls = 0;
	dbk_app_load_config(path, &no_stop, loaded, NULL);
	fuzz_poll_until(&g_done, "the config loader");
	fuzz_poll_idle();
	if (g_calls != 1) {
		fprintf(fuzz_stderr, "fuzz_config: the loader called back %d times\n", g_calls);
		abort();
	}
	close(fd);
	dbk_rpc_server_stop();	/* forget run-time state of the RPC layer */
	fuzz_core_down();
	return 0;
}
