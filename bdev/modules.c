/* The bdev module table. */
#include "bdev/bdev_module.h"
#include "bdev/malloc/bdev_malloc.h"
#include "bdev/null/bdev_null.h"
#include "bdev/uring/bdev_uring.h"

#ifdef DBK_WITH_DAOS_MODULE
extern struct dbk_bdev_module dbk_bdev_daos_module;
#endif

struct dbk_bdev_module *const dbk_bdev_modules[] = {
	&dbk_bdev_malloc_module,
	&dbk_bdev_null_module,
	&dbk_bdev_uring_module,
#ifdef DBK_WITH_DAOS_MODULE
	&dbk_bdev_daos_module,
#endif
	NULL,
};
