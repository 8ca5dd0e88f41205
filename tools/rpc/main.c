/*
 * daosblk-rpc: command-line JSON-RPC client, argument-compatible with SPDK's
 * scripts/rpc.py for the methods daosblk implements.
 */
#include "tools/rpc/rpc_cli.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/var/tmp/daosblk.sock"

static struct {
	const char *sock;
	double timeout_s;
	bool verbose;
	int fd;
	int next_id;
	char *buf;
	size_t len, cap;
} g = {.sock = DEFAULT_SOCKET, .timeout_s = 60, .fd = -1, .next_id = 1};

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

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_server(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(g.sock) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "daosblk-rpc: socket path too long: %s\n", g.sock);
		return -1;
	}
	strcpy(sa.sun_path, g.sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "daosblk-rpc: cannot connect to %s: %s (is daosblk-tgt running? -s selects the socket)\n",
			g.sock, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	g.fd = fd;
	return 0;
}

/* Length of the complete JSON object/array at the start of buf, 0 if unfinished, -1 if garbage. */
static long scan_value(const char *buf, size_t len)
{
	size_t depth = 0;
	bool in_str = false, esc = false;

	if (len == 0)
		return 0;
	if (buf[0] != '{' && buf[0] != '[')
		return -1;
	for (size_t i = 0; i < len; i++) {
		char ch = buf[i];

		if (in_str) {
			if (esc)
				esc = false;
			else if (ch == '\\')
				esc = true;
			else if (ch == '"')
				in_str = false;
		} else if (ch == '"') {
			in_str = true;
		} else if (ch == '{' || ch == '[') {
			depth++;
		} else if ((ch == '}' || ch == ']') && --depth == 0) {
			return (long)(i + 1);
		}
	}
	return 0;
}

/* Read one response (back-to-back framing: keep any extra bytes for the next). NULL on failure. */
static json_t *read_response(double deadline)
{
	for (;;) {
		size_t skip = 0;
		long n;

		while (skip < g.len && strchr(" \t\r\n", g.buf[skip]))
			skip++;
		if (skip > 0) {
			memmove(g.buf, g.buf + skip, g.len - skip);
			g.len -= skip;
		}
		n = scan_value(g.buf, g.len);
		if (n < 0) {
			fprintf(stderr, "daosblk-rpc: the server sent something that is not JSON\n");
			return NULL;
		}
		if (n > 0) {
			json_error_t jerr;
			json_t *resp = json_loadb(g.buf, (size_t)n, JSON_DISABLE_EOF_CHECK, &jerr);

			memmove(g.buf, g.buf + n, g.len - (size_t)n);
			g.len -= (size_t)n;
			if (!resp)
				fprintf(stderr, "daosblk-rpc: invalid JSON from the server: %s\n", jerr.text);
			return resp;
		}
		if (g.cap - g.len < 65536) {
			size_t cap = g.cap ? g.cap * 2 : 131072;
			char *p = realloc(g.buf, cap);

			if (!p) {
				fprintf(stderr, "daosblk-rpc: out of memory\n");
				return NULL;
			}
			g.buf = p;
			g.cap = cap;
		}
		double left = deadline - now_s();
		struct pollfd pfd = {.fd = g.fd, .events = POLLIN};
		int prc;

		if (left <= 0) {
			fprintf(stderr, "daosblk-rpc: timed out after %g s waiting for the answer (-t changes the limit)\n",
				g.timeout_s);
			return NULL;
		}
		prc = poll(&pfd, 1, left > 1e6 ? 1000000000 : (int)(left * 1000) + 1);
		if (prc < 0 && errno == EINTR)
			continue;
		if (prc <= 0)
			continue;
		ssize_t r = read(g.fd, g.buf + g.len, g.cap - g.len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			fprintf(stderr, "daosblk-rpc: the server closed the connection without answering%s%s\n",
				r < 0 ? ": " : "", r < 0 ? strerror(errno) : "");
			return NULL;
		}
		g.len += (size_t)r;
	}
}

/*
 * Call method with params (borrowed, may be NULL). Returns the result (new
 * reference) or NULL; on a JSON-RPC error *code / *msg (malloc'ed) are set.
 * *code == 0 with NULL result: transport failure (already reported).
 */
static json_t *call(const char *method, json_t *params, int *code, char **msg)
{
	json_t *req, *resp, *err, *result;
	char *text;
	size_t off = 0, len;
	int id = g.next_id++;

	*code = 0;
	*msg = NULL;
	if (g.fd < 0 && connect_server() != 0)
		return NULL;
	req = json_pack("{s:s, s:s, s:i}", "jsonrpc", "2.0", "method", method, "id", id);
	if (params)
		json_object_set(req, "params", params);
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (g.verbose)
		fprintf(stderr, "request: %s\n", text);
	len = strlen(text);
	while (off < len) {
		ssize_t n = send(g.fd, text + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "daosblk-rpc: sending to %s failed: %s\n", g.sock, strerror(errno));
			free(text);
			return NULL;
		}
		off += (size_t)n;
	}
	free(text);
	resp = read_response(now_s() + g.timeout_s);
	if (!resp)
		return NULL;
	if (g.verbose) {
		char *s = json_dumps(resp, JSON_COMPACT);
		fprintf(stderr, "response: %s\n", s ? s : "?");
		free(s);
	}
	err = json_object_get(resp, "error");
	if (err) {
		json_t *c = json_object_get(err, "code"), *m = json_object_get(err, "message");

		*code = json_is_integer(c) ? (int)json_integer_value(c) : -32603;
		*msg = strdup(json_is_string(m) ? json_string_value(m) : "(no message)");
		json_decref(resp);
		return NULL;
	}
	result = json_object_get(resp, "result");
	if (!result) {
		fprintf(stderr, "daosblk-rpc: the answer has neither result nor error\n");
		json_decref(resp);
		return NULL;
	}
	json_incref(result);
	json_decref(resp);
	return result;
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

static const char *const g_subsystems[] = {"bdev", "nvmf"};

static int save_config(void)
{
	json_t *subs = json_array();
	int code;
	char *msg;

	for (size_t i = 0; i < sizeof(g_subsystems) / sizeof(g_subsystems[0]); i++) {
		json_t *p = json_pack("{s:s}", "name", g_subsystems[i]);
		json_t *cfg = call("framework_get_config", p, &code, &msg);

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
		res = call(method, params, &code, &msg);
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
	/* bdev first, then nvmf (namespaces need their bdevs), then anything else in file order. */
	for (size_t k = 0; k <= 2 && rc == 0; k++) {
		json_array_foreach(subs, i, sub) {
			const char *name = json_string_value(json_object_get(sub, "subsystem"));
			bool known = name && (strcmp(name, "bdev") == 0 || strcmp(name, "nvmf") == 0);

			if ((k < 2 && (!name || strcmp(name, g_subsystems[k]) != 0)) || (k == 2 && known))
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
	result = call(method, params, &code, &msg);
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
	if (g.fd >= 0)
		close(g.fd);
	free(g.buf);
	return rc;
}
