/* rpc.py-compatible command lines -> JSON-RPC params, one table entry per method. */
#include "tools/rpc/rpc_cli.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define END {NULL, NULL, NULL, DBK_CLI_STR, false, NULL, NULL}
#define POS(param, kind, metavar, help) {NULL, NULL, param, kind, true, metavar, help}
#define OPTPOS(param, kind, metavar, help) {NULL, NULL, param, kind, false, metavar, help}
#define OPT(s, l, param, kind, metavar, help) {s, l, param, kind, false, metavar, help}
#define REQOPT(s, l, param, kind, metavar, help) {s, l, param, kind, true, metavar, help}
#define FLAG(s, l, param, kind, help) {s, l, param, kind, false, NULL, help}

/* ------------------------------------------------------------ fixups */

/* "_total_size" (MiB, a number) and "block_size" -> "num_blocks". */
static int fix_size_to_blocks(json_t *params, char *err, size_t errlen)
{
	json_t *ts = json_object_get(params, "_total_size");
	json_t *bs = json_object_get(params, "block_size");
	double mib, bytes;
	json_int_t blk;

	if (!ts)
		return 0;
	mib = json_number_value(ts);
	blk = json_integer_value(bs);
	if (!json_is_integer(bs) || blk <= 0) {
		snprintf(err, errlen, "BLOCK_SIZE must be a positive integer");
		return -EINVAL;
	}
	if (blk % 512 != 0) {
		snprintf(err, errlen, "block_size %lld must be a multiple of 512 (e.g. 512 or 4096)", (long long)blk);
		return -EINVAL;
	}
	bytes = mib * 1024.0 * 1024.0;
	if (!(mib > 0) || !isfinite(mib) || bytes > 9.0e18) {
		snprintf(err, errlen, "TOTAL_SIZE must be a positive size in MiB");
		return -EINVAL;
	}
	if (bytes != floor(bytes) || fmod(bytes, (double)blk) != 0) {
		snprintf(err, errlen, "TOTAL_SIZE (%g MiB) is not a whole number of %lld-byte blocks", mib,
			 (long long)blk);
		return -EINVAL;
	}
	json_object_set_new(params, "num_blocks", json_integer((json_int_t)(bytes / (double)blk)));
	json_object_del(params, "_total_size");
	return 0;
}

/* The address object params[key]: adrfam defaults to IPv4 (IPv6 when traddr has a ':'). */
static void default_adrfam(json_t *params, const char *key)
{
	json_t *la = json_object_get(params, key);
	const char *traddr;

	if (!json_is_object(la) || json_object_get(la, "adrfam"))
		return;
	traddr = json_string_value(json_object_get(la, "traddr"));
	json_object_set_new(la, "adrfam", json_string(traddr && strchr(traddr, ':') ? "IPv6" : "IPv4"));
}

static int fix_listener(json_t *params, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	default_adrfam(params, "listen_address");
	return 0;
}

static int fix_referral(json_t *params, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	default_adrfam(params, "address");
	return 0;
}

static int fix_allow_any_host(json_t *params, char *err, size_t errlen)
{
	if (!json_object_get(params, "allow_any_host")) {
		snprintf(err, errlen, "one of --allow-any-host (-e) or --no-allow-any-host (-d) is required");
		return -EINVAL;
	}
	return 0;
}

/* "_dhchap_digests" / "_dhchap_dhgroups" ("a,b,c", as rpc.py splits them) -> JSON arrays. */
static int split_list(json_t *params, const char *tmp, const char *key, char *err, size_t errlen)
{
	json_t *v = json_object_get(params, tmp), *arr;
	const char *s, *p;

	if (!v)
		return 0;
	s = json_string_value(v);
	arr = json_array();
	while (s && *s) {
		p = strchr(s, ',');
		size_t n = p ? (size_t)(p - s) : strlen(s);

		if (n == 0) {
			json_decref(arr);
			snprintf(err, errlen, "--%s: empty name in the list", key);
			return -EINVAL;
		}
		json_array_append_new(arr, json_stringn(s, n));
		s = p ? p + 1 : s + n;
	}
	json_object_set_new(params, key, arr);
	json_object_del(params, tmp);
	return 0;
}

static int fix_set_config(json_t *params, char *err, size_t errlen)
{
	int rc = split_list(params, "_dhchap_digests", "dhchap_digests", err, errlen);

	return rc ? rc : split_list(params, "_dhchap_dhgroups", "dhchap_dhgroups", err, errlen);
}

/* ------------------------------------------------------------ tables */

static const struct dbk_cli_arg a_none[] = {END};

static const struct dbk_cli_arg a_rpc_get_methods[] = {
	FLAG(NULL, "--current", "current", DBK_CLI_TRUE, "only methods callable in the current state"),
	FLAG("-i", "--include-aliases", "include_aliases", DBK_CLI_TRUE, "include deprecated aliases"),
	END,
};
static const struct dbk_cli_arg a_get_config[] = {
	POS("name", DBK_CLI_STR, "NAME", "subsystem name: keyring, bdev or nvmf"), END};
static const struct dbk_cli_arg a_kill[] = {
	POS("sig_name", DBK_CLI_STR, "SIG_NAME", "signal, e.g. SIGINT or SIGTERM"), END};

static const struct dbk_cli_arg a_bdev_get_bdevs[] = {
	OPT("-b", "--name", "name", DBK_CLI_STR, "NAME", "only this bdev (name, alias or UUID)"),
	OPT("-t", "--timeout", "timeout", DBK_CLI_INT, "TIMEOUT", "wait up to TIMEOUT ms for the bdev to appear"),
	END,
};
static const struct dbk_cli_arg a_bdev_get_iostat[] = {
	OPT("-b", "--name", "name", DBK_CLI_STR, "NAME", "only this bdev"),
	FLAG("-c", "--per-channel", "per_channel", DBK_CLI_TRUE, "also report every I/O channel"),
	END,
};
static const struct dbk_cli_arg a_name_only[] = {POS("name", DBK_CLI_STR, "NAME", "bdev name"), END};
static const struct dbk_cli_arg a_malloc_create[] = {
	POS("_total_size", DBK_CLI_FLOAT, "TOTAL_SIZE", "size in MiB (may be fractional)"),
	POS("block_size", DBK_CLI_INT, "BLOCK_SIZE", "block size in bytes (multiple of 512)"),
	OPT("-b", "--name", "name", DBK_CLI_STR, "NAME", "bdev name (default: generated, e.g. Malloc0)"),
	OPT("-u", "--uuid", "uuid", DBK_CLI_STR, "UUID", "bdev UUID (default: generated)"),
	END,
};
static const struct dbk_cli_arg a_null_create[] = {
	POS("name", DBK_CLI_STR, "NAME", "bdev name"),
	POS("_total_size", DBK_CLI_FLOAT, "TOTAL_SIZE", "size in MiB (may be fractional)"),
	POS("block_size", DBK_CLI_INT, "BLOCK_SIZE", "block size in bytes (multiple of 512)"),
	OPT("-u", "--uuid", "uuid", DBK_CLI_STR, "UUID", "bdev UUID (default: generated)"),
	END,
};
static const struct dbk_cli_arg a_uring_create[] = {
	POS("filename", DBK_CLI_STR, "FILENAME", "path of the backing file or block device"),
	POS("name", DBK_CLI_STR, "NAME", "bdev name"),
	OPTPOS("block_size", DBK_CLI_INT, "BLOCK_SIZE", "block size in bytes (default: detected)"),
	OPT("-u", "--uuid", "uuid", DBK_CLI_STR, "UUID", "bdev UUID (default: generated)"),
	END,
};
static const struct dbk_cli_arg a_daos_create[] = {
	POS("name", DBK_CLI_STR, "NAME", "bdev name"),
	POS("pool", DBK_CLI_STR, "POOL", "DAOS pool label or UUID"),
	POS("cont", DBK_CLI_STR, "CONT", "DAOS container label or UUID"),
	POS("_total_size", DBK_CLI_FLOAT, "TOTAL_SIZE", "size in MiB (may be fractional)"),
	POS("block_size", DBK_CLI_INT, "BLOCK_SIZE", "block size in bytes (multiple of 512)"),
	OPT("-u", "--uuid", "uuid", DBK_CLI_STR, "UUID", "bdev UUID (default: generated)"),
	OPT("-o", "--oclass", "oclass", DBK_CLI_STR, "OCLASS", "DAOS object class, e.g. SX, RP_2G1 (default SX)"),
	END,
};
static const struct dbk_cli_arg a_daos_resize[] = {
	POS("name", DBK_CLI_STR, "NAME", "bdev name"),
	POS("new_size", DBK_CLI_INT, "NEW_SIZE", "new size in MiB"),
	END,
};
static const struct dbk_cli_arg a_qos[] = {
	POS("name", DBK_CLI_STR, "NAME", "bdev name"),
	OPT(NULL, "--rw_ios_per_sec", "rw_ios_per_sec", DBK_CLI_INT, "N", "R/W IOPS limit (0 = unlimited)"),
	OPT(NULL, "--rw_mbytes_per_sec", "rw_mbytes_per_sec", DBK_CLI_INT, "N", "R/W MB/s limit (0 = unlimited)"),
	OPT(NULL, "--r_mbytes_per_sec", "r_mbytes_per_sec", DBK_CLI_INT, "N", "read MB/s limit (0 = unlimited)"),
	OPT(NULL, "--w_mbytes_per_sec", "w_mbytes_per_sec", DBK_CLI_INT, "N", "write MB/s limit (0 = unlimited)"),
	END,
};

static const struct dbk_cli_arg a_create_transport[] = {
	REQOPT("-t", "--trtype", "trtype", DBK_CLI_STR, "TRTYPE", "transport type (TCP)"),
	OPT("-q", "--max-queue-depth", "max_queue_depth", DBK_CLI_INT, "N", "max queue depth"),
	OPT("-m", "--max-io-qpairs-per-ctrlr", "max_io_qpairs_per_ctrlr", DBK_CLI_INT, "N",
	    "max I/O qpairs per controller"),
	OPT("-c", "--in-capsule-data-size", "in_capsule_data_size", DBK_CLI_INT, "N", "in-capsule data size"),
	OPT("-i", "--max-io-size", "max_io_size", DBK_CLI_INT, "N", "max I/O size in bytes"),
	OPT("-u", "--io-unit-size", "io_unit_size", DBK_CLI_INT, "N", "I/O unit size in bytes"),
	OPT("-a", "--max-aq-depth", "max_aq_depth", DBK_CLI_INT, "N", "max admin queue depth"),
	OPT("-n", "--num-shared-buffers", "num_shared_buffers", DBK_CLI_INT, "N", "number of shared buffers"),
	OPT("-b", "--buf-cache-size", "buf_cache_size", DBK_CLI_INT, "N", "per-poll-group buffer cache size"),
	FLAG("-z", "--zcopy", "zcopy", DBK_CLI_TRUE, "zero-copy reads from bdevs that lend memory (default)"),
	FLAG(NULL, "--no-zcopy", "zcopy", DBK_CLI_FALSE, "copy read data into transport buffers"),
	FLAG("-o", "--c2h-success", "c2h_success", DBK_CLI_FALSE, "disable the C2H success optimization"),
	OPT("-y", "--sock-priority", "sock_priority", DBK_CLI_INT, "N", "socket priority"),
	OPT("-l", "--abort-timeout-sec", "abort_timeout_sec", DBK_CLI_INT, "N", "abort timeout in seconds"),
	OPT(NULL, "--congestion-control", "congestion_control", DBK_CLI_STR, "NAME",
	    "TCP congestion control of the target's connections (e.g. cubic; default: the system's)"),
	END,
};
static const struct dbk_cli_arg a_get_transports[] = {
	OPT("-t", "--trtype", "trtype", DBK_CLI_STR, "TRTYPE", "only this transport type"), END};
static const struct dbk_cli_arg a_create_subsystem[] = {
	POS("nqn", DBK_CLI_STR, "NQN", "subsystem NQN"),
	OPT("-s", "--serial-number", "serial_number", DBK_CLI_STR, "SERIAL", "serial number"),
	OPT("-d", "--model-number", "model_number", DBK_CLI_STR, "MODEL", "model number"),
	FLAG("-a", "--allow-any-host", "allow_any_host", DBK_CLI_TRUE, "allow any host to connect"),
	OPT("-m", "--max-namespaces", "max_namespaces", DBK_CLI_INT, "N", "maximum number of namespaces"),
	FLAG("-r", "--ana-reporting", "ana_reporting", DBK_CLI_TRUE, "enable ANA reporting"),
	OPT("-i", "--min-cntlid", "min_cntlid", DBK_CLI_INT, "N", "minimum controller ID"),
	OPT("-I", "--max-cntlid", "max_cntlid", DBK_CLI_INT, "N", "maximum controller ID"),
	END,
};
static const struct dbk_cli_arg a_nqn[] = {POS("nqn", DBK_CLI_STR, "NQN", "subsystem NQN"), END};
static const struct dbk_cli_arg a_opt_nqn[] = {OPTPOS("nqn", DBK_CLI_STR, "NQN", "only this subsystem"), END};
static const struct dbk_cli_arg a_listener[] = {
	POS("nqn", DBK_CLI_STR, "NQN", "subsystem NQN (\"discovery\" for the discovery subsystem)"),
	REQOPT("-t", "--trtype", "listen_address.trtype", DBK_CLI_STR, "TRTYPE", "transport type (tcp)"),
	REQOPT("-a", "--traddr", "listen_address.traddr", DBK_CLI_STR, "TRADDR", "address to listen on"),
	OPT("-s", "--trsvcid", "listen_address.trsvcid", DBK_CLI_STR, "TRSVCID", "port (e.g. 4420)"),
	OPT("-f", "--adrfam", "listen_address.adrfam", DBK_CLI_STR, "ADRFAM", "IPv4 or IPv6 (default IPv4)"),
	OPT("-n", "--ana-state", "ana_state", DBK_CLI_STR, "ANA_STATE",
	    "optimized, non_optimized or inaccessible"),
	END,
};
static const struct dbk_cli_arg a_add_listener[] = {
	POS("nqn", DBK_CLI_STR, "NQN", "subsystem NQN (\"discovery\" for the discovery subsystem)"),
	REQOPT("-t", "--trtype", "listen_address.trtype", DBK_CLI_STR, "TRTYPE", "transport type (tcp)"),
	REQOPT("-a", "--traddr", "listen_address.traddr", DBK_CLI_STR, "TRADDR", "address to listen on"),
	OPT("-s", "--trsvcid", "listen_address.trsvcid", DBK_CLI_STR, "TRSVCID", "port (e.g. 4420)"),
	OPT("-f", "--adrfam", "listen_address.adrfam", DBK_CLI_STR, "ADRFAM", "IPv4 or IPv6 (default IPv4)"),
	OPT("-n", "--ana-state", "ana_state", DBK_CLI_STR, "ANA_STATE",
	    "optimized, non_optimized or inaccessible"),
	FLAG("-k", "--secure-channel", "secure_channel", DBK_CLI_TRUE,
	     "require TLS 1.3 with a PSK on this listener (hosts need nvmf_subsystem_add_host --psk)"),
	END,
};
static const struct dbk_cli_arg a_set_ana_state[] = {
	POS("nqn", DBK_CLI_STR, "NQN", "subsystem NQN"),
	REQOPT("-n", "--ana-state", "ana_state", DBK_CLI_STR, "ANA_STATE",
	       "optimized, non_optimized or inaccessible (daosblk also takes change and persistent_loss)"),
	REQOPT("-t", "--trtype", "listen_address.trtype", DBK_CLI_STR, "TRTYPE", "transport type (tcp)"),
	REQOPT("-a", "--traddr", "listen_address.traddr", DBK_CLI_STR, "TRADDR", "listener address"),
	OPT("-s", "--trsvcid", "listen_address.trsvcid", DBK_CLI_STR, "TRSVCID", "port"),
	OPT("-f", "--adrfam", "listen_address.adrfam", DBK_CLI_STR, "ADRFAM", "IPv4 or IPv6 (default IPv4)"),
	OPT("-g", "--anagrpid", "anagrpid", DBK_CLI_INT, "ANAGRPID", "ANA group ID (default: every group)"),
	END,
};
static const struct dbk_cli_arg a_referral[] = {
	REQOPT("-t", "--trtype", "address.trtype", DBK_CLI_STR, "TRTYPE", "transport type (tcp)"),
	REQOPT("-a", "--traddr", "address.traddr", DBK_CLI_STR, "TRADDR", "address of the other discovery service"),
	OPT("-s", "--trsvcid", "address.trsvcid", DBK_CLI_STR, "TRSVCID", "its port (required for TCP)"),
	OPT("-f", "--adrfam", "address.adrfam", DBK_CLI_STR, "ADRFAM", "IPv4 or IPv6 (default from the address)"),
	FLAG("-k", "--secure-channel", "secure_channel", DBK_CLI_TRUE, "the referred service requires a secure channel"),
	OPT("-n", "--subnqn", "subnqn", DBK_CLI_STR, "NQN", "subsystem NQN (default: the discovery NQN)"),
	END,
};
static const struct dbk_cli_arg a_referral_rm[] = {
	REQOPT("-t", "--trtype", "address.trtype", DBK_CLI_STR, "TRTYPE", "transport type (tcp)"),
	REQOPT("-a", "--traddr", "address.traddr", DBK_CLI_STR, "TRADDR", "address of the referral"),
	OPT("-s", "--trsvcid", "address.trsvcid", DBK_CLI_STR, "TRSVCID", "its port"),
	OPT("-f", "--adrfam", "address.adrfam", DBK_CLI_STR, "ADRFAM", "IPv4 or IPv6 (default from the address)"),
	OPT("-n", "--subnqn", "subnqn", DBK_CLI_STR, "NQN", "subsystem NQN (default: the discovery NQN)"),
	END,
};
static const struct dbk_cli_arg a_add_ns[] = {
	POS("nqn", DBK_CLI_STR, "NQN", "subsystem NQN"),
	POS("namespace.bdev_name", DBK_CLI_STR, "BDEV_NAME", "bdev to expose"),
	OPT("-n", "--nsid", "namespace.nsid", DBK_CLI_INT, "NSID", "namespace ID (default: first free)"),
	OPT("-g", "--nguid", "namespace.nguid", DBK_CLI_STR, "NGUID", "namespace globally unique ID (32 hex)"),
	OPT("-e", "--eui64", "namespace.eui64", DBK_CLI_STR, "EUI64", "namespace EUI-64 (16 hex)"),
	OPT("-u", "--uuid", "namespace.uuid", DBK_CLI_STR, "UUID", "namespace UUID"),
	OPT("-a", "--anagrpid", "namespace.anagrpid", DBK_CLI_INT, "ANAGRPID", "ANA group ID"),
	END,
};
static const struct dbk_cli_arg a_remove_ns[] = {
	POS("nqn", DBK_CLI_STR, "NQN", "subsystem NQN"),
	POS("nsid", DBK_CLI_INT, "NSID", "namespace ID"),
	END,
};
static const struct dbk_cli_arg a_add_host[] = {
	POS("nqn", DBK_CLI_STR, "NQN", "subsystem NQN"),
	POS("host", DBK_CLI_STR, "HOST", "host NQN"),
	OPT(NULL, "--dhchap-key", "dhchap_key", DBK_CLI_STR, "KEY",
	    "keyring name of the host's DH-HMAC-CHAP secret: the host must authenticate"),
	OPT(NULL, "--dhchap-ctrlr-key", "dhchap_ctrlr_key", DBK_CLI_STR, "CKEY",
	    "keyring name of the controller's secret (bidirectional authentication; needs --dhchap-key)"),
	OPT(NULL, "--psk", "psk", DBK_CLI_STR, "KEY", "keyring name of the host's TLS pre-shared key"),
	END,
};
static const struct dbk_cli_arg a_set_keys[] = {
	POS("nqn", DBK_CLI_STR, "NQN", "subsystem NQN"),
	POS("host", DBK_CLI_STR, "HOST", "host NQN"),
	OPT(NULL, "--dhchap-key", "dhchap_key", DBK_CLI_STR, "KEY",
	    "new DH-HMAC-CHAP key name (omitted: the host needs no authentication)"),
	OPT(NULL, "--dhchap-ctrlr-key", "dhchap_ctrlr_key", DBK_CLI_STR, "CKEY",
	    "new controller key name (omitted: unidirectional)"),
	END,
};
static const struct dbk_cli_arg a_set_config[] = {
	OPT(NULL, "--dhchap-digests", "_dhchap_digests", DBK_CLI_STR, "LIST",
	    "DH-HMAC-CHAP digests offered, comma-separated: sha256,sha384,sha512 (default: all)"),
	OPT(NULL, "--dhchap-dhgroups", "_dhchap_dhgroups", DBK_CLI_STR, "LIST",
	    "DH groups offered, comma-separated: null,ffdhe2048,ffdhe3072,ffdhe4096,ffdhe6144,ffdhe8192 "
	    "(default: all)"),
	END,
};
static const struct dbk_cli_arg a_add_key[] = {
	POS("name", DBK_CLI_STR, "NAME", "key name"),
	POS("path", DBK_CLI_STR, "PATH", "absolute path of the key file (regular file, owned by the target's "
	    "user, mode 0600 or stricter)"),
	END,
};
static const struct dbk_cli_arg a_remove_key[] = {POS("name", DBK_CLI_STR, "NAME", "key name"), END};
static const struct dbk_cli_arg a_remove_host[] = {
	POS("nqn", DBK_CLI_STR, "NQN", "subsystem NQN"),
	POS("host", DBK_CLI_STR, "HOST", "host NQN"),
	END,
};
static const struct dbk_cli_arg a_allow_any_host[] = {
	POS("nqn", DBK_CLI_STR, "NQN", "subsystem NQN"),
	FLAG("-e", "--allow-any-host", "allow_any_host", DBK_CLI_TRUE, "allow any host (also --enable)"),
	FLAG("-d", "--no-allow-any-host", "allow_any_host", DBK_CLI_FALSE,
	     "only hosts added with nvmf_subsystem_add_host (also --disable)"),
	FLAG(NULL, "--enable", "allow_any_host", DBK_CLI_TRUE, "same as --allow-any-host"),
	FLAG(NULL, "--disable", "allow_any_host", DBK_CLI_FALSE, "same as --no-allow-any-host"),
	END,
};

static const struct dbk_cli_method g_methods[] = {
	{"rpc_get_methods", "List the methods the server knows", a_rpc_get_methods, NULL, false},
	{"spdk_get_version", "Print the server's version", a_none, NULL, false},
	{"framework_wait_init", "Wait until the server finished initialization", a_none, NULL, false},
	{"framework_start_init", "Start initialization (server started with --wait-for-rpc)", a_none, NULL, false},
	{"framework_get_reactors", "Show reactors and their threads", a_none, NULL, false},
	{"framework_get_subsystems", "List the configurable subsystems", a_none, NULL, false},
	{"framework_get_config", "Print the methods that rebuild a subsystem's configuration", a_get_config, NULL,
	 false},
	{"spdk_kill_instance", "Shut the server down", a_kill, NULL, false},
	{"save_config", "Print the whole configuration as JSON (framework_get_config of keyring, bdev, nvmf)", a_none, NULL,
	 true},
	{"load_config", "Replay a configuration saved by save_config, read from stdin", a_none, NULL, true},

	{"keyring_file_add_key", "Add a key from a file to the keyring", a_add_key, NULL, false},
	{"keyring_file_remove_key", "Remove a key from the keyring", a_remove_key, NULL, false},
	{"keyring_get_keys", "List the keyring's keys (names and paths, never secrets)", a_none, NULL, false},

	{"bdev_get_bdevs", "List block devices", a_bdev_get_bdevs, NULL, false},
	{"bdev_get_iostat", "Show I/O statistics of block devices", a_bdev_get_iostat, NULL, false},
	{"bdev_malloc_create", "Create a RAM block device", a_malloc_create, fix_size_to_blocks, false},
	{"bdev_malloc_delete", "Delete a RAM block device", a_name_only, NULL, false},
	{"bdev_null_create", "Create a null block device (discards writes, reads zeroes)", a_null_create,
	 fix_size_to_blocks, false},
	{"bdev_null_delete", "Delete a null block device", a_name_only, NULL, false},
	{"bdev_uring_create", "Create a block device on a file or block device (io_uring)", a_uring_create, NULL,
	 false},
	{"bdev_uring_delete", "Delete an io_uring block device", a_name_only, NULL, false},
	{"bdev_daos_create", "Create a block device on a file in a DAOS container", a_daos_create,
	 fix_size_to_blocks, false},
	{"bdev_daos_delete", "Delete a DAOS block device", a_name_only, NULL, false},
	{"bdev_daos_resize", "Resize a DAOS block device", a_daos_resize, NULL, false},
	{"bdev_set_qos_limit", "Set QoS rate limits of a block device", a_qos, NULL, false},

	{"nvmf_create_transport", "Create an NVMe-oF transport", a_create_transport, NULL, false},
	{"nvmf_get_transports", "List NVMe-oF transports", a_get_transports, NULL, false},
	{"nvmf_create_subsystem", "Create an NVMe-oF subsystem", a_create_subsystem, NULL, false},
	{"nvmf_delete_subsystem", "Delete an NVMe-oF subsystem", a_nqn, NULL, false},
	{"nvmf_get_subsystems", "List NVMe-oF subsystems", a_opt_nqn, NULL, false},
	{"nvmf_subsystem_add_listener", "Add a listener to a subsystem", a_add_listener, fix_listener, false},
	{"nvmf_subsystem_remove_listener", "Remove a listener from a subsystem", a_listener, fix_listener, false},
	{"nvmf_subsystem_listener_set_ana_state", "Set the ANA state of a listener", a_set_ana_state, fix_listener,
	 false},
	{"nvmf_subsystem_add_ns", "Add a namespace (a bdev) to a subsystem", a_add_ns, NULL, false},
	{"nvmf_subsystem_remove_ns", "Remove a namespace from a subsystem", a_remove_ns, NULL, false},
	{"nvmf_subsystem_add_host", "Allow a host to connect to a subsystem", a_add_host, NULL, false},
	{"nvmf_subsystem_set_keys", "Change a host's DH-HMAC-CHAP keys (applies to its next authentication)",
	 a_set_keys, NULL, false},
	{"nvmf_set_config", "Set target-wide NVMe-oF options (DH-HMAC-CHAP digests and DH groups)", a_set_config,
	 fix_set_config, false},
	{"nvmf_subsystem_remove_host", "Remove a host from a subsystem", a_remove_host, NULL, false},
	{"nvmf_subsystem_allow_any_host", "Allow or deny any host to connect", a_allow_any_host, fix_allow_any_host,
	 false},
	{"nvmf_subsystem_get_controllers", "List a subsystem's controllers", a_nqn, NULL, false},
	{"nvmf_subsystem_get_qpairs", "List a subsystem's queue pairs", a_nqn, NULL, false},
	{"nvmf_subsystem_get_listeners", "List a subsystem's listeners", a_nqn, NULL, false},
	{"nvmf_get_stats", "Show NVMe-oF poll group statistics", a_none, NULL, false},
	{"nvmf_discovery_add_referral", "Add a discovery referral (another target's discovery service)", a_referral,
	 fix_referral, false},
	{"nvmf_discovery_remove_referral", "Remove a discovery referral", a_referral_rm, fix_referral, false},
	{"nvmf_discovery_get_referrals", "List the discovery referrals", a_none, NULL, false},
};

const struct dbk_cli_method *dbk_cli_method_at(size_t idx)
{
	return idx < sizeof(g_methods) / sizeof(g_methods[0]) ? &g_methods[idx] : NULL;
}

const struct dbk_cli_method *dbk_cli_find_method(const char *name)
{
	const struct dbk_cli_method *m;

	for (size_t i = 0; (m = dbk_cli_method_at(i)) != NULL; i++)
		if (strcmp(m->name, name) == 0)
			return m;
	return NULL;
}

/* ------------------------------------------------------------ parsing */

static const char *arg_label(const struct dbk_cli_arg *a)
{
	if (a->long_opt)
		return a->long_opt;
	if (a->short_opt)
		return a->short_opt;
	return a->metavar;
}

static json_t *convert(const struct dbk_cli_arg *a, const char *text, char *err, size_t errlen)
{
	char *end;

	switch (a->kind) {
	case DBK_CLI_STR:
		return json_string(text);
	case DBK_CLI_INT: {
		long long v;

		errno = 0;
		v = strtoll(text, &end, 0);
		if (errno || end == text || *end) {
			snprintf(err, errlen, "%s: '%s' is not an integer", arg_label(a), text);
			return NULL;
		}
		return json_integer(v);
	}
	case DBK_CLI_FLOAT: {
		double v;

		errno = 0;
		v = strtod(text, &end);
		if (errno || end == text || *end || !isfinite(v)) {
			snprintf(err, errlen, "%s: '%s' is not a number", arg_label(a), text);
			return NULL;
		}
		return json_real(v);
	}
	case DBK_CLI_TRUE:
		return json_true();
	case DBK_CLI_FALSE:
		return json_false();
	}
	return NULL;
}

/* Set params[key] (a "a.b" key goes into the object a). Steals v. */
static void set_param(json_t *params, const char *key, json_t *v)
{
	const char *dot = strchr(key, '.');

	if (dot) {
		char outer[64];
		json_t *o;

		snprintf(outer, sizeof(outer), "%.*s", (int)(dot - key), key);
		o = json_object_get(params, outer);
		if (!o) {
			o = json_object();
			json_object_set_new(params, outer, o);
		}
		json_object_set_new(o, dot + 1, v);
	} else {
		json_object_set_new(params, key, v);
	}
}

static bool param_present(json_t *params, const char *key)
{
	const char *dot = strchr(key, '.');

	if (dot) {
		char outer[64];

		snprintf(outer, sizeof(outer), "%.*s", (int)(dot - key), key);
		return json_object_get(json_object_get(params, outer), dot + 1) != NULL;
	}
	return json_object_get(params, key) != NULL;
}

int dbk_cli_build_params(const struct dbk_cli_method *m, int argc, char **argv, json_t **params_out, char *err,
			 size_t errlen)
{
	json_t *params = json_object();
	const struct dbk_cli_arg *pos[16];
	size_t npos = 0, next_pos = 0;
	bool only_pos = false;
	int rc = -EINVAL;

	*params_out = NULL;
	for (const struct dbk_cli_arg *a = m->args; a->param; a++)
		if (!a->short_opt && !a->long_opt && npos < 16)
			pos[npos++] = a;

	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		const struct dbk_cli_arg *a = NULL;
		const char *value = NULL;
		json_t *v;

		if (!only_pos && (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)) {
			json_decref(params);
			return 1;
		}
		if (!only_pos && strcmp(arg, "--") == 0) {
			only_pos = true;
			continue;
		}
		/* An option, unless it is a negative number given as a positional. */
		if (!only_pos && arg[0] == '-' && arg[1] != '\0' && !(arg[1] >= '0' && arg[1] <= '9')) {
			const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
			size_t n = eq ? (size_t)(eq - arg) : strlen(arg);

			for (const struct dbk_cli_arg *c = m->args; c->param; c++) {
				if ((c->long_opt && strlen(c->long_opt) == n && strncmp(c->long_opt, arg, n) == 0) ||
				    (!eq && c->short_opt && strcmp(c->short_opt, arg) == 0)) {
					a = c;
					break;
				}
			}
			if (!a) {
				snprintf(err, errlen, "%s: unrecognized option '%s' (see %s --help)", m->name, arg,
					 m->name);
				goto out;
			}
			if (a->kind == DBK_CLI_TRUE || a->kind == DBK_CLI_FALSE) {
				if (eq) {
					snprintf(err, errlen, "%s: option '%s' takes no value", m->name, a->long_opt);
					goto out;
				}
			} else if (eq) {
				value = eq + 1;
			} else if (i + 1 < argc) {
				value = argv[++i];
			} else {
				snprintf(err, errlen, "%s: option '%s' needs a value (%s)", m->name, arg, a->metavar);
				goto out;
			}
		} else {
			if (next_pos == npos) {
				snprintf(err, errlen, "%s: unexpected argument '%s' (see %s --help)", m->name, arg,
					 m->name);
				goto out;
			}
			a = pos[next_pos++];
			value = arg;
		}
		v = convert(a, value, err, errlen);
		if (!v)
			goto out;
		set_param(params, a->param, v);
	}
	for (size_t i = next_pos; i < npos; i++) {
		if (pos[i]->required) {
			snprintf(err, errlen, "%s: missing argument %s (see %s --help)", m->name, pos[i]->metavar,
				 m->name);
			goto out;
		}
	}
	for (const struct dbk_cli_arg *a = m->args; a->param; a++) {
		if ((a->short_opt || a->long_opt) && a->required && !param_present(params, a->param)) {
			snprintf(err, errlen, "%s: option %s %s is required", m->name, arg_label(a), a->metavar);
			goto out;
		}
	}
	if (m->fixup && m->fixup(params, err, errlen) != 0)
		goto out;
	if (json_object_size(params) == 0) {
		json_decref(params);
		params = NULL;
	}
	*params_out = params;
	return 0;
out:
	json_decref(params);
	return rc;
}

void dbk_cli_print_method_help(const struct dbk_cli_method *m, FILE *out)
{
	fprintf(out, "usage: daosblk-rpc [global options] %s [-h]", m->name);
	for (const struct dbk_cli_arg *a = m->args; a->param; a++) {
		if (!a->short_opt && !a->long_opt)
			continue;
		fprintf(out, " %s%s%s%s%s", a->required ? "" : "[", a->short_opt ? a->short_opt : a->long_opt,
			a->metavar ? " " : "", a->metavar ? a->metavar : "", a->required ? "" : "]");
	}
	for (const struct dbk_cli_arg *a = m->args; a->param; a++)
		if (!a->short_opt && !a->long_opt)
			fprintf(out, a->required ? " %s" : " [%s]", a->metavar);
	fprintf(out, "\n\n%s\n", m->help);
	if (m->client_side)
		fprintf(out, "(runs in the client: %s)\n",
			strcmp(m->name, "save_config") == 0 ? "prints JSON on stdout" : "reads JSON from stdin");
	if (m->args[0].param)
		fprintf(out, "\narguments:\n");
	for (const struct dbk_cli_arg *a = m->args; a->param; a++) {
		char left[80];

		if (!a->short_opt && !a->long_opt)
			snprintf(left, sizeof(left), "%s", a->metavar);
		else
			snprintf(left, sizeof(left), "%s%s%s%s%s", a->short_opt ? a->short_opt : "",
				 a->short_opt && a->long_opt ? ", " : "", a->long_opt ? a->long_opt : "",
				 a->metavar ? " " : "", a->metavar ? a->metavar : "");
		fprintf(out, "  %-34s %s\n", left, a->help);
	}
	fprintf(out, "  %-34s %s\n", "-h, --help", "show this help");
}
