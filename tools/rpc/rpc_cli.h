/*
 * daosblk-rpc's argument mapping: rpc.py-compatible positional arguments and
 * flags of each method turned into JSON-RPC params. Table driven (rpc_cli.c);
 * linked by the tool and its unit test.
 */
#ifndef DBK_TOOLS_RPC_RPC_CLI_H
#define DBK_TOOLS_RPC_RPC_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

enum dbk_cli_kind {
	DBK_CLI_STR,		/* string as given */
	DBK_CLI_INT,		/* integer (decimal or 0x hex, may be negative: the server checks ranges) */
	DBK_CLI_FLOAT,		/* number */
	DBK_CLI_TRUE,		/* flag: sets the param to true */
	DBK_CLI_FALSE,		/* flag: sets the param to false */
};

struct dbk_cli_arg {
	const char *short_opt;	/* "-b", or NULL */
	const char *long_opt;	/* "--name", or NULL; both NULL: positional */
	const char *param;	/* JSON key; "a.b" puts b in the object a; "_x" is a temporary for a fixup */
	enum dbk_cli_kind kind;
	bool required;		/* positionals: required unless false (optional trailing positionals) */
	const char *metavar;
	const char *help;
};

struct dbk_cli_method {
	const char *name;
	const char *help;
	const struct dbk_cli_arg *args;	/* terminated by an entry with param == NULL */
	/* After parsing: derive params (e.g. num_blocks from a size in MiB). 0 or -EINVAL with err. */
	int (*fixup)(json_t *params, char *err, size_t errlen);
	bool client_side;	/* save_config, load_config: run by the tool itself */
};

/* The method's entry, or NULL if unknown. */
const struct dbk_cli_method *dbk_cli_find_method(const char *name);
/* Iterate all methods (idx from 0 until NULL). */
const struct dbk_cli_method *dbk_cli_method_at(size_t idx);

/*
 * Build params for m from argv (the arguments after the method name).
 * Returns 0 and *params (a new object, or NULL when the method takes none and
 * none were given), 1 if -h/--help was given (nothing built), or -EINVAL with
 * a message in err.
 */
int dbk_cli_build_params(const struct dbk_cli_method *m, int argc, char **argv, json_t **params, char *err,
			 size_t errlen);

/* Per-method usage and help. */
void dbk_cli_print_method_help(const struct dbk_cli_method *m, FILE *out);

#endif
