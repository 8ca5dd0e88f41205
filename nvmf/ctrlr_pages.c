/*
 * Data structures an I/O controller reports beyond the basic ones in ctrlr.c:
 * the Supported Log Pages (LID 00h), Commands Supported and Effects (LID 05h)
 * and Feature Identifiers Supported and Effects (LID 12h) log pages, and the
 * I/O Command Set Independent Identify Namespace structure (CNS 08h). SPDK's
 * target and Linux nvmet both answer these; see nvmf/COMPAT.md. Each builder
 * fills a zeroed buffer and returns the structure's size; the content follows
 * what ctrlr.c and io.c actually implement, so adding a command or a feature
 * there means adding it here.
 */
#include <string.h>

#include "nvmf/nvmf_internal.h"

static void put32(uint8_t *b, size_t off, uint32_t v)
{
	memcpy(b + off, &v, 4);
}

/* LID 00h: one dword per LID, bit 0 (LSUPP) set for each log page Get Log Page serves. */
size_t nvmf_log_supported_pages(uint8_t *b)
{
	static const uint8_t lids[] = {
		NVME_LOG_SUPPORTED_PAGES, NVME_LOG_ERROR, NVME_LOG_HEALTH, NVME_LOG_FIRMWARE_SLOT,
		NVME_LOG_CHANGED_NS_LIST, NVME_LOG_COMMAND_EFFECTS, NVME_LOG_FEATURE_IDS,
	};

	for (size_t i = 0; i < sizeof(lids); i++)
		put32(b, 4u * lids[i], 1u);
	return 1024;
}

#define CSE_CSUPP (1u << 0)	/* command supported */
#define CSE_LBCC (1u << 1)	/* may change logical block content */

/* LID 05h: 256 admin dwords, then 256 I/O dwords, then 2 KiB reserved. */
size_t nvmf_log_cmd_effects(uint8_t *b)
{
	static const uint8_t admin[] = {
		NVME_OPC_GET_LOG_PAGE, NVME_OPC_IDENTIFY, NVME_OPC_ABORT, NVME_OPC_SET_FEATURES,
		NVME_OPC_GET_FEATURES, NVME_OPC_ASYNC_EVENT_REQUEST, NVME_OPC_KEEP_ALIVE,
	};
	static const struct {
		uint8_t opc;
		uint32_t effects;
	} io[] = {
		{ NVME_OPC_FLUSH, CSE_CSUPP },
		{ NVME_OPC_WRITE, CSE_CSUPP | CSE_LBCC },
		{ NVME_OPC_READ, CSE_CSUPP },
		{ NVME_OPC_COMPARE, CSE_CSUPP },
		{ NVME_OPC_WRITE_ZEROES, CSE_CSUPP | CSE_LBCC },
		{ NVME_OPC_DATASET_MANAGEMENT, CSE_CSUPP | CSE_LBCC },	/* deallocate */
	};

	for (size_t i = 0; i < sizeof(admin); i++)
		put32(b, 4u * admin[i], CSE_CSUPP);
	for (size_t i = 0; i < sizeof(io) / sizeof(io[0]); i++)
		put32(b, 1024u + 4u * io[i].opc, io[i].effects);
	return 4096;
}

#define FIS_FSUPP (1u << 0)	/* feature supported */
#define FIS_CSCPE (1u << 21)	/* scope: controller (we keep every feature per controller) */

/* LID 12h: one dword per FID. Volatile Write Cache only where a namespace has one (as Get/Set Features). */
size_t nvmf_log_feature_ids(const struct dbk_nvmf_ctrlr *ctrlr, uint8_t *b)
{
	static const uint8_t fids[] = {
		NVME_FEAT_ARBITRATION, NVME_FEAT_POWER_MANAGEMENT, NVME_FEAT_TEMPERATURE_THRESHOLD,
		NVME_FEAT_ERROR_RECOVERY, NVME_FEAT_NUMBER_OF_QUEUES, NVME_FEAT_INTERRUPT_COALESCING,
		NVME_FEAT_WRITE_ATOMICITY, NVME_FEAT_ASYNC_EVENT_CONFIG, NVME_FEAT_KEEP_ALIVE_TIMER,
		NVME_FEAT_HOST_IDENTIFIER,
	};

	for (size_t i = 0; i < sizeof(fids); i++)
		put32(b, 4u * fids[i], FIS_FSUPP | FIS_CSCPE);
	if (ctrlr->vwc_present)
		put32(b, 4u * NVME_FEAT_VOLATILE_WRITE_CACHE, FIS_FSUPP | FIS_CSCPE);
	return 1024;
}

/* CNS 08h for an active namespace: NSFEAT, NMIC, NSTAT; the rest (reservations, ANA, sets) stays zero. */
void nvmf_identify_ns_cs_indep(const struct nvmf_ns *ns, uint8_t *b)
{
	if (!dbk_bdev_has_write_cache(ns->bdev))
		b[0] |= 1u << 5;	/* NSFEAT: no volatile write cache for this namespace */
	b[1] = 1;			/* NMIC: may be shared (as Identify Namespace says) */
	b[13] = 1;			/* NSTAT: namespace ready */
}
