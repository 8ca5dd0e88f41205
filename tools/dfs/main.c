/*
 * daosblk-dfs: administration of the local DFS engine's pools and containers,
 * mirroring `dmg pool create` and `daos cont create --type POSIX`.
 *
 * Exit status: 0 success, 1 the operation failed (message on stderr), 2 usage error.
 */
#include "bdev/daos/dfs_engine.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#define EXIT_USAGE 2

struct opts {
	const char *root;
	const char *uuid;
	const char *type;
	const char *oclass;
	const char *chunk;
	bool force;
	bool if_absent;
	bool if_exists;
	bool json;
	bool help;
	const char *pos[8];
	int npos;
};

static const char *g_prog = "daosblk-dfs";

static void usage_main(FILE *f)
{
	fprintf(f,
		"usage: daosblk-dfs [--dfs-root DIR] COMMAND ...\n"
		"\n"
		"Manage the pools and containers of daosblk's local DFS engine (the default backend of\n"
		"bdev_daos_create), like `dmg pool ...` and `daos cont ...` do for real DAOS.\n"
		"Pools and containers are named by label or UUID everywhere.\n"
		"\n"
		"commands:\n"
		"  pool create LABEL [--uuid UUID] [--if-absent]\n"
		"  pool list [--json]\n"
		"  pool query POOL [--json]\n"
		"  pool destroy POOL [--force] [--if-exists]\n"
		"  cont create POOL LABEL [--type POSIX] [--oclass SX] [--chunk-size 1MiB] [--uuid UUID] [--if-absent]\n"
		"  cont list POOL [--json]\n"
		"  cont query POOL CONT [--json]\n"
		"  cont destroy POOL CONT [--force] [--if-exists]\n"
		"  ls POOL CONT [--json]          files in the container, with sizes\n"
		"  rm POOL CONT NAME [--if-exists]  remove a file (one a deleted bdev left behind)\n"
		"\n"
		"options:\n"
		"  --dfs-root DIR   root directory of the local engine (default: $DBK_DFS_ROOT or %s;\n"
		"                   daosblk-tgt takes the same --dfs-root)\n"
		"  -h, --help       help (also after any command)\n"
		"\n"
		"exit status: 0 success, 1 failure, 2 usage error\n",
		DBK_DFS_DEFAULT_ROOT);
}

static void usage_pool(FILE *f)
{
	fprintf(f, "usage:\n"
		   "  daosblk-dfs pool create LABEL [--uuid UUID] [--if-absent]\n"
		   "      create a pool; --if-absent: succeed quietly when a pool with that label exists\n"
		   "  daosblk-dfs pool list [--json]\n"
		   "  daosblk-dfs pool query POOL [--json]\n"
		   "  daosblk-dfs pool destroy POOL [--force] [--if-exists]\n"
		   "      destroy a pool; --force also destroys its containers and their data;\n"
		   "      --if-exists: succeed when there is no such pool\n");
}

static void usage_cont(FILE *f)
{
	fprintf(f, "usage:\n"
		   "  daosblk-dfs cont create POOL LABEL [--type POSIX] [--oclass SX] [--chunk-size SIZE] [--uuid UUID]\n"
		   "                          [--if-absent]\n"
		   "      create a container (type POSIX by default; only POSIX containers hold block devices);\n"
		   "      SIZE takes suffixes K, KiB, M, MiB, G, GiB (1MiB by default)\n"
		   "  daosblk-dfs cont list POOL [--json]\n"
		   "  daosblk-dfs cont query POOL CONT [--json]\n"
		   "  daosblk-dfs cont destroy POOL CONT [--force] [--if-exists]\n"
		   "      destroy a container; --force even when it holds files\n");
}

static void usage_ls(FILE *f)
{
	fprintf(f, "usage: daosblk-dfs ls POOL CONT [--json]\n"
		   "  list the files at the root of the container: logical size and bytes allocated on disk\n"
		   "  (a DAOS bdev is the file /<bdev name>, or the bdev's 'path')\n");
}

static void usage_rm(FILE *f)
{
	fprintf(f, "usage: daosblk-dfs rm POOL CONT NAME [--if-exists]\n"
		   "  remove the file NAME (or /NAME) at the root of the container, with its xattrs: the file a\n"
		   "  DAOS bdev leaves behind after bdev_daos_delete (which keeps the data).\n"
		   "  Refused while a bdev of a running daosblk-tgt uses the file: the target keeps it open with\n"
		   "  a shared flock(2) from bdev_daos_create until the bdev is deleted, and rm needs an exclusive\n"
		   "  one. --if-exists: succeed when there is no such file.\n");
}

static int usage_error(void (*usage)(FILE *), const char *fmt, const char *arg)
{
	fprintf(stderr, "%s: ", g_prog);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	usage(stderr);
	return EXIT_USAGE;
}

static int fail(const char *err, int rc)
{
	fprintf(stderr, "%s: %s\n", g_prog, err[0] ? err : strerror(-rc));
	return 1;
}

/* "1MiB", "4096", "64K", "2G" -> bytes. */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || s[0] == '-')
		return -EINVAL;
	if (*end) {
		if (strcasecmp(end, "k") == 0 || strcasecmp(end, "kib") == 0 || strcasecmp(end, "kb") == 0)
			mul = 1024;
		else if (strcasecmp(end, "m") == 0 || strcasecmp(end, "mib") == 0 || strcasecmp(end, "mb") == 0)
			mul = 1024 * 1024;
		else if (strcasecmp(end, "g") == 0 || strcasecmp(end, "gib") == 0 || strcasecmp(end, "gb") == 0)
			mul = 1024ull * 1024 * 1024;
		else
			return -EINVAL;
	}
	if (v == 0 || v > UINT64_MAX / mul)
		return -EINVAL;
	*out = v * mul;
	return 0;
}

static void fmt_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || gmtime_r(&tt, &tm) == NULL)
		snprintf(buf, len, "-");
	else
		strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *pool_json(const struct dbk_dfs_pool_info *p)
{
	return json_pack("{s:s,s:s,s:I,s:i}", "label", p->label, "uuid", p->uuid, "created", (json_int_t)p->created,
			 "containers", (int)p->num_conts);
}

static json_t *cont_json(const struct dbk_dfs_cont_info *c)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:I,s:I}", "label", c->label, "uuid", c->uuid, "type", c->type, "oclass",
			 c->oclass, "chunk_size", (json_int_t)c->chunk_size, "created", (json_int_t)c->created);
}

static void print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	if (s)
		printf("%s\n", s);
	free(s);
	json_decref(j);
}

/* ------------------------------------------------------------------ pools */

static int cmd_pool(struct opts *o)
{
	char err[512] = "";
	const char *sub = o->npos > 0 ? o->pos[0] : NULL;
	int rc;

	if (sub == NULL) {
		if (o->help) {
			usage_pool(stdout);
			return 0;
		}
		return usage_error(usage_pool, "%s", "pool: missing subcommand (create, list, query, destroy)");
	}
	if (o->help) {
		usage_pool(stdout);
		return 0;
	}
	if (strcmp(sub, "create") == 0) {
		struct dbk_dfs_pool_info info;
		if (o->npos != 2)
			return usage_error(usage_pool, "%s", "pool create takes exactly one LABEL");
		rc = dbk_dfs_local_pool_create(o->root, o->pos[1], o->uuid, &info, err, sizeof(err));
		if (rc == -EEXIST && o->if_absent &&
		    dbk_dfs_local_pool_query(o->root, o->pos[1], &info, NULL, 0) == 0) {
			printf("Pool '%s' exists: UUID %s\n", info.label, info.uuid);
			return 0;
		}
		if (rc)
			return fail(err, rc);
		printf("Pool created: label %s UUID %s\n", info.label, info.uuid);
		return 0;
	}
	if (strcmp(sub, "list") == 0) {
		struct dbk_dfs_pool_info *p;
		size_t n;
		if (o->npos != 1)
			return usage_error(usage_pool, "%s", "pool list takes no arguments");
		rc = dbk_dfs_local_pool_list(o->root, &p, &n, err, sizeof(err));
		if (rc)
			return fail(err, rc);
		if (o->json) {
			json_t *arr = json_array();
			for (size_t i = 0; i < n; i++)
				json_array_append_new(arr, pool_json(&p[i]));
			print_json(arr);
		} else if (n == 0) {
			printf("No pools in %s\n", o->root);
		} else {
			printf("%-36s  %-24s  %5s  %s\n", "UUID", "Label", "Conts", "Created");
			for (size_t i = 0; i < n; i++) {
				char t[32];
				fmt_time(p[i].created, t, sizeof(t));
				printf("%-36s  %-24s  %5u  %s\n", p[i].uuid, p[i].label, p[i].num_conts, t);
			}
		}
		free(p);
		return 0;
	}
	if (strcmp(sub, "query") == 0) {
		struct dbk_dfs_pool_info info;
		if (o->npos != 2)
			return usage_error(usage_pool, "%s", "pool query takes exactly one POOL");
		rc = dbk_dfs_local_pool_query(o->root, o->pos[1], &info, err, sizeof(err));
		if (rc)
			return fail(err, rc);
		if (o->json) {
			print_json(pool_json(&info));
		} else {
			char t[32];
			fmt_time(info.created, t, sizeof(t));
			printf("Pool %s\n  label: %s\n  containers: %u\n  created: %s\n", info.uuid, info.label,
			       info.num_conts, t);
		}
		return 0;
	}
	if (strcmp(sub, "destroy") == 0) {
		if (o->npos != 2)
			return usage_error(usage_pool, "%s", "pool destroy takes exactly one POOL");
		rc = dbk_dfs_local_pool_destroy(o->root, o->pos[1], o->force, err, sizeof(err));
		if (rc == -ENOENT && o->if_exists)
			return 0;
		if (rc)
			return fail(err, rc);
		printf("Pool '%s' destroyed\n", o->pos[1]);
		return 0;
	}
	return usage_error(usage_pool, "unknown pool subcommand '%s'", sub);
}

/* ------------------------------------------------------------- containers */

static int cmd_cont(struct opts *o)
{
	char err[512] = "";
	const char *sub = o->npos > 0 ? o->pos[0] : NULL;
	int rc;

	if (o->help) {
		usage_cont(stdout);
		return 0;
	}
	if (sub == NULL)
		return usage_error(usage_cont, "%s", "cont: missing subcommand (create, list, query, destroy)");
	if (strcmp(sub, "create") == 0) {
		struct dbk_dfs_cont_info info;
		uint64_t chunk = 0;
		if (o->npos != 3)
			return usage_error(usage_cont, "%s", "cont create takes POOL and LABEL");
		if (o->chunk && parse_size(o->chunk, &chunk) != 0)
			return usage_error(usage_cont, "invalid --chunk-size '%s'", o->chunk);
		rc = dbk_dfs_local_cont_create(o->root, o->pos[1], o->pos[2], o->uuid, o->type ? o->type : "POSIX",
					       o->oclass, chunk, &info, err, sizeof(err));
		if (rc == -EEXIST && o->if_absent &&
		    dbk_dfs_local_cont_query(o->root, o->pos[1], o->pos[2], &info, NULL, 0) == 0) {
			printf("Container '%s' exists: UUID %s type %s\n", info.label, info.uuid, info.type);
			return 0;
		}
		if (rc)
			return fail(err, rc);
		printf("Container created: label %s UUID %s type %s oclass %s chunk_size %" PRIu64 "\n", info.label,
		       info.uuid, info.type, info.oclass, info.chunk_size);
		return 0;
	}
	if (strcmp(sub, "list") == 0) {
		struct dbk_dfs_cont_info *c;
		size_t n;
		if (o->npos != 2)
			return usage_error(usage_cont, "%s", "cont list takes exactly one POOL");
		rc = dbk_dfs_local_cont_list(o->root, o->pos[1], &c, &n, err, sizeof(err));
		if (rc)
			return fail(err, rc);
		if (o->json) {
			json_t *arr = json_array();
			for (size_t i = 0; i < n; i++)
				json_array_append_new(arr, cont_json(&c[i]));
			print_json(arr);
		} else if (n == 0) {
			printf("No containers in pool '%s'\n", o->pos[1]);
		} else {
			printf("%-36s  %-24s  %-8s  %-8s  %s\n", "UUID", "Label", "Type", "Oclass", "Chunk");
			for (size_t i = 0; i < n; i++)
				printf("%-36s  %-24s  %-8s  %-8s  %" PRIu64 "\n", c[i].uuid, c[i].label, c[i].type,
				       c[i].oclass, c[i].chunk_size);
		}
		free(c);
		return 0;
	}
	if (strcmp(sub, "query") == 0) {
		struct dbk_dfs_cont_info info;
		if (o->npos != 3)
			return usage_error(usage_cont, "%s", "cont query takes POOL and CONT");
		rc = dbk_dfs_local_cont_query(o->root, o->pos[1], o->pos[2], &info, err, sizeof(err));
		if (rc)
			return fail(err, rc);
		if (o->json)
			print_json(cont_json(&info));
		else
			printf("Container %s\n  label: %s\n  type: %s\n  oclass: %s\n  chunk_size: %" PRIu64 "\n",
			       info.uuid, info.label, info.type, info.oclass, info.chunk_size);
		return 0;
	}
	if (strcmp(sub, "destroy") == 0) {
		if (o->npos != 3)
			return usage_error(usage_cont, "%s", "cont destroy takes POOL and CONT");
		rc = dbk_dfs_local_cont_destroy(o->root, o->pos[1], o->pos[2], o->force, err, sizeof(err));
		if (rc == -ENOENT && o->if_exists)
			return 0;
		if (rc)
			return fail(err, rc);
		printf("Container '%s' destroyed\n", o->pos[2]);
		return 0;
	}
	return usage_error(usage_cont, "unknown cont subcommand '%s'", sub);
}

static int cmd_ls(struct opts *o)
{
	char err[512] = "";
	struct dbk_dfs_file_info *f;
	size_t n;
	int rc;

	if (o->help) {
		usage_ls(stdout);
		return 0;
	}
	if (o->npos != 2)
		return usage_error(usage_ls, "%s", "ls takes POOL and CONT");
	rc = dbk_dfs_local_ls(o->root, o->pos[0], o->pos[1], &f, &n, err, sizeof(err));
	if (rc)
		return fail(err, rc);
	if (o->json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, json_pack("{s:s,s:I,s:I}", "name", f[i].name, "size",
							     (json_int_t)f[i].size, "allocated",
							     (json_int_t)f[i].allocated));
		print_json(arr);
	} else if (n == 0) {
		printf("No files in container '%s' of pool '%s'\n", o->pos[1], o->pos[0]);
	} else {
		printf("%16s  %16s  %s\n", "Size", "Allocated", "Name");
		for (size_t i = 0; i < n; i++)
			printf("%16" PRIu64 "  %16" PRIu64 "  /%s\n", f[i].size, f[i].allocated, f[i].name);
	}
	free(f);
	return 0;
}

static int cmd_rm(struct opts *o)
{
	char err[512] = "";
	int rc;

	if (o->help) {
		usage_rm(stdout);
		return 0;
	}
	if (o->npos != 3)
		return usage_error(usage_rm, "%s", "rm takes POOL, CONT and NAME");
	rc = dbk_dfs_local_file_remove(o->root, o->pos[0], o->pos[1], o->pos[2], err, sizeof(err));
	if (rc == -ENOENT && o->if_exists && strstr(err, "file '/") == err)
		return 0;
	if (rc)
		return fail(err, rc);
	if (err[0])
		fprintf(stderr, "%s: %s\n", g_prog, err);
	printf("File '/%s' removed from container '%s'\n", o->pos[2][0] == '/' ? o->pos[2] + 1 : o->pos[2],
	       o->pos[1]);
	return 0;
}

/* ------------------------------------------------------------------- main */

/* Option with a value: "--x V" or "--x=V". Returns 1 matched (value in *val), 0 not, -1 missing value. */
static int opt_value(int argc, char **argv, int *i, const char *name, const char **val)
{
	size_t n = strlen(name);

	if (strncmp(argv[*i], name, n) != 0)
		return 0;
	if (argv[*i][n] == '=') {
		*val = argv[*i] + n + 1;
		return 1;
	}
	if (argv[*i][n] != '\0')
		return 0;
	if (*i + 1 >= argc)
		return -1;
	*val = argv[++*i];
	return 1;
}

int main(int argc, char **argv)
{
	static const char *const valued[] = {"--dfs-root", "--uuid", "--type", "--oclass", "--chunk-size"};
	struct opts o;
	const char *cmd = NULL;
	bool options_done = false;

	memset(&o, 0, sizeof(o));
	o.root = getenv("DBK_DFS_ROOT");
	if (o.root == NULL || o.root[0] == '\0')
		o.root = DBK_DFS_DEFAULT_ROOT;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = NULL;
		int m = 0;
		size_t k;

		if (!options_done && a[0] == '-' && a[1] != '\0') {
			if (strcmp(a, "--") == 0) {
				options_done = true;
				continue;
			}
			if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
				o.help = true;
				continue;
			}
			if (strcmp(a, "--force") == 0 || strcmp(a, "-f") == 0) {
				o.force = true;
				continue;
			}
			if (strcmp(a, "--if-absent") == 0) {
				o.if_absent = true;
				continue;
			}
			if (strcmp(a, "--if-exists") == 0) {
				o.if_exists = true;
				continue;
			}
			if (strcmp(a, "--json") == 0 || strcmp(a, "-j") == 0) {
				o.json = true;
				continue;
			}
			for (k = 0; k < sizeof(valued) / sizeof(valued[0]); k++) {
				m = opt_value(argc, argv, &i, valued[k], &v);
				if (m != 0)
					break;
			}
			if (m < 0) {
				fprintf(stderr, "%s: %s needs a value\n", g_prog, valued[k]);
				return EXIT_USAGE;
			}
			if (m == 0) {
				fprintf(stderr, "%s: unknown option '%s' (see --help)\n", g_prog, a);
				return EXIT_USAGE;
			}
			switch (k) {
			case 0: o.root = v; break;
			case 1: o.uuid = v; break;
			case 2: o.type = v; break;
			case 3: o.oclass = v; break;
			case 4: o.chunk = v; break;
			}
			continue;
		}
		if (cmd == NULL) {
			cmd = a;
		} else if (o.npos < (int)(sizeof(o.pos) / sizeof(o.pos[0]))) {
			o.pos[o.npos++] = a;
		} else {
			fprintf(stderr, "%s: too many arguments (see --help)\n", g_prog);
			return EXIT_USAGE;
		}
	}
	if (cmd == NULL) {
		if (o.help) {
			usage_main(stdout);
			return 0;
		}
		fprintf(stderr, "%s: missing command\n", g_prog);
		usage_main(stderr);
		return EXIT_USAGE;
	}
	if ((o.type || o.oclass || o.chunk) && strcmp(cmd, "cont") != 0) {
		fprintf(stderr, "%s: --type, --oclass and --chunk-size belong to 'cont create'\n", g_prog);
		return EXIT_USAGE;
	}
	if (strcmp(cmd, "pool") == 0)
		return cmd_pool(&o);
	if (strcmp(cmd, "cont") == 0 || strcmp(cmd, "container") == 0)
		return cmd_cont(&o);
	if (strcmp(cmd, "ls") == 0)
		return cmd_ls(&o);
	if (strcmp(cmd, "rm") == 0)
		return cmd_rm(&o);
	if (strcmp(cmd, "help") == 0) {
		usage_main(stdout);
		return 0;
	}
	fprintf(stderr, "%s: unknown command '%s' (pool, cont, ls, rm; see --help)\n", g_prog, cmd);
	return EXIT_USAGE;
}
