/* Private to rpc/: shared between server.c, rpc_methods.c and rpc_framework.c. */
#ifndef DBK_RPC_RPC_INTERNAL_H
#define DBK_RPC_RPC_INTERNAL_H

#include "rpc/rpc.h"

/* Maximum size of one request (bytes); larger ones get an error and the connection is closed. */
#define DBK_RPC_MAX_REQUEST (4u * 1024 * 1024)

/* Answer pending framework_wait_init/start_init requests with an error and drop hooks (server stop). */
void dbk_rpc_framework_fini(void);

/* Free the run-time method table list (server stop). */
void dbk_rpc_methods_fini(void);

/* Dispatch a parsed request to its method (state check included). Used by the server and local calls. */
void dbk_rpc_dispatch(struct dbk_rpc_request *req, const char *method, const json_t *params);

#endif
