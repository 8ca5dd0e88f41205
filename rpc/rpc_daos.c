/* DAOS bdev JSON-RPC methods (SPDK names and parameters), plus daosblk's error-injection method. */
#include "rpc/rpc.h"

#include "bdev/bdev.h"
#include "bdev/daos/bdev_daos.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RT (DBK_RPC_RUNTIME)

/* ------------------------------------------------------------ bdev_daos_create */

struct daos_create_params {
	char *name;
	char *pool;
	char *cont;
	uint32_t block_size;
	uint64_t num_blocks;
	uuid_t uuid;
	char *oclass;
	char *path;
};

static const struct dbk_json_field daos_create_fields[] = {
	{"name", DBK_JSON_STRING, offsetof(struct daos_create_params, name), true, NULL, 0, NULL},
	{"pool", DBK_JSON_STRING, offsetof(struct daos_create_params, pool), true, NULL, 0, NULL},
	{"cont", DBK_JSON_STRING, offsetof(struct daos_create_params, cont), true, NULL, 0, NULL},
	{"block_size", DBK_JSON_U32, offsetof(struct daos_create_params, block_size), true, NULL, 0, NULL},
	{"num_blocks", DBK_JSON_U64, offsetof(struct daos_create_params, num_blocks), true, NULL, 0, NULL},
	{"uuid", DBK_JSON_UUID, offsetof(struct daos_create_params, uuid), false, NULL, 0, NULL},
	{"oclass", DBK_JSON_STRING, offsetof(struct daos_create_params, oclass), false, NULL, 0, NULL},
	{"path", DBK_JSON_STRING, offsetof(struct daos_create_params, path), false, NULL, 0, NULL},
};

static void daos_create_done(void *ctx, struct dbk_bdev *bdev, int rc, const char *err)
{
	struct dbk_rpc_request *req = ctx;

	if (rc != 0)
		dbk_rpc_send_error(req, rc, "%s", err && err[0] ? err : strerror(-rc));
	else
		dbk_rpc_send_result(req, json_string(dbk_bdev_get_name(bdev)));
}

static void rpc_bdev_daos_create(struct dbk_rpc_request *req, const json_t *params)
{
	struct daos_create_params p = {0};
	struct dbk_bdev_daos_opts o;
	char err[512] = "";
	int rc;

	if (!dbk_rpc_decode_params(req, params, daos_create_fields, DBK_COUNTOF(daos_create_fields), &p))
		return;
	memset(&o, 0, sizeof(o));
	o.name = p.name;
	o.pool = p.pool;
	o.cont = p.cont;
	o.block_size = p.block_size;
	o.num_blocks = p.num_blocks;
	uuid_copy(o.uuid, p.uuid);
	o.oclass = p.oclass;
	o.path = p.path;
	rc = dbk_bdev_daos_create(&o, daos_create_done, req, err, sizeof(err));
	if (rc != 0)
		dbk_rpc_send_error(req, rc, "%s", err[0] ? err : strerror(-rc));
	dbk_json_free_object(daos_create_fields, DBK_COUNTOF(daos_create_fields), &p);
}

/* ------------------------------------------------------------ bdev_daos_delete */

struct name_params {
	char *name;
};

static const struct dbk_json_field name_fields[] = {
	{"name", DBK_JSON_STRING, offsetof(struct name_params, name), true, NULL, 0, NULL},
};

static void daos_delete_done(void *ctx, int rc)
{
	struct dbk_rpc_request *req = ctx;

	if (rc != 0)
		dbk_rpc_send_error(req, rc, "cannot delete the bdev: %s", strerror(-rc));
	else
		dbk_rpc_send_bool(req, true);
}

static void rpc_bdev_daos_delete(struct dbk_rpc_request *req, const json_t *params)
{
	struct name_params p = {0};
	int rc;

	if (!dbk_rpc_decode_params(req, params, name_fields, DBK_COUNTOF(name_fields), &p))
		return;
	rc = dbk_bdev_daos_delete(p.name, daos_delete_done, req);
	if (rc != 0) {
		if (rc == -ENODEV)
			dbk_rpc_send_error(req, rc, "DAOS bdev '%s' not found", p.name);
		else
			dbk_rpc_send_error(req, rc, "cannot delete DAOS bdev '%s': %s", p.name, strerror(-rc));
	}
	dbk_json_free_object(name_fields, DBK_COUNTOF(name_fields), &p);
}

/* ------------------------------------------------------------ bdev_daos_resize */

struct resize_params {
	char *name;
	uint64_t new_size;
};

static const struct dbk_json_field resize_fields[] = {
	{"name", DBK_JSON_STRING, offsetof(struct resize_params, name), true, NULL, 0, NULL},
	{"new_size", DBK_JSON_U64, offsetof(struct resize_params, new_size), true, NULL, 0, NULL},
};

static void daos_resize_done(void *ctx, int rc, const char *err)
{
	struct dbk_rpc_request *req = ctx;

	if (rc != 0)
		dbk_rpc_send_error(req, rc, "%s", err && err[0] ? err : strerror(-rc));
	else
		dbk_rpc_send_bool(req, true);
}

static void rpc_bdev_daos_resize(struct dbk_rpc_request *req, const json_t *params)
{
	struct resize_params p = {0};
	char err[512] = "";
	int rc;

	if (!dbk_rpc_decode_params(req, params, resize_fields, DBK_COUNTOF(resize_fields), &p))
		return;
	rc = dbk_bdev_daos_resize(p.name, p.new_size, daos_resize_done, req, err, sizeof(err));
	if (rc != 0)
		dbk_rpc_send_error(req, rc, "%s", err[0] ? err : strerror(-rc));
	dbk_json_free_object(resize_fields, DBK_COUNTOF(resize_fields), &p);
}

/* ------------------------------------------------------ bdev_daos_inject_error */

struct inject_params {
	char *name;
	char *io_type;
	uint32_t count;
};

static const struct dbk_json_field inject_fields[] = {
	{"name", DBK_JSON_STRING, offsetof(struct inject_params, name), true, NULL, 0, NULL},
	{"io_type", DBK_JSON_STRING, offsetof(struct inject_params, io_type), false, NULL, 0, NULL},
	{"count", DBK_JSON_U32, offsetof(struct inject_params, count), false, NULL, 0, NULL},
};

/* daosblk extension: the next `count` (default 1) reads/writes of bdev `name` fail with -EIO. */
static void rpc_bdev_daos_inject_error(struct dbk_rpc_request *req, const json_t *params)
{
	struct inject_params p = {.count = 1};
	char err[256] = "";
	int rc;

	if (!dbk_rpc_decode_params(req, params, inject_fields, DBK_COUNTOF(inject_fields), &p))
		return;
	rc = dbk_bdev_daos_inject_error(p.name, p.io_type ? p.io_type : "all", p.count, err, sizeof(err));
	if (rc != 0)
		dbk_rpc_send_error(req, rc, "%s", err);
	else
		dbk_rpc_send_bool(req, true);
	dbk_json_free_object(inject_fields, DBK_COUNTOF(inject_fields), &p);
}

const struct dbk_rpc_method dbk_rpc_daos_methods[] = {
	{"bdev_daos_create", rpc_bdev_daos_create, RT},
	{"bdev_daos_delete", rpc_bdev_daos_delete, RT},
	{"bdev_daos_resize", rpc_bdev_daos_resize, RT},
	{"bdev_daos_inject_error", rpc_bdev_daos_inject_error, RT},
	{NULL, NULL, 0},
};
