/*
 * Discovery referrals (nvmf_discovery_add_referral / _remove_referral / _get_referrals): entries of the
 * discovery log page that point a host at another discovery service (or an NVM subsystem) elsewhere, so that
 * `nvme connect-all` against one gateway also finds the paths through the others. Main reactor only.
 */
#ifndef DBK_NVMF_REFERRAL_H
#define DBK_NVMF_REFERRAL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "nvmf/nvmf_internal.h"

struct nvmf_referral {
	struct dbk_nvmf_listen_addr addr;
	char subnqn[NVME_NQN_MAX_LEN + 1];
	bool secure_channel;
	struct nvmf_referral *next;
};

/* subnqn NULL or "": the discovery NQN. Adding one that exists succeeds and changes nothing (as SPDK). */
int dbk_nvmf_referral_add(const struct dbk_nvmf_listen_addr *addr, const char *subnqn, bool secure_channel,
			  char *err, size_t errlen);
int dbk_nvmf_referral_remove(const struct dbk_nvmf_listen_addr *addr, const char *subnqn, char *err,
			     size_t errlen);
json_t *dbk_nvmf_referrals_json(void);

/* Hooks of subsystem.c and tgt.c. */
size_t nvmf_referral_count(void);
void nvmf_referral_fill(struct nvmf_discovery_log_entry *e);	/* nvmf_referral_count() entries */
void nvmf_referrals_write_config(json_t *array);
void nvmf_referrals_free(void);

#endif
