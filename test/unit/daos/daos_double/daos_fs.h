/* Test double: the DFS calls engine_daos.c makes (see daos.h). dfs_* return positive errno values. */
#ifndef DBK_DAOS_DOUBLE_DAOS_FS_H
#define DBK_DAOS_DOUBLE_DAOS_FS_H

#include <sys/types.h>

#include "daos.h"

#define DFS_MAX_FSIZE (~0ULL)

typedef struct dfs dfs_t;
typedef struct dfs_obj dfs_obj_t;

int dfs_mount(daos_handle_t poh, daos_handle_t coh, int flags, dfs_t **dfs);
int dfs_umount(dfs_t *dfs);
int dfs_open(dfs_t *dfs, dfs_obj_t *parent, const char *name, mode_t mode, int flags, daos_oclass_id_t cid,
	     daos_size_t chunk_size, const char *value, dfs_obj_t **obj);
int dfs_release(dfs_obj_t *obj);
int dfs_read(dfs_t *dfs, dfs_obj_t *obj, d_sg_list_t *sgl, daos_off_t off, daos_size_t *read_size,
	     daos_event_t *ev);
int dfs_write(dfs_t *dfs, dfs_obj_t *obj, d_sg_list_t *sgl, daos_off_t off, daos_event_t *ev);
int dfs_punch(dfs_t *dfs, dfs_obj_t *obj, daos_off_t offset, daos_size_t len);
int dfs_get_size(dfs_t *dfs, dfs_obj_t *obj, daos_size_t *size);
int dfs_getxattr(dfs_t *dfs, dfs_obj_t *obj, const char *name, void *value, daos_size_t *size);
int dfs_setxattr(dfs_t *dfs, dfs_obj_t *obj, const char *name, const void *value, daos_size_t size, int flags);

#endif
