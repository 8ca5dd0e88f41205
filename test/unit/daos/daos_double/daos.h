/*
 * Test double of the DAOS client API: daosblk's own minimal declarations of
 * exactly the types, constants and functions bdev/daos/engine_daos.c uses
 * (names and signatures as in DAOS's public API; values are the double's own).
 * Implemented by daos_double.c. Not DAOS code.
 */
#ifndef DBK_DAOS_DOUBLE_DAOS_H
#define DBK_DAOS_DOUBLE_DAOS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
	uint64_t cookie;
} daos_handle_t;

typedef uint64_t daos_size_t;
typedef uint64_t daos_off_t;
typedef uint32_t daos_oclass_id_t;
typedef struct daos_pool_info daos_pool_info_t;	/* only ever NULL here */
typedef struct daos_cont_info daos_cont_info_t;	/* only ever NULL here */

typedef struct {
	void *iov_buf;
	size_t iov_buf_len;
	size_t iov_len;
} d_iov_t;

typedef struct {
	uint32_t sg_nr;
	uint32_t sg_nr_out;
	d_iov_t *sg_iovs;
} d_sg_list_t;

typedef struct daos_event {
	int ev_error;
	struct {
		uint64_t space[20];
	} ev_private;
	uint64_t ev_debug;
} daos_event_t;

/* Error numbers (DAOS calls return them negated; DER codes are >= 1000). */
enum {
	DER_SUCCESS = 0,
	DER_NO_PERM = 1001,
	DER_NO_HDL,
	DER_INVAL,
	DER_EXIST,
	DER_NONEXIST,
	DER_UNREACH,
	DER_NOSPACE,
	DER_NOMEM,
	DER_NOSYS,
	DER_TIMEDOUT,
	DER_BUSY,
	DER_AGAIN,
	DER_TRUNC,
	DER_OVERFLOW,
	DER_CANCELED,
	DER_IO = 2001,
	DER_ENOENT,
	DER_STALE,
	DER_SHUTDOWN,
	DER_NOTSUPPORTED,
	DER_NVME_IO,
};

#define DAOS_PC_RW (1U << 1)
#define DAOS_COO_RW (1U << 1)

int daos_init(void);
int daos_fini(void);
int daos_pool_connect(const char *pool, const char *sys, unsigned int flags, daos_handle_t *poh,
		      daos_pool_info_t *info, daos_event_t *ev);
int daos_pool_disconnect(daos_handle_t poh, daos_event_t *ev);
int daos_cont_open(daos_handle_t poh, const char *cont, unsigned int flags, daos_handle_t *coh,
		   daos_cont_info_t *info, daos_event_t *ev);
int daos_cont_close(daos_handle_t coh, daos_event_t *ev);
daos_oclass_id_t daos_oclass_name2id(const char *name);

#endif
