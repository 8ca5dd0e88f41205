/*
 * daosblk-rpc: command-line JSON-RPC client, argument-compatible with SPDK's
 * scripts/rpc.py for the methods daosblk implements.
 */
#include "tools/rpc/rpc_cli.h"
#include "tools/rpc/rpc_client.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/var/tmp/daosblk.sock"

static struct dbk_rpc_client g = DBK_RPC_CLIENT_INIT("daosblk-rpc", DEFAULT_SOCKET, 60);

static void usage(FILE *out)
{
	fprintf(out,
		"usage: daosblk-rpc [-s SOCKET] [-t TIMEOUT] [-v] METHOD [ARGS...]\n"
		"\n"
		"Call a JSON-RPC method of daosblk-tgt (same arguments as SPDK's rpc.py).\n"
		"\n"
		"global options:\n"
		"  -s, --server SOCKET   Unix socket of the target (default %s)\n"
		"  -t, --timeout SECS    give up waiting for an answer after SECS seconds (default 60)\n"
		"  -v, -d, --verbose     print the request and the raw answer on stderr\n"
		"  -h, --help            this help; METHOD -h shows the method's arguments\n"
		"\n"
		"Methods not listed below are sent as is, with an optional JSON object as params:\n"
		"  daosblk-rpc some_method '{\"key\": 1}'\n"
		"\n"
		"methods:\n",
		DEFAULT_SOCKET);
	for (size_t i = 0; dbk_cli_method_at(i); i++)
		fprintf(out, "  %-40s %s\n", dbk_cli_method_at(i)->name, dbk_cli_method_at(i)->help);
}

static void print_json(const json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);

	if (s) {
		printf("%s\n", s);
		free(s);
	}
}

static int report_error(const char *what, int code, const char *msg)
{
	if (code != 0)
		fprintf(stderr, "%s: error %d: %s\n", what, code, msg ? msg : "");
	return 1;
}

static const char *const g_subsystems[] = {"keyring", "bdev", "nvmf"};
#define NUM_SUBSYSTEMS (sizeof(g_subsystems) / sizeof(g_subsystems[0]))

static int save_config(void)
{
	json_t *subs = json_array();
	int code;
	char *msg;

	for (size_t i = 0; i < sizeof(g_subsystems) / sizeof(g_subsystems[0]); i++) {
		json_t *p = json_pack("{s:s}", "name", g_subsystems[i]);
		json_t *cfg = dbk_rpc_client_call(&g, "framework_get_config", p, &code, &msg);

		json_decref(p);
		if (!cfg) {
			char what[96];

			snprintf(what, sizeof(what), "save_config: framework_get_config %s", g_subsystems[i]);
			report_error(what, code, msg);
			free(msg);
			json_decref(subs);
			return 1;
		}
		json_array_append_new(subs, json_pack("{s:s, s:o}", "subsystem", g_subsystems[i], "config", cfg));
	}
	json_t *root = json_pack("{s:o}", "subsystems", subs);
	print_json(root);
	json_decref(root);
	return 0;
}

static int load_subsystem(const json_t *sub)
{
	const char *name = json_string_value(json_object_get(sub, "subsystem"));
	json_t *cfg = json_object_get(sub, "config");
	size_t i;
	json_t *entry;

	if (!name) {
		fprintf(stderr, "load_config: a subsystem entry has no \"subsystem\" name\n");
		return 1;
	}
	if (json_is_null(cfg) || !cfg)
		return 0;
	if (!json_is_array(cfg)) {
		fprintf(stderr, "load_config: subsystem '%s': \"config\" must be an array\n", name);
		return 1;
	}
	json_array_foreach(cfg, i, entry) {
		const char *method = json_string_value(json_object_get(entry, "method"));
		json_t *params = json_object_get(entry, "params"), *res;
		int code;
		char *msg;

		if (!method) {
			fprintf(stderr, "load_config: subsystem '%s' entry %zu has no \"method\"\n", name, i);
			return 1;
		}
		res = dbk_rpc_client_call(&g, method, params, &code, &msg);
		if (!res) {
			fprintf(stderr, "load_config: subsystem '%s' entry %zu (%s) failed", name, i, method);
			if (code)
				fprintf(stderr, ": error %d: %s", code, msg);
			fprintf(stderr, "\n");
			free(msg);
			return 1;
		}
		json_decref(res);
	}
	return 0;
}

static int load_config(void)
{
	json_error_t jerr;
	json_t *root = json_loadf(stdin, 0, &jerr), *subs, *sub;
	size_t i;
	int rc = 0;

	if (!root) {
		fprintf(stderr, "load_config: stdin is not valid JSON: %s (line %d)\n", jerr.text, jerr.line);
		return 1;
	}
	subs = json_object_get(root, "subsystems");
	if (!json_is_array(subs)) {
		fprintf(stderr, "load_config: expected {\"subsystems\": [...]}\n");
		json_decref(root);
		return 1;
	}
	/* keyring first (hosts name keys), bdev, then nvmf (namespaces need their bdevs), then the rest in file order. */
	for (size_t k = 0; k <= NUM_SUBSYSTEMS && rc == 0; k++) {
		json_array_foreach(subs, i, sub) {
			const char *name = json_string_value(json_object_get(sub, "subsystem"));
			bool known = false;

			for (size_t j = 0; name && j < NUM_SUBSYSTEMS; j++)
				known |= strcmp(name, g_subsystems[j]) == 0;
			if ((k < NUM_SUBSYSTEMS && (!name || strcmp(name, g_subsystems[k]) != 0)) ||
			    (k == NUM_SUBSYSTEMS && known))
				continue;
			rc = load_subsystem(sub);
			if (rc)
				break;
		}
	}
	json_decref(root);
	return rc;
}

/* A method the table does not know: sent as is, with an optional JSON params argument. */
static int raw_params(const char *method, int argc, char **argv, json_t **params)
{
	json_error_t jerr;

	*params = NULL;
	if (argc == 0)
		return 0;
	if (argc > 1) {
		fprintf(stderr, "daosblk-rpc: unknown method '%s' takes at most one JSON params argument\n", method);
		return -1;
	}
	*params = json_loads(argv[0], JSON_DECODE_ANY, &jerr);
	if (!*params || (!json_is_object(*params) && !json_is_array(*params))) {
		fprintf(stderr, "daosblk-rpc: unknown method '%s': params must be a JSON object or array\n", method);
		json_decref(*params);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const struct dbk_cli_method *m;
	const char *method;
	json_t *params = NULL, *result;
	char err[512], *msg;
	int i, code, rc;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(a, "-v") == 0 || strcmp(a, "-d") == 0 || strcmp(a, "--verbose") == 0) {
			g.verbose = true;
		} else if (strcmp(a, "-s") == 0 || strcmp(a, "--server") == 0 || strcmp(a, "-t") == 0 ||
			   strcmp(a, "--timeout") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "daosblk-rpc: %s needs a value\n", a);
				return 1;
			}
			if (a[1] == 's' || a[2] == 's') {
				g.sock = argv[++i];
			} else {
				char *end;
				g.timeout_s = strtod(argv[++i], &end);
				if (*end || !(g.timeout_s > 0)) {
					fprintf(stderr, "daosblk-rpc: -t: '%s' is not a positive number of seconds\n",
						argv[i]);
					return 1;
				}
			}
		} else if (a[0] == '-') {
			fprintf(stderr, "daosblk-rpc: unknown option '%s' (see --help)\n", a);
			return 1;
		} else {
			break;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 1;
	}
	method = argv[i++];
	m = dbk_cli_find_method(method);
	if (m) {
		rc = dbk_cli_build_params(m, argc - i, argv + i, &params, err, sizeof(err));
		if (rc == 1) {
			dbk_cli_print_method_help(m, stdout);
			return 0;
		}
		if (rc < 0) {
			fprintf(stderr, "daosblk-rpc: %s\n", err);
			return 1;
		}
		if (m->client_side) {
			rc = strcmp(m->name, "save_config") == 0 ? save_config() : load_config();
			goto out;
		}
	} else if (raw_params(method, argc - i, argv + i, &params) != 0) {
		return 1;
	}
	result = dbk_rpc_client_call(&g, method, params, &code, &msg);
	if (result) {
		print_json(result);
		json_decref(result);
		rc = 0;
	} else {
		rc = report_error(method, code, msg);
		free(msg);
	}
out:
	json_decref(params);
	dbk_rpc_client_close(&g);
	return rc;
}
