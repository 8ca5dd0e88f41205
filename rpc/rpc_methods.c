/* The method registry: every component's table, plus tables added at run time. */
#include "rpc/rpc_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct dbk_rpc_method *const g_static_tables[] = {
	dbk_rpc_framework_methods,
#ifdef DBK_HAVE_RPC_KEYRING
	dbk_rpc_keyring_methods,
#endif
#ifdef DBK_HAVE_RPC_BDEV
	dbk_rpc_bdev_methods,
#endif
#ifdef DBK_HAVE_RPC_NVMF
	dbk_rpc_nvmf_methods,
#endif
#ifdef DBK_HAVE_RPC_DAOS
	dbk_rpc_daos_methods,
#endif
};

#define MAX_EXTRA_TABLES 16
static const struct dbk_rpc_method *g_extra_tables[MAX_EXTRA_TABLES];
static size_t g_num_extra;

static const struct dbk_rpc_method *table_at(size_t t)
{
	if (t < DBK_COUNTOF(g_static_tables))
		return g_static_tables[t];
	t -= DBK_COUNTOF(g_static_tables);
	return t < g_num_extra ? g_extra_tables[t] : NULL;
}

const struct dbk_rpc_method *dbk_rpc_method_at(size_t idx)
{
	const struct dbk_rpc_method *tab;

	for (size_t t = 0; (tab = table_at(t)) != NULL; t++) {
		for (const struct dbk_rpc_method *m = tab; m->name; m++) {
			if (idx == 0)
				return m;
			idx--;
		}
	}
	return NULL;
}

const struct dbk_rpc_method *dbk_rpc_find_method(const char *name)
{
	const struct dbk_rpc_method *m;

	if (!name)
		return NULL;
	for (size_t i = 0; (m = dbk_rpc_method_at(i)) != NULL; i++)
		if (strcmp(m->name, name) == 0)
			return m;
	return NULL;
}

int dbk_rpc_check_methods(char *err, size_t errlen)
{
	const struct dbk_rpc_method *a, *b;

	for (size_t i = 0; (a = dbk_rpc_method_at(i)) != NULL; i++) {
		for (size_t j = i + 1; (b = dbk_rpc_method_at(j)) != NULL; j++) {
			if (strcmp(a->name, b->name) == 0) {
				snprintf(err, errlen, "RPC method '%s' is registered twice", a->name);
				return -EEXIST;
			}
		}
	}
	return 0;
}

int dbk_rpc_register_methods(const struct dbk_rpc_method *table)
{
	if (g_num_extra == MAX_EXTRA_TABLES)
		return -ENOMEM;
	for (const struct dbk_rpc_method *m = table; m->name; m++)
		if (dbk_rpc_find_method(m->name))
			return -EEXIST;
	g_extra_tables[g_num_extra++] = table;
	return 0;
}

void dbk_rpc_methods_fini(void)
{
	g_num_extra = 0;
}
