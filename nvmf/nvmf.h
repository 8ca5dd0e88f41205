/*
 * The NVMe-over-Fabrics target as the app and the RPC layer see it.
 * All calls on the main reactor.
 */
#ifndef DBK_NVMF_NVMF_H
#define DBK_NVMF_NVMF_H

#include <jansson.h>

/* Create the target (discovery subsystem, poll groups on every reactor). 0 or -errno. */
int dbk_nvmf_tgt_init(void);
/* Stop listeners, disconnect every qpair (in-flight I/O completes first), destroy subsystems
 * (releasing namespaces' bdevs), poll groups and transports; then cb(ctx) on the main reactor. */
void dbk_nvmf_tgt_fini(void (*cb)(void *ctx), void *ctx);
/* Append {"method","params"} entries rebuilding transports, subsystems, namespaces, hosts, listeners. */
void dbk_nvmf_write_config_json(json_t *array);

#endif
