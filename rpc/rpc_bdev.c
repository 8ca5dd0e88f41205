/* bdev JSON-RPC methods (SPDK names and parameters). */
#include "rpc/rpc.h"

#include "bdev/bdev.h"
#include "bdev/bdev_module.h"
#include "bdev/malloc/bdev_malloc.h"
#include "bdev/null/bdev_null.h"
#include "bdev/uring/bdev_uring.h"
#include "thread/thread.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RT (DBK_RPC_RUNTIME)

/* ------------------------------------------------------------ bdev_get_bdevs */

struct get_bdevs_params {
	char *name;
	uint64_t timeout;
};

static const struct dbk_json_field get_bdevs_fields[] = {
	{"name", DBK_JSON_STRING, offsetof(struct get_bdevs_params, name), false, NULL, 0, NULL},
	{"timeout", DBK_JSON_U64, offsetof(struct get_bdevs_params, timeout), false, NULL, 0, NULL},
};

struct get_bdevs_wait {
	struct dbk_rpc_request *req;
	char *name;
	uint64_t deadline_ns;
	struct dbk_poller *poller;
};

static void send_one_bdev(struct dbk_rpc_request *req, struct dbk_bdev *bdev)
{
	json_t *arr = json_array();

	json_array_append_new(arr, dbk_bdev_info_json(bdev));
	dbk_rpc_send_result(req, arr);
}

static int get_bdevs_poll(void *ctx)
{
	struct get_bdevs_wait *w = ctx;
	struct dbk_bdev *bdev = dbk_bdev_get_by_name(w->name);

	if (bdev == NULL && dbk_get_ns() < w->deadline_ns)
		return DBK_POLLER_IDLE;
	if (bdev)
		send_one_bdev(w->req, bdev);
	else
		dbk_rpc_send_error(w->req, -ENODEV, "bdev '%s' not found", w->name);
	dbk_poller_unregister(&w->poller);
	free(w->name);
	free(w);
	return DBK_POLLER_BUSY;
}

static void rpc_bdev_get_bdevs(struct dbk_rpc_request *req, const json_t *params)
{
	struct get_bdevs_params p = {0};
	json_t *arr;

	if (!dbk_rpc_decode_params(req, params, get_bdevs_fields, DBK_COUNTOF(get_bdevs_fields), &p))
		return;
	if (p.name) {
		struct dbk_bdev *bdev = dbk_bdev_get_by_name(p.name);
		if (bdev) {
			send_one_bdev(req, bdev);
		} else if (p.timeout > 0) {
			struct get_bdevs_wait *w = calloc(1, sizeof(*w));
			if (w == NULL) {
				dbk_rpc_send_error(req, -ENOMEM, "out of memory");
				goto out;
			}
			w->req = req;
			w->name = p.name;
			p.name = NULL;
			w->deadline_ns = dbk_get_ns() + p.timeout * 1000000ull;
			w->poller = dbk_poller_register(get_bdevs_poll, w, 10000, "bdev_get_bdevs");
			if (w->poller == NULL) {
				dbk_rpc_send_error(req, -ENOMEM, "cannot wait for bdev '%s'", w->name);
				free(w->name);
				free(w);
			}
		} else {
			dbk_rpc_send_error(req, -ENODEV, "bdev '%s' not found", p.name);
		}
		goto out;
	}
	arr = json_array();
	for (struct dbk_bdev *b = dbk_bdev_first(); b; b = dbk_bdev_next(b))
		json_array_append_new(arr, dbk_bdev_info_json(b));
	dbk_rpc_send_result(req, arr);
out:
	dbk_json_free_object(get_bdevs_fields, DBK_COUNTOF(get_bdevs_fields), &p);
}

/* ----------------------------------------------------------- bdev_get_iostat */

struct get_iostat_params {
	char *name;
	bool per_channel;
	json_t *names;
	char *reset_mode;
};

static const struct dbk_json_field get_iostat_fields[] = {
	{"name", DBK_JSON_STRING, offsetof(struct get_iostat_params, name), false, NULL, 0, NULL},
	{"per_channel", DBK_JSON_BOOL, offsetof(struct get_iostat_params, per_channel), false, NULL, 0, NULL},
	/* SPDK's rpc.py selects bdevs with --names (a list of names) rather than "name" */
	{"names", DBK_JSON_ANY, offsetof(struct get_iostat_params, names), false, NULL, 0, NULL},
	/* SPDK's rpc.py --reset-mode; only "none" (the default) is supported: statistics are never reset */
	{"reset_mode", DBK_JSON_STRING, offsetof(struct get_iostat_params, reset_mode), false, NULL, 0, NULL},
};

struct iostat_req {
	struct dbk_rpc_request *req;
	bool per_channel;
	char **names;
	size_t count;
	size_t next;
	json_t *bdevs;
};

static void iostat_next(struct iostat_req *r);

static void iostat_free(struct iostat_req *r)
{
	for (size_t i = 0; i < r->count; i++)
		free(r->names[i]);
	free(r->names);
	json_decref(r->bdevs);
	free(r);
}

static void iostat_cb(struct dbk_bdev *bdev, const struct dbk_bdev_io_stat *total, json_t *per_channel, void *ctx,
		      int rc)
{
	struct iostat_req *r = ctx;

	if (rc == 0 && total) {
		json_t *o = json_pack("{s:s}", "name", dbk_bdev_get_name(bdev)); /* name first, as SPDK */
		json_t *st = dbk_bdev_stat_to_json(total);
		json_object_update(o, st);
		json_decref(st);
		if (per_channel)
			json_object_set(o, "channels", per_channel);
		json_array_append_new(r->bdevs, o);
	}
	iostat_next(r);
}


static void iostat_next(struct iostat_req *r)
{
	while (r->next < r->count) {
		struct dbk_bdev *bdev = dbk_bdev_get_by_name(r->names[r->next++]);
		if (bdev) {
			dbk_bdev_get_iostat(bdev, r->per_channel, iostat_cb, r);
			return;
		}
	}
	dbk_rpc_send_result(r->req, json_pack("{s:I,s:I,s:O}", "tick_rate", (json_int_t)1000000000,
					      "ticks", (json_int_t)dbk_get_ns(), "bdevs", r->bdevs));
	iostat_free(r);
}

static void rpc_bdev_get_iostat(struct dbk_rpc_request *req, const json_t *params)
{
	struct get_iostat_params p = {0};
	struct iostat_req *r;
	size_t n = 0;

	if (!dbk_rpc_decode_params(req, params, get_iostat_fields, DBK_COUNTOF(get_iostat_fields), &p))
		return;
	if (p.name && dbk_bdev_get_by_name(p.name) == NULL) {
		dbk_rpc_send_error(req, -ENODEV, "bdev '%s' not found", p.name);
		goto out;
	}
	if (p.reset_mode && strcmp(p.reset_mode, "none") != 0) {
		dbk_rpc_send_error(req, -ENOTSUP, "reset_mode '%s' is not supported (only 'none')", p.reset_mode);
		goto out;
	}
	if (p.names) {
		size_t i;
		json_t *v;

		if (p.name) {
			dbk_rpc_send_error(req, -EINVAL, "give either 'name' or 'names', not both");
			goto out;
		}
		if (!json_is_array(p.names)) {
			dbk_rpc_send_error(req, DBK_JSONRPC_INVALID_PARAMS, "parameter 'names' must be an array of strings");
			goto out;
		}
		json_array_foreach(p.names, i, v) {
			if (!json_is_string(v)) {
				dbk_rpc_send_error(req, DBK_JSONRPC_INVALID_PARAMS, "parameter 'names' must be an array of strings");
				goto out;
			}
			if (dbk_bdev_get_by_name(json_string_value(v)) == NULL) {
				dbk_rpc_send_error(req, -ENODEV, "bdev '%s' not found", json_string_value(v));
				goto out;
			}
		}
		n = json_array_size(p.names);
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		goto nomem;
	r->req = req;
	r->per_channel = p.per_channel;
	r->bdevs = json_array();
	for (struct dbk_bdev *b = dbk_bdev_first(); b; b = dbk_bdev_next(b))
		n++;
	r->names = calloc(n ? n : 1, sizeof(char *));
	if (r->names == NULL) {
		iostat_free(r);
		goto nomem;
	}
	if (p.names) {
		size_t i;
		json_t *v;

		json_array_foreach(p.names, i, v)
			r->names[r->count++] = strdup(json_string_value(v));
	} else if (p.name) {
		r->names[r->count++] = strdup(dbk_bdev_get_name(dbk_bdev_get_by_name(p.name)));
	} else {
		for (struct dbk_bdev *b = dbk_bdev_first(); b; b = dbk_bdev_next(b))
			r->names[r->count++] = strdup(dbk_bdev_get_name(b));
	}
	for (size_t i = 0; i < r->count; i++)
		if (r->names[i] == NULL) {
			iostat_free(r);
			goto nomem;
		}
	iostat_next(r);
	goto out;
nomem:
	dbk_rpc_send_error(req, -ENOMEM, "out of memory");
out:
	dbk_json_free_object(get_iostat_fields, DBK_COUNTOF(get_iostat_fields), &p);
}

/* -------------------------------------------------------------- create/delete */

static const char *create_error(int rc, char *buf, size_t len, const char *name, uint32_t block_size,
				uint64_t num_blocks)
{
	switch (rc) {
	case -EEXIST:
		snprintf(buf, len, "bdev '%s' already exists (or its uuid is in use)", name ? name : "");
		break;
	case -ENOMEM:
		snprintf(buf, len, "cannot allocate %llu bytes for bdev '%s'",
			 (unsigned long long)num_blocks * block_size, name ? name : "");
		break;
	default:
		snprintf(buf, len, "cannot create bdev '%s': %s", name ? name : "", strerror(-rc));
		break;
	}
	return buf;
}

static bool check_geometry(struct dbk_rpc_request *req, uint32_t block_size, uint64_t num_blocks)
{
	if (block_size == 0 || block_size % 512 != 0) {
		dbk_rpc_send_error(req, -EINVAL, "block_size %u must be a multiple of 512 (e.g. 512 or 4096)", block_size);
		return false;
	}
	if (num_blocks == 0) {
		dbk_rpc_send_error(req, -EINVAL, "num_blocks must be greater than 0");
		return false;
	}
	if (num_blocks > UINT64_MAX / block_size) {
		dbk_rpc_send_error(req, -EINVAL, "num_blocks %llu x block_size %u overflows",
				   (unsigned long long)num_blocks, block_size);
		return false;
	}
	return true;
}

struct ram_create_params {
	char *name;
	uint32_t block_size;
	uint64_t num_blocks;
	uuid_t uuid;
	uint32_t physical_block_size;
	uint32_t optimal_io_boundary;
	uint32_t md_size;
	int32_t dif_type;
	bool md_interleave;
	bool dif_is_head_of_md;
};

#define RAM_FIELDS(req_name)                                                                                \
	{"name", DBK_JSON_STRING, offsetof(struct ram_create_params, name), req_name, NULL, 0, NULL},      \
	{"block_size", DBK_JSON_U32, offsetof(struct ram_create_params, block_size), true, NULL, 0, NULL}, \
	{"num_blocks", DBK_JSON_U64, offsetof(struct ram_create_params, num_blocks), true, NULL, 0, NULL}, \
	{"uuid", DBK_JSON_UUID, offsetof(struct ram_create_params, uuid), false, NULL, 0, NULL},           \
	{"physical_block_size", DBK_JSON_U32, offsetof(struct ram_create_params, physical_block_size),     \
	 false, NULL, 0, NULL},                                                                             \
	{"optimal_io_boundary", DBK_JSON_U32, offsetof(struct ram_create_params, optimal_io_boundary),     \
	 false, NULL, 0, NULL},                                                                             \
	{"md_size", DBK_JSON_U32, offsetof(struct ram_create_params, md_size), false, NULL, 0, NULL},      \
	{"dif_type", DBK_JSON_I32, offsetof(struct ram_create_params, dif_type), false, NULL, 0, NULL},    \
	{"md_interleave", DBK_JSON_BOOL, offsetof(struct ram_create_params, md_interleave), false, NULL, 0, \
	 NULL},                                                                                             \
	{"dif_is_head_of_md", DBK_JSON_BOOL, offsetof(struct ram_create_params, dif_is_head_of_md), false, \
	 NULL, 0, NULL}

static const struct dbk_json_field malloc_create_fields[] = {RAM_FIELDS(false)};
static const struct dbk_json_field null_create_fields[] = {RAM_FIELDS(true)};

static void ram_create(struct dbk_rpc_request *req, const json_t *params, bool is_null)
{
	const struct dbk_json_field *fields = is_null ? null_create_fields : malloc_create_fields;
	size_t nf = is_null ? DBK_COUNTOF(null_create_fields) : DBK_COUNTOF(malloc_create_fields);
	struct ram_create_params p = {0};
	struct dbk_bdev *bdev = NULL;
	char msg[256];
	int rc;

	if (!dbk_rpc_decode_params(req, params, fields, nf, &p))
		return;
	if (!check_geometry(req, p.block_size, p.num_blocks))
		goto out;
	if (p.md_size != 0 || p.dif_type != 0) {
		dbk_rpc_send_error(req, -ENOTSUP, "metadata and DIF (md_size, dif_type) are not supported");
		goto out;
	}
	if (p.physical_block_size && (p.physical_block_size % p.block_size)) {
		dbk_rpc_send_error(req, -EINVAL, "physical_block_size %u must be a multiple of block_size %u",
				   p.physical_block_size, p.block_size);
		goto out;
	}
	if (is_null && (p.name == NULL || p.name[0] == '\0')) {
		dbk_rpc_send_error(req, DBK_JSONRPC_INVALID_PARAMS, "parameter 'name' must not be empty");
		goto out;
	}
	if (p.name && p.name[0] && dbk_bdev_get_by_name(p.name)) {
		dbk_rpc_send_error(req, -EEXIST, "bdev '%s' already exists", p.name);
		goto out;
	}
	if (!uuid_is_null(p.uuid)) {
		char u[37];
		uuid_unparse_lower(p.uuid, u);
		if (dbk_bdev_get_by_name(u)) {
			dbk_rpc_send_error(req, -EEXIST, "uuid %s is already used by bdev '%s'", u,
					   dbk_bdev_get_name(dbk_bdev_get_by_name(u)));
			goto out;
		}
	}
	if (is_null)
		rc = dbk_bdev_null_create(p.name, p.uuid, p.num_blocks, p.block_size, &bdev);
	else
		rc = dbk_bdev_malloc_create(p.name, p.uuid, p.num_blocks, p.block_size, &bdev);
	if (rc != 0) {
		dbk_rpc_send_error(req, rc, "%s", create_error(rc, msg, sizeof(msg), p.name, p.block_size,
							       p.num_blocks));
		goto out;
	}
	dbk_rpc_send_result(req, json_string(dbk_bdev_get_name(bdev)));
out:
	dbk_json_free_object(fields, nf, &p);
}

static void rpc_bdev_malloc_create(struct dbk_rpc_request *req, const json_t *params)
{
	ram_create(req, params, false);
}

static void rpc_bdev_null_create(struct dbk_rpc_request *req, const json_t *params)
{
	ram_create(req, params, true);
}

struct uring_create_params {
	char *name;
	char *filename;
	uint32_t block_size;
	uuid_t uuid;
};

static const struct dbk_json_field uring_create_fields[] = {
	{"name", DBK_JSON_STRING, offsetof(struct uring_create_params, name), true, NULL, 0, NULL},
	{"filename", DBK_JSON_STRING, offsetof(struct uring_create_params, filename), true, NULL, 0, NULL},
	{"block_size", DBK_JSON_U32, offsetof(struct uring_create_params, block_size), false, NULL, 0, NULL},
	{"uuid", DBK_JSON_UUID, offsetof(struct uring_create_params, uuid), false, NULL, 0, NULL},
};

static void rpc_bdev_uring_create(struct dbk_rpc_request *req, const json_t *params)
{
	struct uring_create_params p = {0};
	struct dbk_bdev *bdev = NULL;
	char msg[512];
	int rc;

	if (!dbk_rpc_decode_params(req, params, uring_create_fields, DBK_COUNTOF(uring_create_fields), &p))
		return;
	if (!uuid_is_null(p.uuid)) {
		char u[37];
		uuid_unparse_lower(p.uuid, u);
		if (dbk_bdev_get_by_name(u)) {
			dbk_rpc_send_error(req, -EEXIST, "uuid %s is already used by bdev '%s'", u,
					   dbk_bdev_get_name(dbk_bdev_get_by_name(u)));
			goto out;
		}
	}
	rc = dbk_bdev_uring_create(p.name, p.filename, p.block_size, p.uuid, &bdev, msg, sizeof(msg));
	if (rc != 0) {
		if (msg[0] == '\0')
			snprintf(msg, sizeof(msg), "cannot create bdev '%s': %s", p.name, strerror(-rc));
		dbk_rpc_send_error(req, rc, "%s", msg);
		goto out;
	}
	dbk_rpc_send_result(req, json_string(dbk_bdev_get_name(bdev)));
out:
	dbk_json_free_object(uring_create_fields, DBK_COUNTOF(uring_create_fields), &p);
}

struct delete_params {
	char *name;
};

static const struct dbk_json_field delete_fields[] = {
	{"name", DBK_JSON_STRING, offsetof(struct delete_params, name), true, NULL, 0, NULL},
};

struct delete_ctx {
	struct dbk_rpc_request *req;
	char *name;
};

static void delete_done(void *arg, int rc)
{
	struct delete_ctx *c = arg;

	if (rc == 0)
		dbk_rpc_send_bool(c->req, true);
	else if (rc == -ENODEV)
		dbk_rpc_send_error(c->req, rc, "bdev '%s' not found", c->name);
	else if (rc == -EBUSY)
		dbk_rpc_send_error(c->req, rc, "bdev '%s' is already being deleted", c->name);
	else
		dbk_rpc_send_error(c->req, rc, "cannot delete bdev '%s': %s", c->name, strerror(-rc));
	free(c->name);
	free(c);
}

static void bdev_delete(struct dbk_rpc_request *req, const json_t *params, struct dbk_bdev_module *mod)
{
	struct delete_params p = {0};
	struct delete_ctx *c;
	struct dbk_bdev *bdev;
	int rc;

	if (!dbk_rpc_decode_params(req, params, delete_fields, DBK_COUNTOF(delete_fields), &p))
		return;
	bdev = dbk_bdev_get_by_name(p.name);
	if (bdev == NULL || bdev->module != mod) {
		if (bdev)
			dbk_rpc_send_error(req, -ENODEV, "bdev '%s' is not a %s bdev (it is %s)", p.name, mod->name,
					   dbk_bdev_get_module_name(bdev));
		else
			dbk_rpc_send_error(req, -ENODEV, "bdev '%s' not found", p.name);
		goto out;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		dbk_rpc_send_error(req, -ENOMEM, "out of memory");
		goto out;
	}
	c->req = req;
	c->name = p.name;
	p.name = NULL;
	rc = dbk_bdev_unregister_by_name(c->name, mod, delete_done, c);
	if (rc != 0)
		delete_done(c, rc);
out:
	dbk_json_free_object(delete_fields, DBK_COUNTOF(delete_fields), &p);
}

static void rpc_bdev_malloc_delete(struct dbk_rpc_request *req, const json_t *params)
{
	bdev_delete(req, params, &dbk_bdev_malloc_module);
}

static void rpc_bdev_null_delete(struct dbk_rpc_request *req, const json_t *params)
{
	bdev_delete(req, params, &dbk_bdev_null_module);
}

static void rpc_bdev_uring_delete(struct dbk_rpc_request *req, const json_t *params)
{
	bdev_delete(req, params, &dbk_bdev_uring_module);
}

/* -------------------------------------------------------- bdev_set_qos_limit */

struct qos_params {
	char *name;
	uint64_t lim[DBK_BDEV_QOS_NUM_LIMITS];
};

static const struct dbk_json_field qos_fields[] = {
	{"name", DBK_JSON_STRING, offsetof(struct qos_params, name), true, NULL, 0, NULL},
	{"rw_ios_per_sec", DBK_JSON_U64, offsetof(struct qos_params, lim[DBK_BDEV_QOS_RW_IOPS]), false, NULL, 0, NULL},
	{"rw_mbytes_per_sec", DBK_JSON_U64, offsetof(struct qos_params, lim[DBK_BDEV_QOS_RW_BPS]), false, NULL, 0,
	 NULL},
	{"r_mbytes_per_sec", DBK_JSON_U64, offsetof(struct qos_params, lim[DBK_BDEV_QOS_R_BPS]), false, NULL, 0, NULL},
	{"w_mbytes_per_sec", DBK_JSON_U64, offsetof(struct qos_params, lim[DBK_BDEV_QOS_W_BPS]), false, NULL, 0, NULL},
};

static void rpc_bdev_set_qos_limit(struct dbk_rpc_request *req, const json_t *params)
{
	struct qos_params p = {0};
	uint64_t cur[DBK_BDEV_QOS_NUM_LIMITS];
	struct dbk_bdev *bdev;
	bool any = false;
	int rc;

	for (int i = 0; i < DBK_BDEV_QOS_NUM_LIMITS; i++)
		p.lim[i] = UINT64_MAX; /* absent: unchanged */
	if (!dbk_rpc_decode_params(req, params, qos_fields, DBK_COUNTOF(qos_fields), &p))
		return;
	bdev = dbk_bdev_get_by_name(p.name);
	if (bdev == NULL) {
		dbk_rpc_send_error(req, -ENODEV, "bdev '%s' not found", p.name);
		goto out;
	}
	dbk_bdev_get_qos_limits(bdev, cur);
	for (int i = 0; i < DBK_BDEV_QOS_NUM_LIMITS; i++) {
		if (p.lim[i] != UINT64_MAX) {
			cur[i] = p.lim[i];
			any = true;
		}
	}
	if (!any) {
		dbk_rpc_send_error(req, DBK_JSONRPC_INVALID_PARAMS,
				   "no limit given (rw_ios_per_sec, rw_mbytes_per_sec, r_mbytes_per_sec, "
				   "w_mbytes_per_sec)");
		goto out;
	}
	if (cur[DBK_BDEV_QOS_RW_IOPS] % 1000 != 0) {
		dbk_rpc_send_error(req, -EINVAL, "rw_ios_per_sec %llu must be a multiple of 1000",
				   (unsigned long long)cur[DBK_BDEV_QOS_RW_IOPS]);
		goto out;
	}
	for (int i = DBK_BDEV_QOS_RW_BPS; i < DBK_BDEV_QOS_NUM_LIMITS; i++) {
		if (cur[i] > UINT64_MAX / (1024 * 1024)) {
			dbk_rpc_send_error(req, -EINVAL, "%s %llu is too large", qos_fields[i + 1].name,
					   (unsigned long long)cur[i]);
			goto out;
		}
	}
	rc = dbk_bdev_set_qos_limits(bdev, cur);
	if (rc != 0)
		dbk_rpc_send_error(req, rc, "cannot set QoS limits on bdev '%s': %s", p.name, strerror(-rc));
	else
		dbk_rpc_send_bool(req, true);
out:
	dbk_json_free_object(qos_fields, DBK_COUNTOF(qos_fields), &p);
}

const struct dbk_rpc_method dbk_rpc_bdev_methods[] = {
	{"bdev_get_bdevs", rpc_bdev_get_bdevs, DBK_RPC_STARTUP | RT},
	{"bdev_get_iostat", rpc_bdev_get_iostat, RT},
	{"bdev_malloc_create", rpc_bdev_malloc_create, RT},
	{"bdev_malloc_delete", rpc_bdev_malloc_delete, RT},
	{"bdev_null_create", rpc_bdev_null_create, RT},
	{"bdev_null_delete", rpc_bdev_null_delete, RT},
	{"bdev_uring_create", rpc_bdev_uring_create, RT},
	{"bdev_uring_delete", rpc_bdev_uring_delete, RT},
	{"bdev_set_qos_limit", rpc_bdev_set_qos_limit, RT},
	{NULL, NULL, 0},
};
