/*
 * The metrics collector: gathers the counters the RPCs report, one step after the other on the main
 * reactor, and writes them in the Prometheus text format (see rpc/metrics.h for the sources, README
 * "Metrics" for the names).
 *
 * Steps: reactors (synchronous snapshot) -> each bdev's iostat (one dbk_for_each_channel pass per bdev,
 * looked up by name again before its pass, so a bdev deleted meanwhile is just left out) -> the NVMe-oF
 * subsystems (registry JSON on main) and each one's qpairs (one dbk_for_each_thread pass per subsystem)
 * -> nvmf_get_stats (one pass) -> format. Nothing here runs on an I/O path: the reactors' only cost is
 * one short message per step.
 */
#include "rpc/metrics.h"

#include "thread/thread.h"
#include "util/log.h"
#ifdef DBK_HAVE_BDEV
#include "bdev/bdev.h"
#endif
#ifdef DBK_HAVE_NVMF
#include "nvmf/nvmf_internal.h"
#endif

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

struct reactor_snap {
	struct dbk_reactor_info info;
	char thread[32];
};

#ifdef DBK_HAVE_BDEV
struct bdev_snap {
	char *name;
	char *module;
	uint32_t block_size;
	uint64_t num_blocks;
	bool ok;
	struct dbk_bdev_io_stat st;
};
#endif

struct collect {
	dbk_metrics_cb cb;
	void *ctx;
	uint64_t start_ns;
	struct reactor_snap *reactors;
	int nreactors;
#ifdef DBK_HAVE_BDEV
	struct bdev_snap *bdevs;
	size_t nbdevs, next_bdev;
#endif
	bool nvmf;
	json_t *subsystems;	/* nvmf_get_subsystems */
	json_t *ctrlrs;		/* per subsystem: nvmf_subsystem_get_controllers (or null) */
	json_t *qpairs;		/* per subsystem: nvmf_subsystem_get_qpairs (or null) */
	size_t next_subsys;
	json_t *stats;		/* nvmf_get_stats */
};

static void collect_free(struct collect *c)
{
#ifdef DBK_HAVE_BDEV
	for (size_t i = 0; i < c->nbdevs; i++) {
		free(c->bdevs[i].name);
		free(c->bdevs[i].module);
	}
	free(c->bdevs);
#endif
	free(c->reactors);
	json_decref(c->subsystems);
	json_decref(c->ctrlrs);
	json_decref(c->qpairs);
	json_decref(c->stats);
	free(c);
}

static void collect_format(struct collect *c);
static void nvmf_step(struct collect *c);

/* ------------------------------------------------------------ reactors */

static int reactors_step(struct collect *c)
{
	int n = dbk_reactor_count();

	c->reactors = calloc(n > 0 ? (size_t)n : 1, sizeof(*c->reactors));
	if (!c->reactors)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		dbk_reactor_get_info(i, &c->reactors[i].info);
		snprintf(c->reactors[i].thread, sizeof(c->reactors[i].thread), "%s",
			 c->reactors[i].info.thread_name ? c->reactors[i].info.thread_name : "");
		c->reactors[i].info.thread_name = NULL;
	}
	c->nreactors = n;
	return 0;
}

/* --------------------------------------------------------------- bdevs */

#ifdef DBK_HAVE_BDEV
static void bdev_next(struct collect *c);

static void iostat_cb(struct dbk_bdev *bdev, const struct dbk_bdev_io_stat *total, json_t *per_channel, void *ctx,
		      int rc)
{
	struct collect *c = ctx;
	struct bdev_snap *b = &c->bdevs[c->next_bdev - 1];

	(void)bdev;
	(void)per_channel;
	if (rc == 0 && total) {
		b->st = *total;
		b->ok = true;
	}
	bdev_next(c);
}

static void bdev_next(struct collect *c)
{
	while (c->next_bdev < c->nbdevs) {
		struct bdev_snap *b = &c->bdevs[c->next_bdev++];
		struct dbk_bdev *bdev = dbk_bdev_get_by_name(b->name);

		if (bdev) {
			dbk_bdev_get_iostat(bdev, false, iostat_cb, c);
			return;
		}
	}
	nvmf_step(c);
}

static int bdevs_step(struct collect *c)
{
	size_t n = 0;

	for (struct dbk_bdev *b = dbk_bdev_first(); b; b = dbk_bdev_next(b))
		n++;
	c->bdevs = calloc(n ? n : 1, sizeof(*c->bdevs));
	if (!c->bdevs)
		return -ENOMEM;
	for (struct dbk_bdev *b = dbk_bdev_first(); b && c->nbdevs < n; b = dbk_bdev_next(b)) {
		struct bdev_snap *s = &c->bdevs[c->nbdevs++];
		const char *mod = dbk_bdev_get_module_name(b);

		s->name = strdup(dbk_bdev_get_name(b));
		s->module = strdup(mod ? mod : "");
		s->block_size = dbk_bdev_get_block_size(b);
		s->num_blocks = dbk_bdev_get_num_blocks(b);
		if (!s->name || !s->module)
			return -ENOMEM;
	}
	return 0;
}
#endif

/* ---------------------------------------------------------------- nvmf */

#ifdef DBK_HAVE_NVMF
static void subsys_next(struct collect *c);

static void stats_cb(void *ctx, json_t *result)
{
	struct collect *c = ctx;

	c->stats = result;
	collect_format(c);
}

static void qpairs_cb(void *ctx, json_t *result)
{
	struct collect *c = ctx;

	json_array_set_new(c->qpairs, c->next_subsys - 1, result ? result : json_null());
	subsys_next(c);
}

static void subsys_next(struct collect *c)
{
	while (c->next_subsys < json_array_size(c->subsystems)) {
		json_t *o = json_array_get(c->subsystems, c->next_subsys++);
		struct dbk_nvmf_subsystem *s;

		if (!dbk_nvmf_tgt_is_running())
			break;
		s = dbk_nvmf_subsystem_find(json_string_value(json_object_get(o, "nqn")));
		if (!s)
			continue;
		json_array_set_new(c->ctrlrs, c->next_subsys - 1, dbk_nvmf_subsystem_ctrlrs_json(s));
		dbk_nvmf_subsystem_qpairs_json(s, qpairs_cb, c);
		return;
	}
	if (!dbk_nvmf_tgt_is_running()) {
		collect_format(c);
		return;
	}
	dbk_nvmf_stats_json(stats_cb, c);
}
#endif

static void nvmf_step(struct collect *c)
{
#ifdef DBK_HAVE_NVMF
	if (dbk_nvmf_tgt_is_running()) {
		c->nvmf = true;
		c->subsystems = dbk_nvmf_subsystems_json();
		c->ctrlrs = json_array();
		c->qpairs = json_array();
		for (size_t i = 0; c->subsystems && c->ctrlrs && c->qpairs && i < json_array_size(c->subsystems); i++) {
			json_array_append_new(c->ctrlrs, json_null());
			json_array_append_new(c->qpairs, json_null());
		}
		if (c->subsystems && c->ctrlrs && c->qpairs) {
			subsys_next(c);
			return;
		}
		c->nvmf = false;
	}
#endif
	collect_format(c);
}

/* -------------------------------------------------------------- format */

#define L(n, v) {(n), (v)}

static void fmt_reactors(struct collect *c, struct dbk_prom_buf *b)
{
	static const struct {
		const char *name, *type, *help;
		int what;
	} fams[] = {
		{"daosblk_reactor_busy_seconds_total", "counter",
		 "Time the reactor spent in iterations that did work (framework_get_reactors busy).", 0},
		{"daosblk_reactor_idle_seconds_total", "counter",
		 "Time the reactor spent in iterations that did no work, sleeping included (framework_get_reactors idle).",
		 1},
		{"daosblk_reactor_iterations_total", "counter", "Reactor loop iterations.", 2},
		{"daosblk_reactor_sleeps_total", "counter", "Times the reactor blocked waiting for events.", 3},
		{"daosblk_reactor_pollers", "gauge", "Pollers registered on the reactor.", 4},
		{"daosblk_reactor_fds", "gauge", "File descriptors the reactor watches.", 5},
	};

	for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
		dbk_prom_family(b, fams[f].name, fams[f].type, fams[f].help);
		for (int i = 0; i < c->nreactors; i++) {
			const struct dbk_reactor_info *r = &c->reactors[i].info;
			char idx[16], lcore[16];
			struct dbk_prom_label l[] = {L("reactor", idx), L("lcore", lcore),
						     L("thread", c->reactors[i].thread)};

			snprintf(idx, sizeof(idx), "%d", i);
			snprintf(lcore, sizeof(lcore), "%u", r->lcore);
			switch (fams[f].what) {
			case 0: dbk_prom_sample_seconds(b, fams[f].name, l, 3, r->busy_ns); break;
			case 1: dbk_prom_sample_seconds(b, fams[f].name, l, 3, r->idle_ns); break;
			case 2: dbk_prom_sample_u64(b, fams[f].name, l, 3, r->iterations); break;
			case 3: dbk_prom_sample_u64(b, fams[f].name, l, 3, r->sleeps); break;
			case 4: dbk_prom_sample_u64(b, fams[f].name, l, 3, (uint64_t)(r->num_pollers > 0 ? r->num_pollers : 0)); break;
			default: dbk_prom_sample_u64(b, fams[f].name, l, 3, (uint64_t)(r->num_fds > 0 ? r->num_fds : 0)); break;
			}
		}
	}
}

#ifdef DBK_HAVE_BDEV
static void fmt_bdevs(struct collect *c, struct dbk_prom_buf *b)
{
	static const struct {
		const char *ops, *bytes, *what;
		enum dbk_bdev_io_type t;
	} types[] = {
		{"daosblk_bdev_read_ops_total", "daosblk_bdev_read_bytes_total", "reads", DBK_BDEV_IO_TYPE_READ},
		{"daosblk_bdev_write_ops_total", "daosblk_bdev_write_bytes_total", "writes", DBK_BDEV_IO_TYPE_WRITE},
		{"daosblk_bdev_unmap_ops_total", "daosblk_bdev_unmap_bytes_total", "unmaps", DBK_BDEV_IO_TYPE_UNMAP},
		{"daosblk_bdev_write_zeroes_ops_total", "daosblk_bdev_write_zeroes_bytes_total", "write zeroes",
		 DBK_BDEV_IO_TYPE_WRITE_ZEROES},
		{"daosblk_bdev_compare_ops_total", "daosblk_bdev_compare_bytes_total", "compares",
		 DBK_BDEV_IO_TYPE_COMPARE},
		{"daosblk_bdev_flush_ops_total", NULL, "flushes", DBK_BDEV_IO_TYPE_FLUSH},
		{"daosblk_bdev_reset_ops_total", NULL, "resets", DBK_BDEV_IO_TYPE_RESET},
	};
	uint64_t bounds[DBK_BDEV_LAT_BUCKETS];
	char help[160];

	for (unsigned i = 0; i < DBK_BDEV_LAT_BUCKETS; i++)
		bounds[i] = dbk_bdev_lat_bucket_bound_us(i);

	dbk_prom_family(b, "daosblk_bdev_info", "gauge", "A block device (always 1), with its module.");
	for (size_t i = 0; i < c->nbdevs; i++) {
		struct dbk_prom_label l[] = {L("bdev", c->bdevs[i].name), L("module", c->bdevs[i].module)};

		if (c->bdevs[i].ok)
			dbk_prom_sample_u64(b, "daosblk_bdev_info", l, 2, 1);
	}
	dbk_prom_family(b, "daosblk_bdev_block_size_bytes", "gauge", "Block size of the bdev.");
	for (size_t i = 0; i < c->nbdevs; i++) {
		struct dbk_prom_label l[] = {L("bdev", c->bdevs[i].name)};

		if (c->bdevs[i].ok)
			dbk_prom_sample_u64(b, "daosblk_bdev_block_size_bytes", l, 1, c->bdevs[i].block_size);
	}
	dbk_prom_family(b, "daosblk_bdev_size_bytes", "gauge", "Size of the bdev.");
	for (size_t i = 0; i < c->nbdevs; i++) {
		struct dbk_prom_label l[] = {L("bdev", c->bdevs[i].name)};

		if (c->bdevs[i].ok)
			dbk_prom_sample_u64(b, "daosblk_bdev_size_bytes", l, 1,
					    c->bdevs[i].num_blocks * c->bdevs[i].block_size);
	}
	for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
		snprintf(help, sizeof(help), "Completed %s (bdev_get_iostat num_%s_ops).", types[k].what,
			 dbk_bdev_io_type_name(types[k].t));
		dbk_prom_family(b, types[k].ops, "counter", help);
		for (size_t i = 0; i < c->nbdevs; i++) {
			struct dbk_prom_label l[] = {L("bdev", c->bdevs[i].name)};

			if (c->bdevs[i].ok)
				dbk_prom_sample_u64(b, types[k].ops, l, 1, c->bdevs[i].st.ops[types[k].t]);
		}
		if (!types[k].bytes)
			continue;
		snprintf(help, sizeof(help), "Bytes of completed %s.", types[k].what);
		dbk_prom_family(b, types[k].bytes, "counter", help);
		for (size_t i = 0; i < c->nbdevs; i++) {
			struct dbk_prom_label l[] = {L("bdev", c->bdevs[i].name)};

			if (c->bdevs[i].ok)
				dbk_prom_sample_u64(b, types[k].bytes, l, 1, c->bdevs[i].st.bytes[types[k].t]);
		}
	}
	dbk_prom_family(b, "daosblk_bdev_io_errors_total", "counter",
			"I/O that completed with an error, by type (bdev_get_iostat io_error).");
	for (size_t i = 0; i < c->nbdevs; i++) {
		for (size_t k = 0; c->bdevs[i].ok && k < sizeof(types) / sizeof(types[0]); k++) {
			struct dbk_prom_label l[] = {L("bdev", c->bdevs[i].name),
						     L("type", dbk_bdev_io_type_name(types[k].t))};

			dbk_prom_sample_u64(b, "daosblk_bdev_io_errors_total", l, 2, c->bdevs[i].st.errors[types[k].t]);
		}
	}
	dbk_prom_family(b, "daosblk_bdev_io_latency_seconds", "histogram",
			"Latency of successful I/O in the bdev layer (submission to completion), by type.");
	for (size_t i = 0; i < c->nbdevs; i++) {
		for (size_t k = 0; c->bdevs[i].ok && k < sizeof(types) / sizeof(types[0]); k++) {
			enum dbk_bdev_io_type t = types[k].t;
			struct dbk_prom_label l[] = {L("bdev", c->bdevs[i].name), L("type", dbk_bdev_io_type_name(t))};

			dbk_prom_histogram_us(b, "daosblk_bdev_io_latency_seconds", l, 2, c->bdevs[i].st.lat_hist[t],
					      bounds, DBK_BDEV_LAT_BUCKETS, c->bdevs[i].st.lat_total_ns[t]);
		}
	}
}
#endif

static uint64_t jint(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

static const char *jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* The qpair's local address is the listener's, or the listener listens on any address and the port matches. */
static bool listener_match(const json_t *l, const json_t *a)
{
	const char *ta = jstr(l, "traddr");

	if (strcasecmp(jstr(l, "trtype"), jstr(a, "trtype")) != 0 || strcmp(jstr(l, "trsvcid"), jstr(a, "trsvcid")) != 0)
		return false;
	return strcmp(ta, jstr(a, "traddr")) == 0 || strcmp(ta, "0.0.0.0") == 0 || strcmp(ta, "::") == 0 || !*ta;
}

static void fmt_nvmf(struct collect *c, struct dbk_prom_buf *b)
{
	json_t *listeners = json_array();
	size_t i, j, n = json_array_size(c->subsystems);
	json_t *s, *l;

	dbk_prom_family(b, "daosblk_nvmf_subsystem_info", "gauge", "An NVMe-oF subsystem (always 1), with its type.");
	json_array_foreach(c->subsystems, i, s) {
		struct dbk_prom_label lb[] = {L("nqn", jstr(s, "nqn")), L("subtype", jstr(s, "subtype"))};

		dbk_prom_sample_u64(b, "daosblk_nvmf_subsystem_info", lb, 2, 1);
	}
	dbk_prom_family(b, "daosblk_nvmf_subsystem_namespaces", "gauge", "Namespaces of the subsystem.");
	json_array_foreach(c->subsystems, i, s) {
		struct dbk_prom_label lb[] = {L("nqn", jstr(s, "nqn"))};

		dbk_prom_sample_u64(b, "daosblk_nvmf_subsystem_namespaces", lb, 1,
				    json_array_size(json_object_get(s, "namespaces")));
	}
	dbk_prom_family(b, "daosblk_nvmf_subsystem_listeners", "gauge", "Listen addresses of the subsystem.");
	json_array_foreach(c->subsystems, i, s) {
		struct dbk_prom_label lb[] = {L("nqn", jstr(s, "nqn"))};

		dbk_prom_sample_u64(b, "daosblk_nvmf_subsystem_listeners", lb, 1,
				    json_array_size(json_object_get(s, "listen_addresses")));
	}
	dbk_prom_family(b, "daosblk_nvmf_subsystem_controllers", "gauge", "Controllers (connected hosts) of the subsystem.");
	json_array_foreach(c->subsystems, i, s) {
		struct dbk_prom_label lb[] = {L("nqn", jstr(s, "nqn"))};

		if (json_is_array(json_array_get(c->ctrlrs, i)))
			dbk_prom_sample_u64(b, "daosblk_nvmf_subsystem_controllers", lb, 1,
					    json_array_size(json_array_get(c->ctrlrs, i)));
	}
	dbk_prom_family(b, "daosblk_nvmf_subsystem_qpairs", "gauge",
			"Queue pairs of the subsystem's controllers, admin (qid 0) or I/O.");
	json_array_foreach(c->subsystems, i, s) {
		json_t *qs = json_array_get(c->qpairs, i), *q;
		uint64_t admin = 0, io = 0;
		struct dbk_prom_label lb[] = {L("nqn", jstr(s, "nqn")), L("queue", "admin")};

		if (!json_is_array(qs))
			continue;
		json_array_foreach(qs, j, q) {
			if (jint(q, "qid") == 0)
				admin++;
			else
				io++;
		}
		dbk_prom_sample_u64(b, "daosblk_nvmf_subsystem_qpairs", lb, 2, admin);
		lb[1].value = "io";
		dbk_prom_sample_u64(b, "daosblk_nvmf_subsystem_qpairs", lb, 2, io);
	}

	/* Listeners: every distinct listen address of the subsystems; connections attributed by local address. */
	json_array_foreach(c->subsystems, i, s) {
		json_array_foreach(json_object_get(s, "listen_addresses"), j, l) {
			size_t k;
			json_t *have;
			bool dup = false;

			json_array_foreach(listeners, k, have) {
				if (strcasecmp(jstr(have, "trtype"), jstr(l, "trtype")) == 0 &&
				    strcmp(jstr(have, "traddr"), jstr(l, "traddr")) == 0 &&
				    strcmp(jstr(have, "trsvcid"), jstr(l, "trsvcid")) == 0)
					dup = true;
			}
			if (!dup)
				json_array_append_new(listeners, json_pack("{s:s,s:s,s:s,s:s,s:I}", "trtype", jstr(l, "trtype"),
									   "adrfam", jstr(l, "adrfam"), "traddr",
									   jstr(l, "traddr"), "trsvcid", jstr(l, "trsvcid"),
									   "n", (json_int_t)0));
		}
	}
	for (i = 0; i < n; i++) {
		json_t *q;

		json_array_foreach(json_array_get(c->qpairs, i), j, q) {
			json_t *a = json_object_get(q, "listen_address");
			size_t k;

			if (!a)
				continue;
			/* an exact address first, then a wildcard listener on the port */
			for (int pass = 0; pass < 2; pass++) {
				bool hit = false;

				json_array_foreach(listeners, k, l) {
					bool exact = strcmp(jstr(l, "traddr"), jstr(a, "traddr")) == 0;

					if (listener_match(l, a) && (pass == 1 || exact)) {
						json_object_set_new(l, "n", json_integer((json_int_t)jint(l, "n") + 1));
						hit = true;
						break;
					}
				}
				if (hit)
					break;
			}
		}
	}
	dbk_prom_family(b, "daosblk_nvmf_listener_connections", "gauge",
			"Connected queue pairs (after Fabrics Connect) that came in through the listen address.");
	json_array_foreach(listeners, i, l) {
		struct dbk_prom_label lb[] = {L("trtype", jstr(l, "trtype")), L("adrfam", jstr(l, "adrfam")),
					      L("traddr", jstr(l, "traddr")), L("trsvcid", jstr(l, "trsvcid"))};

		dbk_prom_sample_u64(b, "daosblk_nvmf_listener_connections", lb, 4, jint(l, "n"));
	}
	json_decref(listeners);
}

/* nvmf_get_stats: the poll groups' own counters, per thread. */
static void fmt_poll_groups(const json_t *groups, struct dbk_prom_buf *b)
{
	static const struct {
		const char *key, *name, *type, *help;
	} keys[] = {
		{"admin_qpairs", "daosblk_nvmf_poll_group_admin_qpairs_total", "counter",
		 "Admin queue pairs the poll group has served."},
		{"io_qpairs", "daosblk_nvmf_poll_group_io_qpairs_total", "counter", "I/O queue pairs the poll group has served."},
		{"current_admin_qpairs", "daosblk_nvmf_poll_group_admin_qpairs", "gauge",
		 "Admin queue pairs on the poll group now."},
		{"current_io_qpairs", "daosblk_nvmf_poll_group_io_qpairs", "gauge", "I/O queue pairs on the poll group now."},
		{"pending_bdev_io", "daosblk_nvmf_poll_group_pending_bdev_io", "gauge",
		 "Commands of the poll group waiting for a bdev I/O."},
	};
	size_t i;
	json_t *g;

	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		dbk_prom_family(b, keys[k].name, keys[k].type, keys[k].help);
		json_array_foreach(groups, i, g) {
			struct dbk_prom_label lb[] = {L("thread", jstr(g, "name"))};

			dbk_prom_sample_u64(b, keys[k].name, lb, 1, jint(g, keys[k].key));
		}
	}
}

/*
 * nvmf_get_stats: the transports' poll group counters, added up over the poll groups, per transport. Known
 * keys get their names; a numeric key this table does not know yet still comes out, as
 * daosblk_nvmf_transport_<key> (untyped), so a new transport counter needs no change here to be seen.
 */
static const struct {
	const char *key, *name, *type, *help;
} g_transport_keys[] = {
	{"current_qpairs", "daosblk_nvmf_transport_qpairs", "gauge", "Connections of the transport now."},
	{"total_qpairs", "daosblk_nvmf_transport_accepted_qpairs_total", "counter", "Connections the transport accepted."},
	{"pdus_received", "daosblk_nvmf_transport_received_pdus_total", "counter", "PDUs received."},
	{"pdus_sent", "daosblk_nvmf_transport_sent_pdus_total", "counter", "PDUs sent."},
	{"bytes_received", "daosblk_nvmf_transport_received_bytes_total", "counter", "Bytes received."},
	{"bytes_sent", "daosblk_nvmf_transport_sent_bytes_total", "counter", "Bytes sent."},
	{"bytes_received_direct", "daosblk_nvmf_transport_received_direct_bytes_total", "counter",
	 "Payload bytes received straight into data buffers."},
	{"bytes_sent_zcopy", "daosblk_nvmf_transport_sent_zcopy_bytes_total", "counter",
	 "Read payload bytes sent from the bdev's memory without a copy (spliced)."},
	{"c2h_pdus_lent", "daosblk_nvmf_transport_lent_c2h_pdus_total", "counter",
	 "C2HData PDUs sent from memory the bdev lent."},
	{"lent_payloads_bounced", "daosblk_nvmf_transport_bounced_lent_payloads_total", "counter",
	 "Lent read payloads copied out because their connection stalled."},
	{"writes_lent", "daosblk_nvmf_transport_lent_writes_total", "counter",
	 "Writes whose data was received straight into the bdev's memory."},
	{"bytes_received_zcopy", "daosblk_nvmf_transport_received_zcopy_bytes_total", "counter",
	 "Write payload bytes received straight into the bdev's memory."},
	{"lent_writes_bounced", "daosblk_nvmf_transport_bounced_lent_writes_total", "counter",
	 "Lent writes moved to a private buffer because their host stalled."},
	{"pool_reads_bounced", "daosblk_nvmf_transport_bounced_pool_reads_total", "counter",
	 "Read payloads moved out of the shared buffer pool because their host stopped reading."},
	{"pool_writes_bounced", "daosblk_nvmf_transport_bounced_pool_writes_total", "counter",
	 "Writes moved out of the shared buffer pool because their host stopped sending their data."},
	{"r2ts_sent", "daosblk_nvmf_transport_sent_r2ts_total", "counter", "R2T PDUs sent."},
	{"icreq_timeouts", "daosblk_nvmf_transport_icreq_timeouts_total", "counter",
	 "Connections closed for sending no ICReq in time."},
	{"fatal_pdu_errors", "daosblk_nvmf_transport_fatal_pdu_errors_total", "counter",
	 "Connections closed for a malformed PDU."},
	{"header_digest_errors", "daosblk_nvmf_transport_header_digest_errors_total", "counter", "Header digest errors."},
	{"data_digest_errors", "daosblk_nvmf_transport_data_digest_errors_total", "counter", "Data digest errors."},
	{"term_reqs_received", "daosblk_nvmf_transport_received_term_reqs_total", "counter",
	 "H2CTermReq PDUs received."},
	{"buffer_waits", "daosblk_nvmf_transport_buffer_waits_total", "counter",
	 "Commands that had to wait for a data buffer."},
	{"pending_buffer_requests", "daosblk_nvmf_transport_pending_buffer_requests", "gauge",
	 "Commands waiting for a data buffer now."},
	{"send_blocked", "daosblk_nvmf_transport_send_blocked_total", "counter",
	 "Sends that found the socket buffer full."},
	{"free_buffers", "daosblk_nvmf_transport_free_buffers", "gauge", "Free data buffers."},
	{"total_buffers", "daosblk_nvmf_transport_buffers", "gauge", "Data buffers."},
};

static void fmt_transports(const json_t *groups, struct dbk_prom_buf *b)
{
	json_t *sum = json_object();	/* trtype -> {key: total} */
	json_t *keys = json_array();	/* every numeric key seen, in order */
	const char *trtype, *key;
	json_t *g, *t, *v, *tot, *kv;
	size_t i, j, k;

	if (!sum || !keys)
		goto out;
	json_array_foreach(groups, i, g) {
		json_array_foreach(json_object_get(g, "transports"), j, t) {
			tot = json_object_get(sum, jstr(t, "trtype"));
			if (!tot) {
				tot = json_object();
				json_object_set_new(sum, jstr(t, "trtype"), tot);
			}
			json_object_foreach(t, key, v) {
				bool seen = false;

				if (!json_is_integer(v))
					continue;
				json_object_set_new(tot, key, json_integer((json_int_t)(jint(tot, key) + jint(t, key))));
				json_array_foreach(keys, k, kv) {
					if (strcmp(json_string_value(kv), key) == 0)
						seen = true;
				}
				if (!seen)
					json_array_append_new(keys, json_string(key));
			}
		}
	}
	for (k = 0; k < json_array_size(keys); k++) {
		const char *name = NULL, *type = "untyped", *help = NULL;
		char gen[128], helpbuf[160];

		key = json_string_value(json_array_get(keys, k));
		for (size_t x = 0; x < sizeof(g_transport_keys) / sizeof(g_transport_keys[0]); x++) {
			if (strcmp(g_transport_keys[x].key, key) == 0) {
				name = g_transport_keys[x].name;
				type = g_transport_keys[x].type;
				help = g_transport_keys[x].help;
			}
		}
		if (!name) {
			char part[96];

			snprintf(gen, sizeof(gen), "daosblk_nvmf_transport_%s", dbk_prom_sanitize_name(part, sizeof(part), key));
			snprintf(helpbuf, sizeof(helpbuf), "Transport counter '%s' of nvmf_get_stats.", key);
			name = gen;
			help = helpbuf;
		}
		dbk_prom_family(b, name, type, help);
		json_object_foreach(sum, trtype, tot) {
			struct dbk_prom_label lb[] = {L("trtype", trtype)};

			if (json_object_get(tot, key))
				dbk_prom_sample_u64(b, name, lb, 1, jint(tot, key));
		}
	}
out:
	json_decref(sum);
	json_decref(keys);
}

static void collect_format(struct collect *c)
{
	struct dbk_prom_buf *b = malloc(sizeof(*b));

	if (!b) {
		c->cb(c->ctx, NULL);
		collect_free(c);
		return;
	}
	dbk_prom_init(b);
	fmt_reactors(c, b);
#ifdef DBK_HAVE_BDEV
	fmt_bdevs(c, b);
#endif
	if (c->nvmf) {
		fmt_nvmf(c, b);
		if (c->stats) {
			json_t *groups = json_object_get(c->stats, "poll_groups");

			fmt_poll_groups(groups, b);
			fmt_transports(groups, b);
		}
	}
	dbk_prom_family(b, "daosblk_metrics_collect_seconds", "gauge",
			"Time this scrape took to gather the counters from every reactor.");
	dbk_prom_sample_seconds(b, "daosblk_metrics_collect_seconds", NULL, 0, dbk_get_ns() - c->start_ns);
	c->cb(c->ctx, b);
	collect_free(c);
}

/* Send the first asynchronous step from a message so the answer never comes inside dbk_metrics_collect. */
static void collect_run(void *arg)
{
	struct collect *c = arg;

#ifdef DBK_HAVE_BDEV
	bdev_next(c);
#else
	nvmf_step(c);
#endif
}

int dbk_metrics_collect(dbk_metrics_cb cb, void *ctx)
{
	struct collect *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->cb = cb;
	c->ctx = ctx;
	c->start_ns = dbk_get_ns();
	if (reactors_step(c) != 0
#ifdef DBK_HAVE_BDEV
	    || bdevs_step(c) != 0
#endif
	    || dbk_thread_send_msg(dbk_get_thread(), collect_run, c) != 0) {
		collect_free(c);
		return -ENOMEM;
	}
	return 0;
}
