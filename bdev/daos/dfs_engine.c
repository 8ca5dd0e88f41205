/* Messages are truncated to their buffers on purpose. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

/* Engine-independent helpers of the DFS engine interface: engine lookup, messages, object classes. */
#include "bdev/daos/dfs_engine.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const struct dbk_dfs_engine *dbk_dfs_engine_get(const char *name)
{
	if (name == NULL || strcmp(name, "local") == 0)
		return &dbk_dfs_engine_local;
#ifdef DBK_HAVE_DAOS_ENGINE
	if (strcmp(name, "daos") == 0)
		return &dbk_dfs_engine_daos;
#endif
	return NULL;
}

const char *dbk_dfs_strerror(int rc)
{
	if (rc >= 0)
		return "success";
	return strerror(-rc);
}

int dbk_dfs_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/*
 * Object class names in DAOS CLI notation: S<n>, RP_<r>G<n>, EC_<k>P<p>G<n>,
 * where G<n> ranges over the group counts below and GX means "all targets".
 */
static const char *const g_groups[] = {"1", "2", "4", "6", "8", "12", "16", "32", "X"};
#define NGROUPS (sizeof(g_groups) / sizeof(g_groups[0]))
static const unsigned g_rp_full[] = {2, 3, 4, 5, 6};		/* RP_<r>G{groups} */
static const unsigned g_rp_single[] = {12, 16, 24, 32, 48, 64, 128};	/* RP_<r>G1 only */
struct ec_shape {
	unsigned k, p;
};
static const struct ec_shape g_ec[] = {{2, 1}, {2, 2}, {4, 1}, {4, 2}, {4, 3}, {8, 1}, {8, 2},
				       {8, 3}, {16, 1}, {16, 2}, {16, 3}};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define NUM_OCLASS (NGROUPS + COUNT(g_rp_full) * NGROUPS + COUNT(g_rp_single) + COUNT(g_ec) * NGROUPS)

static char g_names[NUM_OCLASS][16];
static pthread_once_t g_names_once = PTHREAD_ONCE_INIT;

static void build_names(void)
{
	size_t n = 0;

	for (size_t g = 0; g < NGROUPS; g++)
		snprintf(g_names[n++], sizeof(g_names[0]), "S%s", g_groups[g]);
	for (size_t r = 0; r < COUNT(g_rp_full); r++)
		for (size_t g = 0; g < NGROUPS; g++)
			snprintf(g_names[n++], sizeof(g_names[0]), "RP_%uG%s", g_rp_full[r], g_groups[g]);
	for (size_t r = 0; r < COUNT(g_rp_single); r++)
		snprintf(g_names[n++], sizeof(g_names[0]), "RP_%uG1", g_rp_single[r]);
	for (size_t e = 0; e < COUNT(g_ec); e++)
		for (size_t g = 0; g < NGROUPS; g++)
			snprintf(g_names[n++], sizeof(g_names[0]), "EC_%uP%uG%s", g_ec[e].k, g_ec[e].p, g_groups[g]);
}

bool dbk_dfs_oclass_valid(const char *name)
{
	if (name == NULL)
		return false;
	pthread_once(&g_names_once, build_names);
	for (size_t i = 0; i < NUM_OCLASS; i++)
		if (strcmp(g_names[i], name) == 0)
			return true;
	return false;
}

const char *dbk_dfs_oclass_at(size_t i)
{
	pthread_once(&g_names_once, build_names);
	return i < NUM_OCLASS ? g_names[i] : NULL;
}

/* ------------------------------------------------------------ connections */

void dbk_dfs_conn_close(struct dbk_dfs_conn *c)
{
	const struct dbk_dfs_engine *e = c->eng;

	if (e == NULL)
		return;
	if (c->eq) {
		e->eq_destroy(c->eq);
		c->eq = NULL;
	}
	if (c->file) {
		e->file_close(c->file);
		c->file = NULL;
	}
	if (c->fs) {
		e->umount(c->fs);
		c->fs = NULL;
	}
	if (c->cont) {
		e->cont_close(c->cont);
		c->cont = NULL;
	}
	if (c->pool) {
		e->pool_disconnect(c->pool);
		c->pool = NULL;
	}
	if (c->engine_ref) {
		e->fini();
		c->engine_ref = false;
	}
}

int dbk_dfs_conn_open(struct dbk_dfs_conn *c, const struct dbk_dfs_engine *e, const char *root, const char *pool,
		      const char *cont, const char *path, const struct dbk_dfs_file_opts *fo, uint32_t eq_depth,
		      char *err, size_t errlen)
{
	char msg[400];
	int rc;

	memset(c, 0, sizeof(*c));
	c->eng = e;
	msg[0] = '\0';
	rc = e->init(root, msg, sizeof(msg));
	if (rc) {
		dbk_dfs_fail(err, errlen, rc, "DFS engine '%s': %s", e->name, msg);
		return rc;
	}
	c->engine_ref = true;
	rc = e->pool_connect(pool, &c->pool, msg, sizeof(msg));
	if (rc) {
		if ((rc == -EACCES || rc == -EPERM) && strstr(msg, "permission") == NULL)
			dbk_dfs_fail(err, errlen, rc, "pool '%s': permission denied (%s)", pool, msg);
		else
			dbk_dfs_fail(err, errlen, rc, "%s", msg);
		goto fail;
	}
	rc = e->cont_open(c->pool, cont, &c->cont, msg, sizeof(msg));
	if (rc) {
		if ((rc == -EACCES || rc == -EPERM) && strstr(msg, "permission") == NULL)
			dbk_dfs_fail(err, errlen, rc, "container '%s' in pool '%s': permission denied (%s)", cont, pool,
				     msg);
		else
			dbk_dfs_fail(err, errlen, rc, "%s", msg);
		goto fail;
	}
	rc = e->mount(c->pool, c->cont, &c->fs, msg, sizeof(msg));
	if (rc) {
		dbk_dfs_fail(err, errlen, rc, "%s", msg);
		goto fail;
	}
	rc = e->file_open(c->fs, path, fo, &c->file, msg, sizeof(msg));
	if (rc) {
		dbk_dfs_fail(err, errlen, rc, "file '%s' in container '%s' of pool '%s': %s", path, cont, pool, msg);
		goto fail;
	}
	rc = e->eq_create(eq_depth, &c->eq, msg, sizeof(msg));
	if (rc) {
		dbk_dfs_fail(err, errlen, rc, "%s", msg);
		goto fail;
	}
	return 0;
fail:
	dbk_dfs_conn_close(c);
	return rc;
}
