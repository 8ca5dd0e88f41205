/*
 * JSON-RPC 2.0 server (Unix socket, SPDK framing: objects back to back) and
 * the method interface. Handlers run on the main reactor. A handler answers
 * exactly once, now or later (asynchronous methods keep the request pointer
 * and answer from a completion).
 *
 * Methods live in one table per component (rpc/rpc_framework.c, rpc_bdev.c,
 * rpc_nvmf.c, rpc_daos.c, ...); rpc/rpc_methods.c lists the tables. Adding a
 * method is one entry in its component's table.
 */
#ifndef DBK_RPC_RPC_H
#define DBK_RPC_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define DBK_RPC_DEFAULT_SOCKET "/var/tmp/daosblk.sock"

/* JSON-RPC error codes. Failing methods use a negative errno instead. */
#define DBK_JSONRPC_PARSE_ERROR -32700
#define DBK_JSONRPC_INVALID_REQUEST -32600
#define DBK_JSONRPC_METHOD_NOT_FOUND -32601
#define DBK_JSONRPC_INVALID_PARAMS -32602
#define DBK_JSONRPC_INTERNAL_ERROR -32603

/* States in which a method may be called (SPDK's --wait-for-rpc startup state vs running). */
#define DBK_RPC_STARTUP 0x1
#define DBK_RPC_RUNTIME 0x2

struct dbk_rpc_request;

/* params: the "params" member, or NULL when absent. Borrowed for the call only. */
typedef void (*dbk_rpc_handler)(struct dbk_rpc_request *req, const json_t *params);

struct dbk_rpc_method {
	const char *name;
	dbk_rpc_handler handler;
	uint32_t state_mask;	/* DBK_RPC_STARTUP | DBK_RPC_RUNTIME */
};

/* Send the result (steals the reference). For notifications (no id) nothing is sent but req is freed. */
void dbk_rpc_send_result(struct dbk_rpc_request *req, json_t *result);
void dbk_rpc_send_bool(struct dbk_rpc_request *req, bool value);
/* Error response: code is a JSON-RPC code or a negative errno. */
void dbk_rpc_send_error(struct dbk_rpc_request *req, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---------------------------------------------------------- params decoding */

enum dbk_json_type {
	DBK_JSON_STRING,	/* char *, strdup'ed */
	DBK_JSON_BOOL,		/* bool */
	DBK_JSON_U16,		/* uint16_t */
	DBK_JSON_U32,		/* uint32_t */
	DBK_JSON_U64,		/* uint64_t */
	DBK_JSON_I32,		/* int32_t */
	DBK_JSON_DOUBLE,	/* double (accepts integers too) */
	DBK_JSON_UUID,		/* uuid_t (16 bytes), from the canonical string */
	DBK_JSON_OBJECT,	/* nested object decoded with .nested into the struct at offset */
	DBK_JSON_ANY,		/* json_t *, a new reference */
};

struct dbk_json_field {
	const char *name;
	enum dbk_json_type type;
	size_t offset;			/* offsetof(struct, member) */
	bool required;
	const struct dbk_json_field *nested;	/* DBK_JSON_OBJECT */
	size_t nested_count;
	size_t *present_offset;		/* unused; reserved */
};

/*
 * Decode obj (an object, or NULL meaning {}) into out. Unknown keys, missing
 * required keys, wrong types and out-of-range integers fail with -EINVAL and a
 * message naming the parameter ("missing required parameter 'name'",
 * "parameter 'block_size' must be an unsigned 32-bit integer", "unknown
 * parameter 'foo'"). Fields absent from obj are left untouched (set defaults
 * first). On failure nothing stays allocated.
 */
int dbk_json_decode_object(const json_t *obj, const struct dbk_json_field *fields, size_t count, void *out,
			   char *err, size_t errlen);
/* Free what dbk_json_decode_object allocated (strings, ANY refs, nested). */
void dbk_json_free_object(const struct dbk_json_field *fields, size_t count, void *out);

/* Convenience: decode params or answer -32602 with the message; returns true when decoded. */
bool dbk_rpc_decode_params(struct dbk_rpc_request *req, const json_t *params, const struct dbk_json_field *fields,
			   size_t count, void *out);

#define DBK_COUNTOF(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------ server */

/* Start listening on path (mode 0600) on the calling (main) reactor. 0 or -errno. */
int dbk_rpc_server_start(const char *path);
void dbk_rpc_server_stop(void);
/*
 * Serve an already connected, non-blocking stream socket as one more RPC
 * connection (the fuzz harness feeds requests through a socketpair), with or
 * without a listener. On the main reactor. 0 (fd is the server's now: closed
 * with the connection or by dbk_rpc_server_stop), or -errno (fd untouched).
 */
int dbk_rpc_server_add_conn(int fd);
/* Current state (DBK_RPC_STARTUP until framework_start_init, then DBK_RPC_RUNTIME). */
void dbk_rpc_set_state(uint32_t state);
uint32_t dbk_rpc_get_state(void);

/* Look up a method (NULL if unknown); iterate all (idx from 0 until NULL). */
const struct dbk_rpc_method *dbk_rpc_find_method(const char *name);
const struct dbk_rpc_method *dbk_rpc_method_at(size_t idx);

/*
 * Call a method in-process (config files at start, tests). cb(ctx, result,
 * error_code, error_message) runs once on the main reactor: result is the
 * borrowed result (NULL on error), error_code 0 on success.
 */
typedef void (*dbk_rpc_local_cb)(void *ctx, const json_t *result, int error_code, const char *error_message);
void dbk_rpc_call_local(const char *method, const json_t *params, dbk_rpc_local_cb cb, void *ctx);

/*
 * Check the method registry for duplicate names (a startup error): 0, or
 * -EEXIST naming the method in err. dbk_rpc_server_start calls it too.
 */
int dbk_rpc_check_methods(char *err, size_t errlen);
/*
 * Add a method table (terminated by name == NULL) at run time, e.g. test
 * methods. The table must outlive the server. 0, -EEXIST (a name already
 * registered) or -ENOMEM. Tables added are forgotten by dbk_rpc_server_stop.
 */
int dbk_rpc_register_methods(const struct dbk_rpc_method *table);

/* ------------------------------------------------------ framework hooks (app) */

/*
 * framework_start_init (--wait-for-rpc) calls fn(ctx) on the main reactor; the
 * app then initialises the subsystems, applies its config and calls
 * dbk_rpc_framework_init_done(). Without a handler framework_start_init fails.
 */
void dbk_rpc_set_start_init_fn(void (*fn)(void *ctx), void *ctx);
/*
 * Initialisation finished: rc == 0 success (state becomes DBK_RPC_RUNTIME),
 * otherwise failure. Pending framework_wait_init / framework_start_init
 * requests are answered now (true, or the error rc).
 */
void dbk_rpc_framework_init_done(int rc);
bool dbk_rpc_framework_init_is_done(void);
/* spdk_kill_instance calls fn(ctx) on the main reactor after answering (the app shuts down). */
void dbk_rpc_set_shutdown_fn(void (*fn)(void *ctx), void *ctx);

/* Method tables, one per component, each terminated by an entry with name == NULL. */
extern const struct dbk_rpc_method dbk_rpc_framework_methods[];
extern const struct dbk_rpc_method dbk_rpc_keyring_methods[];
extern const struct dbk_rpc_method dbk_rpc_bdev_methods[];
extern const struct dbk_rpc_method dbk_rpc_nvmf_methods[];
extern const struct dbk_rpc_method dbk_rpc_daos_methods[];

#endif
