/* The DAOS bdev module: a file in a DFS (POSIX) container as a block device. */
#ifndef DBK_BDEV_DAOS_BDEV_DAOS_H
#define DBK_BDEV_DAOS_BDEV_DAOS_H

#include <stddef.h>

/*
 * Engine selection, set by the daemon before dbk_bdev_subsystem_init:
 * engine "local" (default; root dir default /var/lib/daosblk) or "daos" (real
 * DAOS, only when built with DAOS). Returns 0 or -EINVAL (unknown engine,
 * "daos" not compiled in) with a message in err.
 */
int dbk_bdev_daos_set_engine(const char *engine, const char *root, char *err, size_t errlen);

#endif
