/* Keyring JSON-RPC methods (SPDK names and parameters): keyring_file_add_key, keyring_file_remove_key, keyring_get_keys. */
#include "rpc/rpc.h"

#include "keyring/keyring.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct add_key_params {
	char *name;
	char *path;
};

static const struct dbk_json_field add_key_fields[] = {
	{"name", DBK_JSON_STRING, offsetof(struct add_key_params, name), true, NULL, 0, NULL},
	{"path", DBK_JSON_STRING, offsetof(struct add_key_params, path), true, NULL, 0, NULL},
};

static void rpc_keyring_file_add_key(struct dbk_rpc_request *req, const json_t *params)
{
	struct add_key_params p = {0};
	char err[512];
	int rc;

	if (!dbk_rpc_decode_params(req, params, add_key_fields, DBK_COUNTOF(add_key_fields), &p))
		return;
	rc = dbk_keyring_file_add_key(p.name, p.path, err, sizeof(err));
	if (rc)
		dbk_rpc_send_error(req, rc, "%s", err);
	else
		dbk_rpc_send_bool(req, true);
	dbk_json_free_object(add_key_fields, DBK_COUNTOF(add_key_fields), &p);
}

struct remove_key_params {
	char *name;
};

static const struct dbk_json_field remove_key_fields[] = {
	{"name", DBK_JSON_STRING, offsetof(struct remove_key_params, name), true, NULL, 0, NULL},
};

static void rpc_keyring_file_remove_key(struct dbk_rpc_request *req, const json_t *params)
{
	struct remove_key_params p = {0};
	char err[512];
	int rc;

	if (!dbk_rpc_decode_params(req, params, remove_key_fields, DBK_COUNTOF(remove_key_fields), &p))
		return;
	rc = dbk_keyring_file_remove_key(p.name, err, sizeof(err));
	if (rc)
		dbk_rpc_send_error(req, rc, "%s", err);
	else
		dbk_rpc_send_bool(req, true);
	dbk_json_free_object(remove_key_fields, DBK_COUNTOF(remove_key_fields), &p);
}

static void rpc_keyring_get_keys(struct dbk_rpc_request *req, const json_t *params)
{
	if (params && !(json_is_object(params) && json_object_size(params) == 0)) {
		dbk_rpc_send_error(req, DBK_JSONRPC_INVALID_PARAMS, "keyring_get_keys takes no parameters");
		return;
	}
	dbk_rpc_send_result(req, dbk_keyring_get_keys_json());
}

#define BOTH (DBK_RPC_STARTUP | DBK_RPC_RUNTIME)
const struct dbk_rpc_method dbk_rpc_keyring_methods[] = {
	{"keyring_file_add_key", rpc_keyring_file_add_key, BOTH},
	{"keyring_file_remove_key", rpc_keyring_file_remove_key, BOTH},
	{"keyring_get_keys", rpc_keyring_get_keys, BOTH},
	{NULL, NULL, 0},
};
