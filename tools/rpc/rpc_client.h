/*
 * The JSON-RPC client side of daosblk's tools (daosblk-rpc, daosblk-top): one Unix-socket connection to
 * daosblk-tgt, requests sent whole, answers read back to back (a complete JSON value each).
 */
#ifndef DBK_TOOLS_RPC_CLIENT_H
#define DBK_TOOLS_RPC_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct dbk_rpc_client {
	const char *prog;	/* for messages: "daosblk-rpc: ..." */
	const char *sock;
	double timeout_s;	/* per answer */
	bool verbose;		/* request and answer on stderr */
	int fd;			/* -1 until the first call connects */
	int next_id;
	char *buf;
	size_t len, cap;
};

#define DBK_RPC_CLIENT_INIT(prog_, sock_, timeout_) \
	{ .prog = (prog_), .sock = (sock_), .timeout_s = (timeout_), .fd = -1, .next_id = 1 }

/*
 * Call method with params (borrowed, may be NULL). Returns the result (new reference) or NULL; on a JSON-RPC
 * error *code and *msg (malloc'ed) are set; *code == 0 with NULL: transport failure, already reported.
 */
json_t *dbk_rpc_client_call(struct dbk_rpc_client *c, const char *method, json_t *params, int *code, char **msg);
void dbk_rpc_client_close(struct dbk_rpc_client *c);
double dbk_rpc_client_now(void);	/* CLOCK_MONOTONIC seconds */

#endif
