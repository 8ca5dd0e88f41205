/* daosblk-tgt -c FILE: replay a saved configuration through the RPC methods (an empty FILE: nothing to do). */
#include "app/app.h"

#include "rpc/rpc.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct loader {
	json_t *root;
	const char *path;
	const bool *stop;
	void (*cb)(void *ctx, int rc);
	void *ctx;
	/* entries in apply order */
	struct entry {
		const char *subsystem;
		size_t index;
		json_t *obj;
	} *entries;
	size_t count, next;
};

static void loader_done(struct loader *l, int rc)
{
	void (*cb)(void *, int) = l->cb;
	void *ctx = l->ctx;

	json_decref(l->root);
	free(l->entries);
	free(l);
	cb(ctx, rc);
}

static void apply_next(void *arg);

static void entry_done(void *arg, const json_t *result, int code, const char *msg)
{
	struct loader *l = arg;
	struct entry *e = &l->entries[l->next];

	(void)result;
	if (code != 0) {
		fprintf(stderr, "daosblk-tgt: config %s: subsystem '%s' entry %zu (%s) failed: error %d: %s\n", l->path,
			e->subsystem, e->index, json_string_value(json_object_get(e->obj, "method")), code,
			msg ? msg : "");
		loader_done(l, code);
		return;
	}
	l->next++;
	/* Continue from a fresh stack (a method may have answered inside the call). */
	if (dbk_thread_send_msg(dbk_get_thread(), apply_next, l) != 0)
		loader_done(l, -ENOMEM);
}

static void apply_next(void *arg)
{
	struct loader *l = arg;
	struct entry *e;
	const char *method;
	json_t *params;

	if (*l->stop) {
		loader_done(l, -ECANCELED);
		return;
	}
	if (l->next == l->count) {
		loader_done(l, 0);
		return;
	}
	e = &l->entries[l->next];
	method = json_string_value(json_object_get(e->obj, "method"));
	params = json_object_get(e->obj, "params");
	dbk_rpc_call_local(method, params, entry_done, l);
}

static int fail(const char *path, const char *what)
{
	fprintf(stderr, "daosblk-tgt: config %s: %s\n", path, what);
	return -EINVAL;
}

/* Check the shape and order the entries: keyring, bdev, nvmf, then the rest in file order. */
static int collect(struct loader *l)
{
	json_t *subs = json_object_get(l->root, "subsystems"), *sub, *cfg, *ent;
	size_t i, j, total = 0;
	char msg[256];

	if (!json_is_object(l->root) || !json_is_array(subs))
		return fail(l->path, "expected an object {\"subsystems\": [...]}");
	json_array_foreach(subs, i, sub) {
		cfg = json_object_get(sub, "config");
		if (!json_is_string(json_object_get(sub, "subsystem"))) {
			snprintf(msg, sizeof(msg), "subsystems[%zu] has no \"subsystem\" name", i);
			return fail(l->path, msg);
		}
		if (cfg && !json_is_null(cfg) && !json_is_array(cfg)) {
			snprintf(msg, sizeof(msg), "subsystem '%s': \"config\" must be an array",
				 json_string_value(json_object_get(sub, "subsystem")));
			return fail(l->path, msg);
		}
		json_array_foreach(cfg, j, ent) {
			json_t *p = json_object_get(ent, "params");

			if (!json_is_object(ent) || !json_is_string(json_object_get(ent, "method")) ||
			    (p && !json_is_object(p) && !json_is_array(p) && !json_is_null(p))) {
				snprintf(msg, sizeof(msg),
					 "subsystem '%s' entry %zu: expected {\"method\": NAME, \"params\": {...}}",
					 json_string_value(json_object_get(sub, "subsystem")), j);
				return fail(l->path, msg);
			}
			total++;
		}
	}
	l->entries = calloc(total ? total : 1, sizeof(*l->entries));
	if (!l->entries)
		return -ENOMEM;
	/* keyring first (hosts name its keys), then bdev, nvmf (namespaces need their bdevs), the rest. */
	static const char *const order[] = {"keyring", "bdev", "nvmf"};
	const int norder = (int)(sizeof(order) / sizeof(order[0]));

	for (int pass = 0; pass <= norder; pass++) {
		json_array_foreach(subs, i, sub) {
			const char *name = json_string_value(json_object_get(sub, "subsystem"));
			bool known = false;

			for (int k = 0; k < norder; k++)
				known |= strcmp(name, order[k]) == 0;
			if ((pass < norder && strcmp(name, order[pass]) != 0) || (pass == norder && known))
				continue;
			json_array_foreach(json_object_get(sub, "config"), j, ent) {
				l->entries[l->count++] = (struct entry){name, j, ent};
			}
		}
	}
	return 0;
}

void dbk_app_load_config(const char *path, const bool *stop, void (*cb)(void *ctx, int rc), void *ctx)
{
	struct loader *l = calloc(1, sizeof(*l));
	json_error_t jerr;
	FILE *f;
	int rc, c;

	if (!l) {
		cb(ctx, -ENOMEM);
		return;
	}
	l->path = path;
	l->stop = stop;
	l->cb = cb;
	l->ctx = ctx;
	f = fopen(path, "r");
	if (!f) {
		rc = -errno;
		fprintf(stderr, "daosblk-tgt: config %s: cannot open: %s\n", path, strerror(-rc));
		loader_done(l, rc);
		return;
	}
	errno = 0;
	/* An empty (or all-blank) file is an empty configuration, e.g. a 'save_config > FILE' that failed. */
	while ((c = getc(f)) != EOF && isspace(c))
		;
	if (ferror(f)) {
		rc = -(errno ? errno : EIO);
		fclose(f);
		fprintf(stderr, "daosblk-tgt: config %s: cannot read: %s\n", path, strerror(-rc));
		loader_done(l, rc);
		return;
	}
	if (c == EOF) {
		fclose(f);
		fprintf(stderr, "daosblk-tgt: config %s is empty: starting with no configuration\n", path);
		loader_done(l, 0);
		return;
	}
	rewind(f);
	l->root = json_loadf(f, 0, &jerr);
	fclose(f);
	if (!l->root) {
		fprintf(stderr, "daosblk-tgt: config %s: %s (line %d, column %d)\n", path, jerr.text, jerr.line,
			jerr.column);
		loader_done(l, -EINVAL);
		return;
	}
	rc = collect(l);
	if (rc) {
		loader_done(l, rc);
		return;
	}
	apply_next(l);
}
