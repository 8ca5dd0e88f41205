/* Discovery referrals: see nvmf/referral.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "nvmf/referral.h"
#include "util/log.h"

static const char *norm_nqn(const char *subnqn)
{
	return subnqn && subnqn[0] && strcmp(subnqn, "discovery") != 0 ? subnqn : NVME_DISC_SUBSYS_NQN;
}

static struct nvmf_referral **find(const struct dbk_nvmf_listen_addr *addr, const char *subnqn)
{
	struct nvmf_referral **pp;

	for (pp = &g_nvmf_tgt.referrals; *pp; pp = &(*pp)->next)
		if (nvmf_listen_addr_equal(&(*pp)->addr, addr) && strcmp((*pp)->subnqn, subnqn) == 0)
			break;
	return pp;
}

int dbk_nvmf_referral_add(const struct dbk_nvmf_listen_addr *addr, const char *subnqn, bool secure_channel,
			  char *err, size_t errlen)
{
	struct nvmf_referral *r, **pp;

	subnqn = norm_nqn(subnqn);
	if (!dbk_nvmf_nqn_is_valid(subnqn, err, errlen))
		return -EINVAL;
	if (addr->trsvcid[0] == '\0') {
		snprintf(err, errlen, "a TCP referral needs trsvcid (the port)");
		return -EINVAL;
	}
	pp = find(addr, subnqn);
	if (*pp)
		return 0;
	r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r->addr = *addr;
	snprintf(r->subnqn, sizeof(r->subnqn), "%s", subnqn);
	r->secure_channel = secure_channel;
	*pp = r;
	DBK_NOTICELOG("discovery referral to %s %s:%s (%s) added", addr->trtype, addr->traddr, addr->trsvcid, subnqn);
	nvmf_discovery_changed();
	return 0;
}

int dbk_nvmf_referral_remove(const struct dbk_nvmf_listen_addr *addr, const char *subnqn, char *err,
			     size_t errlen)
{
	struct nvmf_referral *r, **pp;

	subnqn = norm_nqn(subnqn);
	pp = find(addr, subnqn);
	if (!*pp) {
		snprintf(err, errlen, "no discovery referral to %s %s:%s (%s)", addr->trtype, addr->traddr,
			 addr->trsvcid, subnqn);
		return -ENOENT;
	}
	r = *pp;
	*pp = r->next;
	free(r);
	DBK_NOTICELOG("discovery referral to %s %s:%s (%s) removed", addr->trtype, addr->traddr, addr->trsvcid,
		      subnqn);
	nvmf_discovery_changed();
	return 0;
}

static json_t *addr_json(const struct dbk_nvmf_listen_addr *a)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "trtype", a->trtype, "adrfam", a->adrfam, "traddr", a->traddr,
			 "trsvcid", a->trsvcid);
}

static json_t *referral_json(const struct nvmf_referral *r)
{
	return json_pack("{s:o, s:b, s:s}", "address", addr_json(&r->addr), "secure_channel", r->secure_channel,
			 "subnqn", r->subnqn);
}

json_t *dbk_nvmf_referrals_json(void)
{
	json_t *arr = json_array();

	for (struct nvmf_referral *r = g_nvmf_tgt.referrals; r; r = r->next)
		json_array_append_new(arr, referral_json(r));
	return arr;
}

size_t nvmf_referral_count(void)
{
	size_t n = 0;

	for (struct nvmf_referral *r = g_nvmf_tgt.referrals; r; r = r->next)
		n++;
	return n;
}

static void pad_copy(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	memset(dst, ' ', len);
	memcpy(dst, src, n < len ? n : len);
}

void nvmf_referral_fill(struct nvmf_discovery_log_entry *e)
{
	for (struct nvmf_referral *r = g_nvmf_tgt.referrals; r; r = r->next, e++) {
		memset(e, 0, sizeof(*e));
		e->trtype = strcasecmp(r->addr.trtype, "TCP") == 0 ? NVMF_TRTYPE_TCP : 0;
		e->adrfam = strcasecmp(r->addr.adrfam, "IPv6") == 0 ? NVMF_ADRFAM_IPV6 : NVMF_ADRFAM_IPV4;
		e->subtype = strcmp(r->subnqn, NVME_DISC_SUBSYS_NQN) == 0 ? NVMF_SUBTYPE_DISCOVERY_REFERRAL
									    : NVMF_SUBTYPE_NVME;
		/* "not specified" as for our own entries (Debian 12's nvme-cli); 1: a secure channel is required */
		e->treq = r->secure_channel ? 0x1 : NVMF_TREQ_SECURE_CHANNEL_NOT_SPECIFIED;
		e->portid = 0;
		e->cntlid = 0xFFFF;
		e->asqsz = 32;
		pad_copy(e->trsvcid, sizeof(e->trsvcid), r->addr.trsvcid);
		pad_copy(e->traddr, sizeof(e->traddr), r->addr.traddr);
		snprintf(e->subnqn, sizeof(e->subnqn), "%s", r->subnqn);
	}
}

void nvmf_referrals_write_config(json_t *array)
{
	for (struct nvmf_referral *r = g_nvmf_tgt.referrals; r; r = r->next)
		json_array_append_new(array, json_pack("{s:s, s:o}", "method", "nvmf_discovery_add_referral", "params",
						       referral_json(r)));
}

void nvmf_referrals_free(void)
{
	struct nvmf_referral *r;

	while ((r = g_nvmf_tgt.referrals)) {
		g_nvmf_tgt.referrals = r->next;
		free(r);
	}
}
