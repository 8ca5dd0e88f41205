/* The DAOS bdev module (skeleton: engine selection; bdevs follow). */
#include "bdev/daos/bdev_daos.h"
#include "bdev/bdev_module.h"
#include "bdev/daos/dfs_engine.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct dbk_dfs_engine *g_engine = &dbk_dfs_engine_local;
static char g_root[4096] = DBK_DFS_DEFAULT_ROOT;

int dbk_bdev_daos_set_engine(const char *engine, const char *root, char *err, size_t errlen)
{
	const struct dbk_dfs_engine *e = dbk_dfs_engine_get(engine);

	if (e == NULL)
		return dbk_dfs_fail(err, errlen, -EINVAL, "unknown DFS engine '%s' (local%s)", engine ? engine : "",
#ifdef DBK_HAVE_DAOS_ENGINE
				    ", daos"
#else
				    "; this build has no DAOS client: 'daos' needs -DDAOS_PREFIX"
#endif
		);
	if (root && root[0]) {
		if (strlen(root) >= sizeof(g_root))
			return dbk_dfs_fail(err, errlen, -EINVAL, "--dfs-root path too long");
		snprintf(g_root, sizeof(g_root), "%s", root);
	}
	g_engine = e;
	return 0;
}

struct dbk_bdev_module dbk_bdev_daos_module = {
	.name = "daos",
};
