/*
 * Subsystems (NVM and discovery), namespaces, allowed hosts, listen
 * addresses, the discovery log, and the JSON views / config of all of it.
 * Main reactor only, except the *_msg functions which run on poll groups.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "keyring/keyring.h"
#include "nvmf/ana.h"
#include "nvmf/auth.h"
#include "nvmf/nvmf_internal.h"
#include "nvmf/referral.h"
#include "util/log.h"

/* --------------------------------------------------------------------- NQN */

static bool domain_ok(const char *d, size_t len)
{
	size_t label = 0;

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = d[i];

		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)c) && c != '-')
			return false;
		if (label == 0 && !isalnum((unsigned char)c))
			return false;
		label++;
	}
	return label > 0;
}

bool dbk_nvmf_nqn_is_valid(const char *nqn, char *err, size_t errlen)
{
	static const char uuid_prefix[] = "nqn.2014-08.org.nvmexpress:uuid:";
	size_t len;
	const char *colon;

	if (!nqn || !*nqn) {
		snprintf(err, errlen, "NQN is empty");
		return false;
	}
	len = strlen(nqn);
	if (len > NVME_NQN_MAX_LEN) {
		snprintf(err, errlen, "NQN '%.40s...' is %zu bytes long (max %d)", nqn, len, NVME_NQN_MAX_LEN);
		return false;
	}
	if (strcmp(nqn, NVME_DISC_SUBSYS_NQN) == 0)
		return true;
	if (strncmp(nqn, uuid_prefix, sizeof(uuid_prefix) - 1) == 0) {
		uuid_t u;

		if (strlen(nqn + sizeof(uuid_prefix) - 1) != 36 || uuid_parse(nqn + sizeof(uuid_prefix) - 1, u) != 0) {
			snprintf(err, errlen, "invalid NQN '%s': the UUID after '%s' is not valid", nqn, uuid_prefix);
			return false;
		}
		return true;
	}
	/* nqn.YYYY-MM.reverse.domain:anything */
	if (len < 13 || strncmp(nqn, "nqn.", 4) != 0 || !isdigit((unsigned char)nqn[4]) ||
	    !isdigit((unsigned char)nqn[5]) || !isdigit((unsigned char)nqn[6]) || !isdigit((unsigned char)nqn[7]) ||
	    nqn[8] != '-' || !isdigit((unsigned char)nqn[9]) || !isdigit((unsigned char)nqn[10]) ||
	    nqn[11] != '.') {
		snprintf(err, errlen, "invalid NQN '%s': expected nqn.YYYY-MM.reverse-domain:name", nqn);
		return false;
	}
	int month = (nqn[9] - '0') * 10 + (nqn[10] - '0');

	if (month < 1 || month > 12) {
		snprintf(err, errlen, "invalid NQN '%s': month %02d out of range", nqn, month);
		return false;
	}
	colon = strchr(nqn + 12, ':');
	if (!colon || !domain_ok(nqn + 12, (size_t)(colon - (nqn + 12))) || colon[1] == '\0') {
		snprintf(err, errlen, "invalid NQN '%s': expected nqn.YYYY-MM.reverse-domain:name", nqn);
		return false;
	}
	return true;
}

/* --------------------------------------------------------------- registry */

static void link_subsystem(struct dbk_nvmf_subsystem *s)
{
	struct dbk_nvmf_subsystem **pp = &g_nvmf_tgt.subsystems;

	while (*pp)
		pp = &(*pp)->next;
	*pp = s;
	g_nvmf_tgt.by_id[s->id] = s;
}

static void unlink_subsystem(struct dbk_nvmf_subsystem *s)
{
	struct dbk_nvmf_subsystem **pp;

	for (pp = &g_nvmf_tgt.subsystems; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	s->next = NULL;
}

struct dbk_nvmf_subsystem *dbk_nvmf_subsystem_find(const char *nqn)
{
	if (!nqn || !g_nvmf_tgt.running)
		return NULL;
	if (strcmp(nqn, "discovery") == 0)
		return g_nvmf_tgt.discovery;
	for (struct dbk_nvmf_subsystem *s = g_nvmf_tgt.subsystems; s; s = s->next)
		if (strcmp(s->nqn, nqn) == 0)
			return s;
	return NULL;
}

bool dbk_nvmf_subsystem_is_discovery(const struct dbk_nvmf_subsystem *s)
{
	return s->discovery;
}

const char *dbk_nvmf_subsystem_get_nqn(const struct dbk_nvmf_subsystem *s)
{
	return s->nqn;
}

uint64_t dbk_nvmf_discovery_genctr(void)
{
	return g_nvmf_tgt.genctr;
}

void nvmf_discovery_changed(void)
{
	g_nvmf_tgt.genctr++;
	if (!g_nvmf_tgt.discovery)
		return;
	for (struct dbk_nvmf_ctrlr *c = g_nvmf_tgt.discovery->ctrlrs; c; c = c->next)
		nvmf_ctrlr_notify_discovery_changed(c);
}

static bool printable(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	return true;
}

static void host_free(struct nvmf_host *h);

static void free_subsystem(struct dbk_nvmf_subsystem *s)
{
	struct nvmf_host *h;

	while ((h = s->hosts)) {
		s->hosts = h->next;
		host_free(h);
	}
	if (s->pg_ns) {
		for (int i = 0; i < g_nvmf_tgt.num_groups; i++)
			free(s->pg_ns[i]);
		free(s->pg_ns);
	}
	free(s->ns);
	if (g_nvmf_tgt.by_id[s->id] == s)
		g_nvmf_tgt.by_id[s->id] = NULL;
	free(s);
}

static int alloc_subsystem(const char *nqn, bool discovery, uint32_t max_ns, struct dbk_nvmf_subsystem **out)
{
	struct dbk_nvmf_subsystem *s;
	uint32_t id;

	for (id = 0; id < DBK_NVMF_MAX_SUBSYSTEMS; id++)
		if (!g_nvmf_tgt.by_id[id])
			break;
	if (id == DBK_NVMF_MAX_SUBSYSTEMS)
		return -ENOSPC;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	snprintf(s->nqn, sizeof(s->nqn), "%s", nqn);
	s->discovery = discovery;
	s->id = id;
	s->max_namespaces = max_ns;
	if (max_ns) {
		s->ns = calloc(max_ns, sizeof(*s->ns));
		s->pg_ns = calloc((size_t)g_nvmf_tgt.num_groups, sizeof(*s->pg_ns));
		if (!s->ns || !s->pg_ns) {
			free_subsystem(s);
			return -ENOMEM;
		}
		for (int i = 0; i < g_nvmf_tgt.num_groups; i++) {
			s->pg_ns[i] = calloc(max_ns, sizeof(struct nvmf_pg_ns));
			if (!s->pg_ns[i]) {
				free_subsystem(s);
				return -ENOMEM;
			}
		}
	}
	*out = s;
	return 0;
}

int nvmf_subsystems_init(void)
{
	struct dbk_nvmf_subsystem *s;
	int rc = alloc_subsystem(NVME_DISC_SUBSYS_NQN, true, 0, &s);

	if (rc)
		return rc;
	s->allow_any_host = true;
	snprintf(s->sn, sizeof(s->sn), "%s", DBK_NVMF_DEFAULT_SN);
	snprintf(s->mn, sizeof(s->mn), "%s", DBK_NVMF_DEFAULT_MN);
	s->min_cntlid = DBK_NVMF_MIN_CNTLID;
	s->max_cntlid = DBK_NVMF_MAX_CNTLID;
	s->next_cntlid = s->min_cntlid;
	g_nvmf_tgt.discovery = s;
	link_subsystem(s);
	return 0;
}

int dbk_nvmf_subsystem_create(const char *nqn, const struct dbk_nvmf_subsystem_opts *opts,
			      struct dbk_nvmf_subsystem **out, char *err, size_t errlen)
{
	struct dbk_nvmf_subsystem_opts o = {0};
	struct dbk_nvmf_subsystem *s;
	int rc;

	if (opts)
		o = *opts;
	if (!dbk_nvmf_tgt_is_running()) {
		snprintf(err, errlen, "NVMe-oF target is not running");
		return -ENODEV;
	}
	if (!dbk_nvmf_nqn_is_valid(nqn, err, errlen))
		return -EINVAL;
	if (strcmp(nqn, NVME_DISC_SUBSYS_NQN) == 0 || dbk_nvmf_subsystem_find(nqn)) {
		snprintf(err, errlen, "subsystem '%s' already exists", nqn);
		return -EEXIST;
	}
	if (o.serial_number && !printable(o.serial_number, 20)) {
		snprintf(err, errlen, "serial number '%s' must be at most 20 printable ASCII characters",
			 o.serial_number);
		return -EINVAL;
	}
	if (o.model_number && !printable(o.model_number, 40)) {
		snprintf(err, errlen, "model number '%s' must be at most 40 printable ASCII characters",
			 o.model_number);
		return -EINVAL;
	}
	if (o.max_namespaces == 0)
		o.max_namespaces = DBK_NVMF_DEFAULT_MAX_NAMESPACES;
	if (o.max_namespaces > DBK_NVMF_MAX_NAMESPACES_LIMIT) {
		snprintf(err, errlen, "max_namespaces %u too large (max %d)", o.max_namespaces,
			 DBK_NVMF_MAX_NAMESPACES_LIMIT);
		return -EINVAL;
	}
	if (o.min_cntlid == 0)
		o.min_cntlid = DBK_NVMF_MIN_CNTLID;
	if (o.max_cntlid == 0)
		o.max_cntlid = DBK_NVMF_MAX_CNTLID;
	if (o.min_cntlid < DBK_NVMF_MIN_CNTLID || o.max_cntlid > DBK_NVMF_MAX_CNTLID || o.min_cntlid > o.max_cntlid) {
		snprintf(err, errlen, "invalid cntlid range %u..%u (must be within 1..65519 and min <= max)",
			 o.min_cntlid, o.max_cntlid);
		return -EINVAL;
	}
	rc = alloc_subsystem(nqn, false, o.max_namespaces, &s);
	if (rc) {
		snprintf(err, errlen, rc == -ENOSPC ? "too many subsystems" : "out of memory");
		return rc;
	}
	snprintf(s->sn, sizeof(s->sn), "%s", o.serial_number ? o.serial_number : DBK_NVMF_DEFAULT_SN);
	snprintf(s->mn, sizeof(s->mn), "%s", o.model_number ? o.model_number : DBK_NVMF_DEFAULT_MN);
	s->allow_any_host = o.allow_any_host;
	s->ana_reporting = o.ana_reporting;
	s->min_cntlid = o.min_cntlid;
	s->max_cntlid = o.max_cntlid;
	s->next_cntlid = o.min_cntlid;
	link_subsystem(s);
	nvmf_discovery_changed();
	DBK_INFOLOG("subsystem %s created", nqn);
	if (out)
		*out = s;
	return 0;
}

/* ------------------------------------------------------------------- hosts */

bool nvmf_subsystem_host_allowed(const struct dbk_nvmf_subsystem *s, const char *hostnqn)
{
	if (s->allow_any_host || s->discovery)
		return true;
	for (const struct nvmf_host *h = s->hosts; h; h = h->next)
		if (strcmp(h->nqn, hostnqn) == 0)
			return true;
	return false;
}

struct nvmf_host *nvmf_subsystem_find_host(const struct dbk_nvmf_subsystem *s, const char *hostnqn)
{
	for (struct nvmf_host *h = s->hosts; h; h = h->next)
		if (strcmp(h->nqn, hostnqn) == 0)
			return h;
	return NULL;
}

static void host_free(struct nvmf_host *h)
{
	dbk_key_put(h->dhchap_key);
	dbk_key_put(h->dhchap_ctrlr_key);
	dbk_key_put(h->psk);
	free(h);
}

/* Look up one key name (NULL: none) into *out; a DH-HMAC-CHAP key must hold a valid DHHC-1 secret. */
static int lookup_key(const char *name, const char *what, bool dhchap, struct dbk_key **out, char *err,
		      size_t errlen)
{
	struct dbk_key *k;

	*out = NULL;
	if (!name)
		return 0;
	k = dbk_keyring_get_key(name);
	if (!k) {
		snprintf(err, errlen, "%s '%.255s' not found in the keyring (keyring_file_add_key first)", what, name);
		return -ENOKEY;
	}
	if (dhchap) {
		struct dbk_dhchap_secret sec;
		char buf[DBK_KEY_MAX_SIZE + 1], perr[160];
		int rc = dbk_key_get_secret(k, buf, sizeof(buf));

		rc = rc < 0 ? rc : dbk_dhchap_secret_parse(buf, &sec, perr, sizeof(perr));
		OPENSSL_cleanse(buf, sizeof(buf));
		OPENSSL_cleanse(&sec, sizeof(sec));
		if (rc) {
			snprintf(err, errlen, "%s '%.255s' is not a DH-HMAC-CHAP secret: %s", what, name,
				 rc == -EINVAL ? perr : strerror(-rc));
			dbk_key_put(k);
			return -EINVAL;
		}
	}
	*out = k;
	return 0;
}

static int lookup_keys(const struct dbk_nvmf_host_keys *keys, struct dbk_key *out[3], bool with_psk, char *err,
		       size_t errlen)
{
	int rc;

	out[0] = out[1] = out[2] = NULL;
	if (!keys)
		return 0;
	if (keys->dhchap_ctrlr_key && !keys->dhchap_key) {
		snprintf(err, errlen, "a controller key (dhchap_ctrlr_key) needs a host key (dhchap_key)");
		return -EINVAL;
	}
	rc = lookup_key(keys->dhchap_key, "DH-HMAC-CHAP key", true, &out[0], err, errlen);
	if (!rc)
		rc = lookup_key(keys->dhchap_ctrlr_key, "DH-HMAC-CHAP controller key", true, &out[1], err, errlen);
	if (!rc && with_psk)
		rc = lookup_key(keys->psk, "PSK", false, &out[2], err, errlen);
	if (rc) {
		for (int i = 0; i < 3; i++)
			dbk_key_put(out[i]);
	}
	return rc;
}

int dbk_nvmf_subsystem_add_host_ext(struct dbk_nvmf_subsystem *s, const char *hostnqn,
				    const struct dbk_nvmf_host_keys *keys, char *err, size_t errlen)
{
	struct nvmf_host *h, **pp;
	struct dbk_key *k[3];
	int rc;

	if (s->discovery) {
		snprintf(err, errlen, "the discovery subsystem accepts every host");
		return -EINVAL;
	}
	if (!dbk_nvmf_nqn_is_valid(hostnqn, err, errlen))
		return -EINVAL;
	if (nvmf_subsystem_find_host(s, hostnqn)) {
		snprintf(err, errlen, "host '%s' is already allowed on %s", hostnqn, s->nqn);
		return -EEXIST;
	}
	rc = lookup_keys(keys, k, true, err, errlen);
	if (rc)
		return rc;
	h = calloc(1, sizeof(*h));
	if (!h) {
		for (int i = 0; i < 3; i++)
			dbk_key_put(k[i]);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(h->nqn, sizeof(h->nqn), "%s", hostnqn);
	h->dhchap_key = k[0];
	h->dhchap_ctrlr_key = k[1];
	h->psk = k[2];
	for (pp = &s->hosts; *pp; pp = &(*pp)->next)
		;
	*pp = h;
	nvmf_discovery_changed();
	return 0;
}

int dbk_nvmf_subsystem_add_host(struct dbk_nvmf_subsystem *s, const char *hostnqn, char *err, size_t errlen)
{
	return dbk_nvmf_subsystem_add_host_ext(s, hostnqn, NULL, err, errlen);
}

int dbk_nvmf_subsystem_set_host_keys(struct dbk_nvmf_subsystem *s, const char *hostnqn,
				     const struct dbk_nvmf_host_keys *keys, char *err, size_t errlen)
{
	struct nvmf_host *h = nvmf_subsystem_find_host(s, hostnqn);
	struct dbk_key *k[3];
	int rc;

	if (!h) {
		snprintf(err, errlen, "host '%s' is not in the allowed list of %s", hostnqn, s->nqn);
		return -ENOENT;
	}
	rc = lookup_keys(keys, k, false, err, errlen);
	if (rc)
		return rc;
	dbk_key_put(h->dhchap_key);
	dbk_key_put(h->dhchap_ctrlr_key);
	h->dhchap_key = k[0];
	h->dhchap_ctrlr_key = k[1];
	DBK_INFOLOG("%s: host %s: DH-HMAC-CHAP keys set (%s%s%s)", s->nqn, hostnqn,
		    k[0] ? dbk_key_get_name(k[0]) : "none", k[1] ? ", controller key " : "",
		    k[1] ? dbk_key_get_name(k[1]) : "");
	return 0;
}

int dbk_nvmf_subsystem_remove_host(struct dbk_nvmf_subsystem *s, const char *hostnqn, char *err, size_t errlen)
{
	struct nvmf_host **pp, *h;

	for (pp = &s->hosts; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->nqn, hostnqn) == 0)
			break;
	}
	if (!*pp) {
		snprintf(err, errlen, "host '%s' is not in the allowed list of %s", hostnqn, s->nqn);
		return -ENOENT;
	}
	h = *pp;
	*pp = h->next;
	host_free(h);
	if (!s->allow_any_host) {
		for (struct dbk_nvmf_ctrlr *c = s->ctrlrs; c; c = c->next)
			if (strcmp(c->hostnqn, hostnqn) == 0)
				nvmf_ctrlr_disconnect_all(c);
	}
	nvmf_discovery_changed();
	return 0;
}

int dbk_nvmf_subsystem_set_allow_any_host(struct dbk_nvmf_subsystem *s, bool allow, char *err, size_t errlen)
{
	if (s->discovery) {
		snprintf(err, errlen, "the discovery subsystem accepts every host");
		return -EINVAL;
	}
	if (s->allow_any_host != allow) {
		s->allow_any_host = allow;
		nvmf_discovery_changed();
	}
	return 0;
}

/* --------------------------------------------------------------- listeners */

int dbk_nvmf_subsystem_add_listener(struct dbk_nvmf_subsystem *s, const struct dbk_nvmf_listen_addr *addr,
				    char *err, size_t errlen)
{
	struct nvmf_subsys_listener *sl, **pp;
	struct nvmf_listener *l;
	int rc = 0;

	for (sl = s->listeners; sl; sl = sl->next) {
		if (nvmf_listen_addr_equal(&sl->listener->addr, addr)) {
			snprintf(err, errlen, "%s already listens on %s %s:%s", s->nqn, addr->trtype, addr->traddr,
				 addr->trsvcid);
			return -EEXIST;
		}
	}
	sl = calloc(1, sizeof(*sl));
	if (!sl) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (!s->discovery && !(sl->ana = nvmf_ana_port_new(s->max_namespaces, NVMF_ANA_OPTIMIZED))) {
		free(sl);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	l = nvmf_listener_get(addr, err, errlen, &rc);
	if (!l) {
		nvmf_ana_port_put(sl->ana);
		free(sl);
		return rc;
	}
	sl->listener = l;
	for (pp = &s->listeners; *pp; pp = &(*pp)->next)
		;
	*pp = sl;
	nvmf_discovery_changed();
	return 0;
}

struct listener_disc_ctx {
	struct dbk_nvmf_subsystem *s;
	struct dbk_nvmf_listen_addr addr;
};

/* On each poll group: disconnect the subsystem's qpairs that came in through addr. */
static void listener_disc_msg(void *arg)
{
	struct listener_disc_ctx *c = arg;
	struct dbk_nvmf_poll_group *g = nvmf_group_of_thread();

	if (!g)
		return;
	for (struct dbk_nvmf_qpair *q = g->qpairs, *next; q; q = next) {
		struct dbk_nvmf_listen_addr a;

		next = q->core_next;
		memset(&a, 0, sizeof(a));
		if (!q->ctrlr || q->ctrlr->subsys != c->s || !q->transport->ops->qpair_get_local_addr ||
		    q->transport->ops->qpair_get_local_addr(q, &a) != 0)
			continue;
		if (strcasecmp(a.trtype, c->addr.trtype) == 0 && strcmp(a.traddr, c->addr.traddr) == 0 &&
		    strcmp(a.trsvcid, c->addr.trsvcid) == 0)
			dbk_nvmf_qpair_disconnect(q);
	}
}

static void listener_disc_done(void *arg)
{
	free(arg);
}

static void disconnect_listener_qpairs(struct dbk_nvmf_subsystem *s, const struct dbk_nvmf_listen_addr *addr)
{
	struct listener_disc_ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return;
	c->s = s;
	c->addr = *addr;
	if (dbk_for_each_thread(listener_disc_msg, c, listener_disc_done) != 0)
		free(c);
}

bool dbk_nvmf_subsystem_has_listener(struct dbk_nvmf_subsystem *s, const struct dbk_nvmf_listen_addr *addr,
				     char *err, size_t errlen)
{
	for (struct nvmf_subsys_listener *sl = s->listeners; sl; sl = sl->next)
		if (nvmf_listen_addr_equal(&sl->listener->addr, addr))
			return true;
	snprintf(err, errlen, "%s has no listener on %s %s:%s", s->nqn, addr->trtype, addr->traddr, addr->trsvcid);
	return false;
}

int dbk_nvmf_subsystem_remove_listener(struct dbk_nvmf_subsystem *s, const struct dbk_nvmf_listen_addr *addr,
				       char *err, size_t errlen)
{
	struct nvmf_subsys_listener **pp, *sl;

	for (pp = &s->listeners; *pp; pp = &(*pp)->next)
		if (nvmf_listen_addr_equal(&(*pp)->listener->addr, addr))
			break;
	if (!*pp) {
		snprintf(err, errlen, "%s has no listener on %s %s:%s", s->nqn, addr->trtype, addr->traddr,
			 addr->trsvcid);
		return -ENOENT;
	}
	sl = *pp;
	*pp = sl->next;
	nvmf_listener_put(sl->listener);
	nvmf_ana_port_put(sl->ana);
	free(sl);
	nvmf_discovery_changed();
	disconnect_listener_qpairs(s, addr);
	return 0;
}

/* -------------------------------------------------------------- namespaces */

struct ns_op {
	struct dbk_nvmf_subsystem *s;
	struct nvmf_ns *ns;
	uint32_t nsid;
	bool failed;
	bool notify;
	dbk_nvmf_done_cb cb;
	void *ctx;
	char err[256];
};

static void subsystem_delete_continue(struct dbk_nvmf_subsystem *s);

static void notify_ns_changed(struct dbk_nvmf_subsystem *s, uint32_t nsid)
{
	for (struct dbk_nvmf_ctrlr *c = s->ctrlrs; c; c = c->next)
		nvmf_ctrlr_notify_ns_changed(c, nsid);
}

static void ns_detach_msg(void *arg)
{
	struct ns_op *op = arg;
	struct dbk_nvmf_poll_group *g = nvmf_group_of_thread();
	struct nvmf_pg_ns *e;

	if (!g)
		return;
	e = &op->s->pg_ns[g->idx][op->nsid - 1];
	if (e->ns != op->ns)
		return;
	e->ns = NULL;
	if (!e->ch)
		return;
	if (e->outstanding == 0) {
		dbk_put_io_channel(e->ch);
	} else if (!e->old_ch) {
		e->old_ch = e->ch;	/* put by the last completing I/O */
	} else {
		DBK_ERRLOG("namespace %u: channel leaked (I/O still in flight twice)", op->nsid);
	}
	e->ch = NULL;
}

static void ns_detach_done(void *arg)
{
	struct ns_op *op = arg;
	struct dbk_nvmf_subsystem *s = op->s;
	struct nvmf_ns *ns = op->ns;

	dbk_bdev_release_claim(ns->desc);
	dbk_bdev_close(ns->desc);
	DBK_INFOLOG("%s: namespace %u removed", s->nqn, op->nsid);
	free(ns);
	s->pending_ns_ops--;
	if (op->notify && !s->deleting)
		notify_ns_changed(s, op->nsid);
	if (op->cb)
		op->cb(op->ctx, op->failed ? -ENOMEM : 0, op->failed ? op->err : NULL);
	free(op);
	if (s->deleting)
		subsystem_delete_continue(s);
}

static void ns_detach_start(struct dbk_nvmf_subsystem *s, struct nvmf_ns *ns, bool notify, bool failed,
			    const char *err, dbk_nvmf_done_cb cb, void *ctx)
{
	struct ns_op *op = calloc(1, sizeof(*op));

	ns->removing = true;
	if (s->ns[ns->nsid - 1] == ns)
		s->ns[ns->nsid - 1] = NULL;
	s->pending_ns_ops++;
	if (!op) {
		/* cannot message the groups: leak rather than free under them */
		DBK_ERRLOG("out of memory removing namespace %u", ns->nsid);
		s->pending_ns_ops--;
		if (cb)
			cb(ctx, -ENOMEM, "out of memory");
		return;
	}
	op->s = s;
	op->ns = ns;
	op->nsid = ns->nsid;
	op->notify = notify;
	op->failed = failed;
	if (err)
		snprintf(op->err, sizeof(op->err), "%s", err);
	op->cb = cb;
	op->ctx = ctx;
	if (dbk_for_each_thread(ns_detach_msg, op, ns_detach_done) != 0) {
		DBK_ERRLOG("cannot message poll groups removing namespace %u", ns->nsid);
		s->pending_ns_ops--;
		if (cb)
			cb(ctx, -ENOMEM, "out of memory");
		free(op);
	}
}

static void ns_attach_msg(void *arg)
{
	struct ns_op *op = arg;
	struct dbk_nvmf_poll_group *g = nvmf_group_of_thread();
	struct nvmf_pg_ns *e;
	struct dbk_io_channel *ch;

	if (!g)
		return;
	e = &op->s->pg_ns[g->idx][op->nsid - 1];
	ch = dbk_bdev_get_io_channel(op->ns->desc);
	if (!ch) {
		op->failed = true;
		return;
	}
	if (e->ch) /* should not happen: a detach always clears it */
		dbk_put_io_channel(e->ch);
	e->ch = ch;
	e->ns = op->ns;
}

static void ns_attach_done(void *arg)
{
	struct ns_op *op = arg;
	struct dbk_nvmf_subsystem *s = op->s;
	struct nvmf_ns *ns = op->ns;

	s->pending_ns_ops--;
	if (op->failed) {
		ns_detach_start(s, ns, false, true, "cannot get an I/O channel for the bdev", op->cb, op->ctx);
		free(op);
		return;
	}
	ns->attached = true;
	DBK_INFOLOG("%s: namespace %u = bdev %s", s->nqn, ns->nsid, dbk_bdev_get_name(ns->bdev));
	if (!ns->removing && !s->deleting)
		notify_ns_changed(s, ns->nsid);
	if (op->cb)
		op->cb(op->ctx, (int)ns->nsid, NULL);
	free(op);
	if (s->deleting)
		subsystem_delete_continue(s);
}

static void ns_event_cb(enum dbk_bdev_event_type type, struct dbk_bdev *bdev, void *event_ctx)
{
	struct nvmf_ns *ns = event_ctx;

	(void)bdev;
	switch (type) {
	case DBK_BDEV_EVENT_REMOVE:
		if (!ns->removing) {
			DBK_NOTICELOG("bdev %s removed: removing namespace %u of %s", dbk_bdev_get_name(ns->bdev),
				      ns->nsid, ns->subsys->nqn);
			ns_detach_start(ns->subsys, ns, true, false, NULL, NULL, NULL);
		}
		break;
	case DBK_BDEV_EVENT_RESIZE:
		if (!ns->removing)
			notify_ns_changed(ns->subsys, ns->nsid);
		break;
	}
}

void dbk_nvmf_subsystem_add_ns(struct dbk_nvmf_subsystem *s, const char *bdev_name,
			       const struct dbk_nvmf_ns_opts *opts, dbk_nvmf_done_cb cb, void *ctx)
{
	struct dbk_nvmf_ns_opts o = {0};
	struct nvmf_ns *ns;
	struct ns_op *op;
	char err[512];
	uint32_t nsid;
	int rc;

	if (opts)
		o = *opts;
	if (s->discovery) {
		cb(ctx, -EINVAL, "the discovery subsystem has no namespaces");
		return;
	}
	if (s->deleting) {
		cb(ctx, -ENODEV, "the subsystem is being deleted");
		return;
	}
	nsid = o.nsid;
	if (nsid) {
		if (nsid > s->max_namespaces) {
			snprintf(err, sizeof(err), "nsid %u out of range for %s (1..%u, max_namespaces)", nsid, s->nqn,
				 s->max_namespaces);
			cb(ctx, -EINVAL, err);
			return;
		}
		if (s->ns[nsid - 1]) {
			snprintf(err, sizeof(err), "nsid %u is already in use in %s", nsid, s->nqn);
			cb(ctx, -EEXIST, err);
			return;
		}
	} else {
		for (uint32_t i = 0; i < s->max_namespaces; i++) {
			if (!s->ns[i]) {
				nsid = i + 1;
				break;
			}
		}
		if (!nsid) {
			snprintf(err, sizeof(err), "%s has no free namespace slot (max_namespaces %u)", s->nqn,
				 s->max_namespaces);
			cb(ctx, -ENOSPC, err);
			return;
		}
	}
	if (o.anagrpid > s->max_namespaces) {
		snprintf(err, sizeof(err), "anagrpid %u out of range for %s (1..%u, max_namespaces)", o.anagrpid, s->nqn,
			 s->max_namespaces);
		cb(ctx, -EINVAL, err);
		return;
	}
	ns = calloc(1, sizeof(*ns));
	op = calloc(1, sizeof(*op));
	if (!ns || !op) {
		free(ns);
		free(op);
		cb(ctx, -ENOMEM, "out of memory");
		return;
	}
	ns->nsid = nsid;
	ns->anagrpid = o.anagrpid ? o.anagrpid : nsid;
	ns->subsys = s;
	rc = dbk_bdev_open_ext(bdev_name, true, ns_event_cb, ns, &ns->desc);
	if (rc) {
		if (rc == -ENODEV)
			snprintf(err, sizeof(err), "bdev '%s' not found", bdev_name);
		else
			snprintf(err, sizeof(err), "cannot open bdev '%s': %s", bdev_name, strerror(-rc));
		free(ns);
		free(op);
		cb(ctx, rc, err);
		return;
	}
	ns->bdev = dbk_bdev_desc_get_bdev(ns->desc);
	rc = dbk_bdev_claim(ns->desc, "nvmf");
	if (rc) {
		const char *owner = dbk_bdev_get_claim_owner(ns->bdev);

		snprintf(err, sizeof(err), "bdev '%s' is already claimed by '%s'", bdev_name, owner ? owner : "?");
		dbk_bdev_close(ns->desc);
		free(ns);
		free(op);
		cb(ctx, rc, err);
		return;
	}
	ns->block_size = dbk_bdev_get_block_size(ns->bdev);
	if (ns->block_size < 512 || (ns->block_size & (ns->block_size - 1)) != 0) {
		snprintf(err, sizeof(err), "bdev '%s' has a %u-byte block size: NVMe needs a power of two >= 512",
			 bdev_name, ns->block_size);
		dbk_bdev_release_claim(ns->desc);
		dbk_bdev_close(ns->desc);
		free(ns);
		free(op);
		cb(ctx, -EINVAL, err);
		return;
	}
	/* identities are stable: given, or derived from the (given or bdev) UUID */
	if (o.has_nguid)
		memcpy(ns->nguid, o.nguid, 16);
	else if (o.has_uuid)
		memcpy(ns->nguid, o.uuid, 16);
	else
		memcpy(ns->nguid, *dbk_bdev_get_uuid(ns->bdev), 16);
	if (o.has_uuid)
		uuid_copy(ns->uuid, o.uuid);
	else
		uuid_copy(ns->uuid, *dbk_bdev_get_uuid(ns->bdev));
	if (o.has_eui64) {
		memcpy(ns->eui64, o.eui64, 8);
		ns->has_eui64 = true;
	}
	s->ns[nsid - 1] = ns;
	s->pending_ns_ops++;
	op->s = s;
	op->ns = ns;
	op->nsid = nsid;
	op->cb = cb;
	op->ctx = ctx;
	if (dbk_for_each_thread(ns_attach_msg, op, ns_attach_done) != 0) {
		op->failed = true;
		ns_attach_done(op);
	}
}

void dbk_nvmf_subsystem_remove_ns(struct dbk_nvmf_subsystem *s, uint32_t nsid, dbk_nvmf_done_cb cb, void *ctx)
{
	char err[512];
	struct nvmf_ns *ns = nsid >= 1 && nsid <= s->max_namespaces ? s->ns[nsid - 1] : NULL;

	if (!ns || ns->removing) {
		snprintf(err, sizeof(err), "namespace %u not found in %s", nsid, s->nqn);
		cb(ctx, -ENOENT, err);
		return;
	}
	ns_detach_start(s, ns, true, false, NULL, cb, ctx);
}

/* --------------------------------------------------------- subsystem delete */

static void subsystem_delete_continue(struct dbk_nvmf_subsystem *s)
{
	struct nvmf_subsys_listener *sl;
	dbk_nvmf_done_cb cb;
	void *ctx;

	if (s->num_ctrlrs > 0 || s->pending_ns_ops > 0)
		return;
	for (uint32_t i = 0; i < s->max_namespaces; i++) {
		if (s->ns[i]) {
			ns_detach_start(s, s->ns[i], false, false, NULL, NULL, NULL);
			return; /* continues from ns_detach_done */
		}
	}
	while ((sl = s->listeners)) {
		s->listeners = sl->next;
		nvmf_listener_put(sl->listener);
		nvmf_ana_port_put(sl->ana);
		free(sl);
	}
	cb = s->delete_cb;
	ctx = s->delete_ctx;
	DBK_INFOLOG("subsystem %s deleted", s->nqn);
	if (g_nvmf_tgt.discovery == s)
		g_nvmf_tgt.discovery = NULL;
	free_subsystem(s);
	if (cb)
		cb(ctx, 0, NULL);
}

void nvmf_subsystem_ctrlr_removed(struct dbk_nvmf_subsystem *s)
{
	if (s->deleting)
		subsystem_delete_continue(s);
}

static void subsystem_delete(struct dbk_nvmf_subsystem *s, dbk_nvmf_done_cb cb, void *ctx)
{
	s->deleting = true;
	s->delete_cb = cb;
	s->delete_ctx = ctx;
	unlink_subsystem(s);
	if (!s->discovery)
		nvmf_discovery_changed();
	for (struct dbk_nvmf_ctrlr *c = s->ctrlrs; c; c = c->next)
		nvmf_ctrlr_disconnect_all(c);
	subsystem_delete_continue(s);
}

void dbk_nvmf_subsystem_delete(const char *nqn, dbk_nvmf_done_cb cb, void *ctx)
{
	struct dbk_nvmf_subsystem *s = dbk_nvmf_subsystem_find(nqn);
	char err[300];

	if (!s) {
		snprintf(err, sizeof(err), "subsystem '%s' not found", nqn ? nqn : "");
		cb(ctx, -ENOENT, err);
		return;
	}
	if (s->discovery) {
		cb(ctx, -EINVAL, "the discovery subsystem cannot be deleted");
		return;
	}
	subsystem_delete(s, cb, ctx);
}

struct destroy_all_ctx {
	int pending;
	void (*cb)(void *ctx);
	void *ctx;
};

static void destroy_all_one_done(void *arg, int rc, const char *err)
{
	struct destroy_all_ctx *d = arg;

	(void)rc;
	(void)err;
	if (--d->pending == 0) {
		void (*cb)(void *) = d->cb;
		void *ctx = d->ctx;

		free(d);
		cb(ctx);
	}
}

void nvmf_subsystems_destroy_all(void (*cb)(void *ctx), void *ctx)
{
	struct destroy_all_ctx *d = calloc(1, sizeof(*d));
	struct dbk_nvmf_subsystem *s, *next;

	if (!d) {
		cb(ctx);
		return;
	}
	d->cb = cb;
	d->ctx = ctx;
	d->pending = 1;
	for (s = g_nvmf_tgt.subsystems; s; s = next) {
		next = s->next;
		d->pending++;
		subsystem_delete(s, destroy_all_one_done, d);
	}
	destroy_all_one_done(d, 0, NULL);
}

/* ----------------------------------------------------------- discovery log */

static void pad_copy(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	memset(dst, ' ', len);
	memcpy(dst, src, n < len ? n : len);
}

void *nvmf_discovery_log_build(const char *hostnqn, size_t *len)
{
	struct nvmf_discovery_log_header *hdr;
	struct nvmf_discovery_log_entry *e;
	uint64_t n = 0;
	uint8_t *buf;

	for (struct dbk_nvmf_subsystem *s = g_nvmf_tgt.subsystems; s; s = s->next) {
		if (s->discovery || s->deleting || !nvmf_subsystem_host_allowed(s, hostnqn))
			continue;
		for (struct nvmf_subsys_listener *sl = s->listeners; sl; sl = sl->next)
			n++;
	}
	n += nvmf_referral_count();
	*len = sizeof(*hdr) + n * sizeof(*e);
	buf = calloc(1, *len);
	if (!buf)
		return NULL;
	hdr = (struct nvmf_discovery_log_header *)buf;
	hdr->genctr = g_nvmf_tgt.genctr;
	hdr->numrec = n;
	hdr->recfmt = 0;
	e = (struct nvmf_discovery_log_entry *)(buf + sizeof(*hdr));
	for (struct dbk_nvmf_subsystem *s = g_nvmf_tgt.subsystems; s; s = s->next) {
		if (s->discovery || s->deleting || !nvmf_subsystem_host_allowed(s, hostnqn))
			continue;
		for (struct nvmf_subsys_listener *sl = s->listeners; sl; sl = sl->next, e++) {
			const struct nvmf_listener *l = sl->listener;

			e->trtype = strcasecmp(l->addr.trtype, "TCP") == 0 ? NVMF_TRTYPE_TCP : 0;
			e->adrfam = strcasecmp(l->addr.adrfam, "IPv6") == 0 ? NVMF_ADRFAM_IPV6 : NVMF_ADRFAM_IPV4;
			e->subtype = NVMF_SUBTYPE_NVME;
			/*
			 * "Required" for a TLS listener; plain ones keep "not specified" rather than "not required",
			 * like nvmet: nvme-cli 2.3 adds a 'tls' connect option on "not required" that a 6.1
			 * kernel refuses (../shared/kernel-initiator/README.md).
			 */
			e->treq = l->addr.secure_channel ? NVMF_TREQ_SECURE_CHANNEL_REQUIRED
							 : NVMF_TREQ_SECURE_CHANNEL_NOT_SPECIFIED;
			e->portid = l->portid;
			e->cntlid = 0xFFFF;
			e->asqsz = (uint16_t)(l->transport->opts.max_aq_depth ? l->transport->opts.max_aq_depth : 32);
			e->eflags = 0;
			pad_copy(e->trsvcid, sizeof(e->trsvcid), l->addr.trsvcid);
			pad_copy(e->traddr, sizeof(e->traddr), l->addr.traddr);
			snprintf(e->subnqn, sizeof(e->subnqn), "%s", s->nqn);
			e->tsas.tcp.sectype = l->addr.secure_channel ? NVMF_TCP_SECTYPE_TLS13 : 0;
		}
	}
	nvmf_referral_fill(e);
	return buf;
}

/* ------------------------------------------------------------------- JSON */

static void hex_str(char *out, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02X", b[i]);
	out[2 * n] = '\0';
}

static json_t *addr_json(const struct dbk_nvmf_listen_addr *a)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "trtype", a->trtype, "adrfam", a->adrfam, "traddr", a->traddr,
			 "trsvcid", a->trsvcid);
}

static json_t *ns_json(const struct nvmf_ns *ns)
{
	char hex[33], u[37];
	json_t *o = json_object();

	json_object_set_new(o, "nsid", json_integer(ns->nsid));
	json_object_set_new(o, "bdev_name", json_string(dbk_bdev_get_name(ns->bdev)));
	json_object_set_new(o, "name", json_string(dbk_bdev_get_name(ns->bdev)));
	hex_str(hex, ns->nguid, 16);
	json_object_set_new(o, "nguid", json_string(hex));
	if (ns->has_eui64) {
		hex_str(hex, ns->eui64, 8);
		json_object_set_new(o, "eui64", json_string(hex));
	}
	uuid_unparse_lower(ns->uuid, u);
	json_object_set_new(o, "uuid", json_string(u));
	if (ns->subsys->ana_reporting)
		json_object_set_new(o, "anagrpid", json_integer(ns->anagrpid));
	return o;
}

json_t *dbk_nvmf_subsystem_listeners_json(struct dbk_nvmf_subsystem *s)
{
	json_t *arr = json_array();

	for (struct nvmf_subsys_listener *sl = s->listeners; sl; sl = sl->next) {
		json_t *o = json_object();

		json_object_set_new(o, "address", addr_json(&sl->listener->addr));
		if (s->ana_reporting)
			json_object_set_new(o, "ana_states", nvmf_ana_listener_json(s, sl));
		else
			json_object_set_new(o, "ana_state", json_string("optimized"));
		if (sl->listener->addr.secure_channel)
			json_object_set_new(o, "secure_channel", json_true());
		json_array_append_new(arr, o);
	}
	return arr;
}

/* A host entry with its key names (never secrets): {nqn_key: NQN, dhchap_key, dhchap_ctrlr_key, psk}. */
static json_t *host_json(const struct nvmf_host *h, const char *nqn_key)
{
	json_t *o = json_pack("{s:s}", nqn_key, h->nqn);

	if (h->dhchap_key)
		json_object_set_new(o, "dhchap_key", json_string(dbk_key_get_name(h->dhchap_key)));
	if (h->dhchap_ctrlr_key)
		json_object_set_new(o, "dhchap_ctrlr_key", json_string(dbk_key_get_name(h->dhchap_ctrlr_key)));
	if (h->psk)
		json_object_set_new(o, "psk", json_string(dbk_key_get_name(h->psk)));
	return o;
}

json_t *dbk_nvmf_subsystem_json(struct dbk_nvmf_subsystem *s)
{
	json_t *o = json_object(), *arr;

	json_object_set_new(o, "nqn", json_string(s->nqn));
	json_object_set_new(o, "subtype", json_string(s->discovery ? "Discovery" : "NVMe"));
	arr = json_array();
	for (struct nvmf_subsys_listener *sl = s->listeners; sl; sl = sl->next) {
		json_t *a = addr_json(&sl->listener->addr);

		json_object_set_new(a, "transport", json_string(sl->listener->addr.trtype));
		json_array_append_new(arr, a);
	}
	json_object_set_new(o, "listen_addresses", arr);
	json_object_set_new(o, "allow_any_host", json_boolean(s->allow_any_host));
	if (!s->discovery)
		json_object_set_new(o, "ana_reporting", json_boolean(s->ana_reporting));
	arr = json_array();
	for (struct nvmf_host *h = s->hosts; h; h = h->next)
		json_array_append_new(arr, host_json(h, "nqn"));
	json_object_set_new(o, "hosts", arr);
	if (!s->discovery) {
		json_object_set_new(o, "serial_number", json_string(s->sn));
		json_object_set_new(o, "model_number", json_string(s->mn));
		json_object_set_new(o, "max_namespaces", json_integer(s->max_namespaces));
		json_object_set_new(o, "min_cntlid", json_integer(s->min_cntlid));
		json_object_set_new(o, "max_cntlid", json_integer(s->max_cntlid));
		arr = json_array();
		for (uint32_t i = 0; i < s->max_namespaces; i++)
			if (s->ns[i] && !s->ns[i]->removing)
				json_array_append_new(arr, ns_json(s->ns[i]));
		json_object_set_new(o, "namespaces", arr);
	}
	return o;
}

json_t *dbk_nvmf_subsystems_json(void)
{
	json_t *arr = json_array();

	for (struct dbk_nvmf_subsystem *s = g_nvmf_tgt.subsystems; s; s = s->next)
		json_array_append_new(arr, dbk_nvmf_subsystem_json(s));
	return arr;
}

json_t *dbk_nvmf_subsystem_ctrlrs_json(struct dbk_nvmf_subsystem *s)
{
	json_t *arr = json_array();

	for (struct dbk_nvmf_ctrlr *c = s->ctrlrs; c; c = c->next) {
		char u[37];

		uuid_unparse_lower(c->hostid, u);
		json_array_append_new(arr, json_pack("{s:i, s:s, s:s}", "cntlid", (int)c->cntlid, "hostnqn",
						     c->hostnqn, "hostid", u));
	}
	return arr;
}

static void add_method(json_t *array, const char *method, json_t *params)
{
	json_array_append_new(array, json_pack("{s:s, s:o}", "method", method, "params", params));
}

void dbk_nvmf_write_config_json(json_t *array)
{
	if (!g_nvmf_tgt.running)
		return;
	add_method(array, "nvmf_set_config", dbk_nvmf_auth_config_json());
	for (int i = 0; i < g_nvmf_tgt.num_transports; i++)
		if (g_nvmf_tgt.transports[i])
			add_method(array, "nvmf_create_transport", dbk_nvmf_transport_json(g_nvmf_tgt.transports[i]));
	for (struct dbk_nvmf_subsystem *s = g_nvmf_tgt.subsystems; s; s = s->next) {
		if (s->deleting || s->discovery)
			continue;
		add_method(array, "nvmf_create_subsystem",
			   json_pack("{s:s, s:s, s:s, s:b, s:i, s:i, s:i, s:b}", "nqn", s->nqn, "serial_number", s->sn,
				     "model_number", s->mn, "allow_any_host", s->allow_any_host, "max_namespaces",
				     (int)s->max_namespaces, "min_cntlid", (int)s->min_cntlid, "max_cntlid",
				     (int)s->max_cntlid, "ana_reporting", s->ana_reporting));
		for (struct nvmf_host *h = s->hosts; h; h = h->next) {
			json_t *hp = host_json(h, "host");

			json_object_set_new(hp, "nqn", json_string(s->nqn));
			add_method(array, "nvmf_subsystem_add_host", hp);
		}
		for (uint32_t i = 0; i < s->max_namespaces; i++) {
			json_t *nsj;

			if (!s->ns[i] || s->ns[i]->removing)
				continue;
			nsj = ns_json(s->ns[i]);
			json_object_del(nsj, "name");
			add_method(array, "nvmf_subsystem_add_ns", json_pack("{s:s, s:o}", "nqn", s->nqn,
									    "namespace", nsj));
		}
		for (struct nvmf_subsys_listener *sl = s->listeners; sl; sl = sl->next) {
			json_t *lp = json_pack("{s:s, s:o}", "nqn", s->nqn, "listen_address",
					       addr_json(&sl->listener->addr));
			if (sl->listener->addr.secure_channel)
				json_object_set_new(lp, "secure_channel", json_true());
			add_method(array, "nvmf_subsystem_add_listener", lp);
			nvmf_ana_write_config(array, s, sl, addr_json(&sl->listener->addr));
		}
	}
	nvmf_referrals_write_config(array);
	if (g_nvmf_tgt.discovery) {
		for (struct nvmf_subsys_listener *sl = g_nvmf_tgt.discovery->listeners; sl; sl = sl->next)
			add_method(array, "nvmf_subsystem_add_listener",
				   json_pack("{s:s, s:o}", "nqn", "discovery", "listen_address",
					     addr_json(&sl->listener->addr)));
	}
}

/* ------------------------------------------------- qpairs / stats (async) */

struct group_json_ctx {
	struct dbk_nvmf_subsystem *s;
	json_t *arr;
	dbk_nvmf_json_cb cb;
	void *ctx;
};

static const char *qpair_state_name(const struct dbk_nvmf_qpair *q)
{
	switch (q->core_state) {
	case NVMF_QPAIR_ACTIVE:
		return "active";
	case NVMF_QPAIR_UNINIT:
		return "uninitialized";
	default:
		return "deleting";
	}
}

static void qpairs_group_msg(void *arg)
{
	struct group_json_ctx *c = arg;
	struct dbk_nvmf_poll_group *g = nvmf_group_of_thread();

	if (!g)
		return;
	for (struct dbk_nvmf_qpair *q = g->qpairs; q; q = q->core_next) {
		struct dbk_nvmf_listen_addr a;
		json_t *o;

		if (!q->ctrlr || q->ctrlr->subsys != c->s)
			continue;
		o = json_object();
		json_object_set_new(o, "cntlid", json_integer(q->ctrlr->cntlid));
		json_object_set_new(o, "qid", json_integer(q->qid));
		json_object_set_new(o, "state", json_string(qpair_state_name(q)));
		json_object_set_new(o, "thread", json_string(dbk_thread_get_name(g->thread)));
		json_object_set_new(o, "trtype", json_string(q->transport->ops->name));
		memset(&a, 0, sizeof(a));
		if (q->transport->ops->qpair_get_local_addr &&
		    q->transport->ops->qpair_get_local_addr(q, &a) == 0)
			json_object_set_new(o, "listen_address", addr_json(&a));
		memset(&a, 0, sizeof(a));
		if (q->transport->ops->qpair_get_peer_addr && q->transport->ops->qpair_get_peer_addr(q, &a) == 0)
			json_object_set_new(o, "peer_address", addr_json(&a));
		if (q->transport->ops->qpair_dump_json)
			q->transport->ops->qpair_dump_json(q, o);
		json_array_append_new(c->arr, o);
	}
}

static void group_json_done(void *arg)
{
	struct group_json_ctx *c = arg;

	c->cb(c->ctx, c->arr);
	free(c);
}

void dbk_nvmf_subsystem_qpairs_json(struct dbk_nvmf_subsystem *s, dbk_nvmf_json_cb cb, void *ctx)
{
	struct group_json_ctx *c = calloc(1, sizeof(*c));

	if (!c) {
		cb(ctx, NULL);
		return;
	}
	c->s = s;
	c->arr = json_array();
	c->cb = cb;
	c->ctx = ctx;
	if (dbk_for_each_thread(qpairs_group_msg, c, group_json_done) != 0) {
		json_decref(c->arr);
		free(c);
		cb(ctx, NULL);
	}
}

static void stats_group_msg(void *arg)
{
	struct group_json_ctx *c = arg;
	struct dbk_nvmf_poll_group *g = nvmf_group_of_thread();
	json_t *o, *tarr;

	if (!g)
		return;
	o = json_object();
	json_object_set_new(o, "name", json_string(dbk_thread_get_name(g->thread)));
	json_object_set_new(o, "admin_qpairs", json_integer((json_int_t)g->admin_qpairs));
	json_object_set_new(o, "io_qpairs", json_integer((json_int_t)g->io_qpairs));
	json_object_set_new(o, "current_admin_qpairs", json_integer((json_int_t)g->current_admin_qpairs));
	json_object_set_new(o, "current_io_qpairs", json_integer((json_int_t)g->current_io_qpairs));
	json_object_set_new(o, "pending_bdev_io", json_integer((json_int_t)g->pending_bdev_io));
	tarr = json_array();
	for (int i = 0; i < g_nvmf_tgt.num_transports; i++) {
		struct dbk_nvmf_transport *t = g_nvmf_tgt.transports[i];
		json_t *to;

		if (!t || !g->tgroups[i])
			continue;
		to = json_pack("{s:s}", "trtype", t->ops->name);
		if (t->ops->poll_group_dump_stats)
			t->ops->poll_group_dump_stats(g->tgroups[i], to);
		json_array_append_new(tarr, to);
	}
	json_object_set_new(o, "transports", tarr);
	json_array_append_new(c->arr, o);
}

static void stats_done(void *arg)
{
	struct group_json_ctx *c = arg;
	json_t *r = json_pack("{s:I, s:o}", "tick_rate", (json_int_t)1000000000, "poll_groups", c->arr);

	c->cb(c->ctx, r);
	free(c);
}

void dbk_nvmf_stats_json(dbk_nvmf_json_cb cb, void *ctx)
{
	struct group_json_ctx *c = calloc(1, sizeof(*c));

	if (!c) {
		cb(ctx, NULL);
		return;
	}
	c->arr = json_array();
	c->cb = cb;
	c->ctx = ctx;
	if (dbk_for_each_thread(stats_group_msg, c, stats_done) != 0) {
		json_decref(c->arr);
		free(c);
		cb(ctx, NULL);
	}
}
