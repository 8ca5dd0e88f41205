/* daosblk-rpc argument mapping: rpc.py positionals and flags -> JSON params. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tools/rpc/rpc_cli.h"

/* Build params for "method args..." (space separated) and compare with the expected JSON (NULL: no params). */
static void expect_params(const char *cmdline, const char *want_json)
{
	char buf[512], *argv[32], err[256];
	int argc = 0;
	json_t *params = NULL, *want;
	const struct dbk_cli_method *m;

	snprintf(buf, sizeof(buf), "%s", cmdline);
	for (char *tok = strtok(buf, " "); tok; tok = strtok(NULL, " "))
		argv[argc++] = tok;
	m = dbk_cli_find_method(argv[0]);
	assert_non_null(m);
	if (dbk_cli_build_params(m, argc - 1, argv + 1, &params, err, sizeof(err)) != 0)
		fail_msg("'%s' failed: %s", cmdline, err);
	if (!want_json) {
		assert_null(params);
		return;
	}
	want = json_loads(want_json, 0, NULL);
	assert_non_null(want);
	if (!json_equal(want, params)) {
		char *got = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
		fail_msg("'%s': got %s, want %s", cmdline, got, want_json);
	}
	json_decref(want);
	json_decref(params);
}

static void expect_error(const char *cmdline, const char *want)
{
	char buf[512], *argv[32], err[256] = "";
	int argc = 0;
	json_t *params = NULL;

	snprintf(buf, sizeof(buf), "%s", cmdline);
	for (char *tok = strtok(buf, " "); tok; tok = strtok(NULL, " "))
		argv[argc++] = tok;
	assert_int_equal(dbk_cli_build_params(dbk_cli_find_method(argv[0]), argc - 1, argv + 1, &params, err,
					      sizeof(err)),
			 -EINVAL);
	assert_null(params);
	if (!strstr(err, want))
		fail_msg("'%s': error '%s' does not contain '%s'", cmdline, err, want);
}

static void test_bdev(void **state)
{
	(void)state;
	expect_params("bdev_malloc_create 64 4096", "{\"block_size\":4096,\"num_blocks\":16384}");
	expect_params("bdev_malloc_create 0.5 512 -b M0 -u 0b0bd3ff-2aa5-4ad6-8c06-a1a1cf6e07f2",
		      "{\"block_size\":512,\"num_blocks\":1024,\"name\":\"M0\","
		      "\"uuid\":\"0b0bd3ff-2aa5-4ad6-8c06-a1a1cf6e07f2\"}");
	expect_params("bdev_malloc_create --name=M1 1 4096", "{\"block_size\":4096,\"num_blocks\":256,\"name\":\"M1\"}");
	expect_params("bdev_null_create N0 16 512", "{\"name\":\"N0\",\"block_size\":512,\"num_blocks\":32768}");
	expect_params("bdev_uring_create /tmp/f U0", "{\"filename\":\"/tmp/f\",\"name\":\"U0\"}");
	expect_params("bdev_uring_create /tmp/f U0 4096", "{\"filename\":\"/tmp/f\",\"name\":\"U0\",\"block_size\":4096}");
	expect_params("bdev_daos_create daosdev0 test-pool test-cont 64 4096",
		      "{\"name\":\"daosdev0\",\"pool\":\"test-pool\",\"cont\":\"test-cont\",\"block_size\":4096,"
		      "\"num_blocks\":16384}");
	expect_params("bdev_daos_create d p c 1 4096 -o RP_2G1",
		      "{\"name\":\"d\",\"pool\":\"p\",\"cont\":\"c\",\"block_size\":4096,\"num_blocks\":256,"
		      "\"oclass\":\"RP_2G1\"}");
	expect_params("bdev_daos_resize d 128", "{\"name\":\"d\",\"new_size\":128}");
	expect_params("bdev_daos_delete d", "{\"name\":\"d\"}");
	expect_params("bdev_malloc_delete M0", "{\"name\":\"M0\"}");
	expect_params("bdev_get_bdevs", NULL);
	expect_params("bdev_get_bdevs -b M0", "{\"name\":\"M0\"}");
	expect_params("bdev_get_iostat -b M0 --per-channel", "{\"name\":\"M0\",\"per_channel\":true}");
	expect_params("bdev_set_qos_limit M0 --rw_ios_per_sec 1000", "{\"name\":\"M0\",\"rw_ios_per_sec\":1000}");
}

static void test_nvmf(void **state)
{
	(void)state;
	expect_params("nvmf_create_transport -t TCP -u 2097152 -i 2097152",
		      "{\"trtype\":\"TCP\",\"io_unit_size\":2097152,\"max_io_size\":2097152}");
	expect_params("nvmf_create_transport -t TCP -q 128 -c 8192 -z -o",
		      "{\"trtype\":\"TCP\",\"max_queue_depth\":128,\"in_capsule_data_size\":8192,\"zcopy\":true,"
		      "\"c2h_success\":false}");
	expect_params("nvmf_create_subsystem nqn.2016-06.io.spdk:cnode1 -a -s SPDK00000000000001 -d SPDK_Virtual_Controller_1",
		      "{\"nqn\":\"nqn.2016-06.io.spdk:cnode1\",\"allow_any_host\":true,"
		      "\"serial_number\":\"SPDK00000000000001\",\"model_number\":\"SPDK_Virtual_Controller_1\"}");
	expect_params("nvmf_subsystem_add_ns nqn.2016-06.io.spdk:cnode1 daosdev0",
		      "{\"nqn\":\"nqn.2016-06.io.spdk:cnode1\",\"namespace\":{\"bdev_name\":\"daosdev0\"}}");
	expect_params("nvmf_subsystem_add_ns q b -n 3 -u 0b0bd3ff-2aa5-4ad6-8c06-a1a1cf6e07f2",
		      "{\"nqn\":\"q\",\"namespace\":{\"bdev_name\":\"b\",\"nsid\":3,"
		      "\"uuid\":\"0b0bd3ff-2aa5-4ad6-8c06-a1a1cf6e07f2\"}}");
	expect_params("nvmf_subsystem_add_listener nqn.2016-06.io.spdk:cnode1 -t tcp -a 10.77.0.1 -s 4420",
		      "{\"nqn\":\"nqn.2016-06.io.spdk:cnode1\",\"listen_address\":{\"trtype\":\"tcp\","
		      "\"traddr\":\"10.77.0.1\",\"trsvcid\":\"4420\",\"adrfam\":\"IPv4\"}}");
	expect_params("nvmf_subsystem_remove_listener q -t tcp -a ::1 -s 4420",
		      "{\"nqn\":\"q\",\"listen_address\":{\"trtype\":\"tcp\",\"traddr\":\"::1\",\"trsvcid\":\"4420\","
		      "\"adrfam\":\"IPv6\"}}");
	expect_params("nvmf_subsystem_remove_ns q 1", "{\"nqn\":\"q\",\"nsid\":1}");
	expect_params("nvmf_subsystem_allow_any_host q --allow-any-host", "{\"nqn\":\"q\",\"allow_any_host\":true}");
	expect_params("nvmf_subsystem_allow_any_host q --no-allow-any-host", "{\"nqn\":\"q\",\"allow_any_host\":false}");
	expect_params("nvmf_subsystem_allow_any_host q -e", "{\"nqn\":\"q\",\"allow_any_host\":true}");
	expect_params("nvmf_subsystem_add_host q h --dhchap-key k1", "{\"nqn\":\"q\",\"host\":\"h\",\"dhchap_key\":\"k1\"}");
	expect_params("nvmf_get_subsystems", NULL);
	expect_params("nvmf_get_subsystems q", "{\"nqn\":\"q\"}");
	expect_params("nvmf_delete_subsystem q", "{\"nqn\":\"q\"}");
	expect_params("framework_get_config bdev", "{\"name\":\"bdev\"}");
	expect_params("rpc_get_methods --current", "{\"current\":true}");
}

static void test_errors(void **state)
{
	(void)state;
	expect_error("bdev_malloc_create 64", "missing argument BLOCK_SIZE");
	expect_error("bdev_malloc_create 64 4096 extra", "unexpected argument 'extra'");
	expect_error("bdev_malloc_create x 4096", "'x' is not a number");
	expect_error("bdev_malloc_create 64 4k", "'4k' is not an integer");
	expect_error("bdev_malloc_create 0.001 4096", "not a whole number of 4096-byte blocks");
	expect_error("bdev_malloc_create 16 1000", "block_size 1000 must be a multiple of 512");
	expect_error("bdev_daos_create d p c 64 4000", "block_size 4000 must be a multiple of 512");
	expect_error("bdev_malloc_create -1 4096", "TOTAL_SIZE must be a positive size");
	expect_error("bdev_malloc_create 64 4096 --bogus", "unrecognized option '--bogus'");
	expect_error("bdev_malloc_create 64 4096 -b", "needs a value");
	expect_error("nvmf_create_transport -q 3", "option --trtype TRTYPE is required");
	expect_error("nvmf_subsystem_add_listener q -t tcp", "option --traddr TRADDR is required");
	expect_error("nvmf_subsystem_allow_any_host q", "--allow-any-host");
	expect_error("nvmf_create_transport -t TCP -z=1", "unrecognized option");
	expect_error("nvmf_create_transport -t TCP --zcopy=1", "takes no value");
}

static void test_every_method_has_help(void **state)
{
	const struct dbk_cli_method *m;
	char *argv[] = {"--help"};
	json_t *params;
	char err[64];

	(void)state;
	for (size_t i = 0; (m = dbk_cli_method_at(i)) != NULL; i++) {
		FILE *f = fopen("/dev/null", "w");
		assert_int_equal(dbk_cli_build_params(m, 1, argv, &params, err, sizeof(err)), 1);
		dbk_cli_print_method_help(m, f);
		fclose(f);
		assert_non_null(m->help);
	}
	/* The spec's method list is covered. */
	static const char *const must[] = {
		"rpc_get_methods", "spdk_get_version", "framework_wait_init", "framework_get_reactors",
		"framework_get_config", "save_config", "load_config", "bdev_get_bdevs", "bdev_get_iostat",
		"bdev_malloc_create", "bdev_malloc_delete", "bdev_null_create", "bdev_null_delete",
		"bdev_uring_create", "bdev_uring_delete", "bdev_daos_create", "bdev_daos_delete", "bdev_daos_resize",
		"bdev_set_qos_limit", "nvmf_create_transport", "nvmf_get_transports", "nvmf_create_subsystem",
		"nvmf_delete_subsystem", "nvmf_get_subsystems", "nvmf_subsystem_add_listener",
		"nvmf_subsystem_remove_listener", "nvmf_subsystem_listener_set_ana_state", "nvmf_subsystem_add_ns",
		"nvmf_subsystem_remove_ns", "nvmf_subsystem_add_host", "nvmf_subsystem_remove_host",
		"nvmf_subsystem_allow_any_host", "nvmf_subsystem_get_controllers", "nvmf_subsystem_get_qpairs",
		"nvmf_subsystem_get_listeners", "nvmf_get_stats"};
	for (size_t i = 0; i < sizeof(must) / sizeof(must[0]); i++)
		if (!dbk_cli_find_method(must[i]))
			fail_msg("method %s missing from daosblk-rpc", must[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bdev),
		cmocka_unit_test(test_nvmf),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_every_method_has_help),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
