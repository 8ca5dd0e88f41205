/*
 * Unit tests of nvmf/ana.c: the ANA log page (LID 0Ch) as built for a subsystem and a listener's port,
 * with and without RGO, read at offsets and lengths as Get Log Page asks; the state changes and their
 * change counters; the path status I/O gets in each state. The subsystem, its namespaces and its listener
 * are built in memory (the builder reads only those); no reactor runs.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nvmf/ana.h"

#define MAXNS 8

struct fixture {
	struct dbk_nvmf_subsystem s;
	struct nvmf_ns *ns[MAXNS];
	struct nvmf_ns nss[MAXNS];
	struct nvmf_listener l;
	struct nvmf_subsys_listener sl;
};

static struct fixture *fx_new(bool ana)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->s.nqn, sizeof(f->s.nqn), "nqn.2016-06.io.spdk:unit");
	f->s.max_namespaces = MAXNS;
	f->s.ana_reporting = ana;
	f->s.ns = f->ns;
	snprintf(f->l.addr.trtype, sizeof(f->l.addr.trtype), "TCP");
	snprintf(f->l.addr.adrfam, sizeof(f->l.addr.adrfam), "IPv4");
	snprintf(f->l.addr.traddr, sizeof(f->l.addr.traddr), "127.0.0.1");
	snprintf(f->l.addr.trsvcid, sizeof(f->l.addr.trsvcid), "4420");
	f->sl.listener = &f->l;
	f->sl.ana = nvmf_ana_port_new(MAXNS, NVMF_ANA_OPTIMIZED);
	assert_non_null(f->sl.ana);
	f->s.listeners = &f->sl;
	return f;
}

static void fx_free(struct fixture *f)
{
	nvmf_ana_port_put(f->sl.ana);
	free(f);
}

static void add_ns(struct fixture *f, uint32_t nsid, uint32_t grp)
{
	struct nvmf_ns *ns = &f->nss[nsid - 1];

	ns->nsid = nsid;
	ns->anagrpid = grp;
	ns->subsys = &f->s;
	ns->attached = true;
	f->ns[nsid - 1] = ns;
}

static uint32_t get32(const uint8_t *b, size_t off)
{
	uint32_t v;

	memcpy(&v, b + off, 4);
	return v;
}

static uint64_t get64(const uint8_t *b, size_t off)
{
	uint64_t v;

	memcpy(&v, b + off, 8);
	return v;
}

static void set_state(struct fixture *f, const char *st, uint32_t grp, int want)
{
	char err[256] = "";

	assert_int_equal(dbk_nvmf_subsystem_set_ana_state(&f->s, &f->l.addr, st, grp, err, sizeof(err)), want);
}

/* Groups 1 (NSIDs 1, 2) and 3 (NSID 5); group 2 holds nothing and is left out. */
static void test_log_full(void **state)
{
	struct fixture *f = fx_new(true);
	uint8_t b[512];
	size_t n;

	(void)state;
	add_ns(f, 1, 1);
	add_ns(f, 2, 1);
	add_ns(f, 5, 3);
	set_state(f, "inaccessible", 3, 0);
	assert_int_equal(nvmf_ana_log_len(&f->s, false), 16 + 2 * 32 + 3 * 4);
	memset(b, 0xAA, sizeof(b));
	n = nvmf_ana_log_read(&f->s, f->sl.ana, false, 0, b, sizeof(b));
	assert_int_equal(n, 16 + 2 * 32 + 3 * 4);
	assert_int_equal(get64(b, 0), 1);		/* CHGCNT: one change so far */
	assert_int_equal(get32(b, 8) & 0xFFFF, 2);	/* NGRPS */
	/* group 1 */
	assert_int_equal(get32(b, 16), 1);
	assert_int_equal(get32(b, 20), 2);
	assert_int_equal(get64(b, 24), 0);
	assert_int_equal(b[32], NVMF_ANA_OPTIMIZED);
	assert_int_equal(get32(b, 48), 1);
	assert_int_equal(get32(b, 52), 2);
	/* group 3 */
	assert_int_equal(get32(b, 56), 3);
	assert_int_equal(get32(b, 60), 1);
	assert_int_equal(get64(b, 64), 1);
	assert_int_equal(b[72], NVMF_ANA_INACCESSIBLE);
	assert_int_equal(get32(b, 88), 5);
	for (size_t i = n; i < sizeof(b); i++)
		assert_int_equal(b[i], 0);		/* zero past the end */
	fx_free(f);
}

static void test_log_rgo(void **state)
{
	struct fixture *f = fx_new(true);
	uint8_t b[256];

	(void)state;
	add_ns(f, 1, 1);
	add_ns(f, 2, 1);
	add_ns(f, 5, 3);
	assert_int_equal(nvmf_ana_log_len(&f->s, true), 16 + 2 * 32);
	assert_int_equal(nvmf_ana_log_read(&f->s, f->sl.ana, true, 0, b, sizeof(b)), 16 + 2 * 32);
	assert_int_equal(get32(b, 8) & 0xFFFF, 2);
	assert_int_equal(get32(b, 16), 1);
	assert_int_equal(get32(b, 20), 0);		/* NNSIDS 0 with RGO */
	assert_int_equal(get32(b, 48), 3);		/* next descriptor right after: no NSID list */
	assert_int_equal(get32(b, 52), 0);
	fx_free(f);
}

/* Read piecewise at dword offsets and odd lengths: the pieces are the bytes of the whole. */
static void test_log_offsets(void **state)
{
	struct fixture *f = fx_new(true);
	uint8_t whole[256], piece[64];
	size_t len;

	(void)state;
	for (uint32_t i = 1; i <= 6; i++)
		add_ns(f, i, 1 + (i % 3));
	len = nvmf_ana_log_read(&f->s, f->sl.ana, false, 0, whole, sizeof(whole));
	assert_int_equal(len, 16 + 3 * 32 + 6 * 4);
	for (size_t step = 4; step <= 44; step += 8) {
		for (size_t off = 0; off < len; off += step) {
			size_t want = len - off < step ? len - off : step;

			memset(piece, 0x55, sizeof(piece));
			assert_int_equal(nvmf_ana_log_read(&f->s, f->sl.ana, false, off, piece, step), want);
			assert_memory_equal(piece, whole + off, want);
			for (size_t i = want; i < step; i++)
				assert_int_equal(piece[i], 0);
		}
	}
	memset(piece, 0x55, sizeof(piece));
	assert_int_equal(nvmf_ana_log_read(&f->s, f->sl.ana, false, len, piece, 16), 0);
	assert_int_equal(nvmf_ana_log_read(&f->s, f->sl.ana, false, UINT64_MAX - 3, piece, 16), 0);
	for (size_t i = 0; i < 16; i++)
		assert_int_equal(piece[i], 0);
	fx_free(f);
}

/* Inactive namespaces are not listed; with none, the log is the header alone. */
static void test_log_inactive(void **state)
{
	struct fixture *f = fx_new(true);
	uint8_t b[64];

	(void)state;
	assert_int_equal(nvmf_ana_log_read(&f->s, f->sl.ana, false, 0, b, sizeof(b)), 16);
	assert_int_equal(get32(b, 8) & 0xFFFF, 0);
	add_ns(f, 1, 1);
	add_ns(f, 2, 2);
	f->nss[1].removing = true;
	f->nss[0].attached = false;
	assert_int_equal(nvmf_ana_log_len(&f->s, false), 16);
	f->nss[0].attached = true;
	assert_int_equal(nvmf_ana_log_read(&f->s, NULL, false, 0, b, sizeof(b)), 16 + 32 + 4);
	assert_int_equal(b[32], NVMF_ANA_OPTIMIZED);	/* no port: optimized */
	fx_free(f);
}

static void test_state_changes(void **state)
{
	struct fixture *f = fx_new(true);
	struct nvmf_ana_port *p = f->sl.ana;
	struct dbk_nvmf_listen_addr other = f->l.addr;
	char err[256];

	(void)state;
	add_ns(f, 2, 2);
	set_state(f, "non_optimized", 0, 0);
	assert_int_equal(p->chgcnt, 1);
	for (uint32_t g = 1; g <= MAXNS; g++) {
		assert_int_equal(p->state[g - 1], NVMF_ANA_NON_OPTIMIZED);
		assert_int_equal(p->grp_chgcnt[g - 1], 1);
	}
	set_state(f, "non_optimized", 2, 0);		/* no change: the counters stay */
	assert_int_equal(p->chgcnt, 1);
	set_state(f, "change", 2, 0);
	assert_int_equal(p->chgcnt, 2);
	assert_int_equal(p->grp_chgcnt[1], 2);
	assert_int_equal(p->grp_chgcnt[0], 1);
	assert_int_equal(nvmf_ana_path_sc(p, &f->nss[1]), NVME_SC_ASYMMETRIC_ACCESS_TRANSITION);
	set_state(f, "inaccessible", 2, 0);
	assert_int_equal(nvmf_ana_path_sc(p, &f->nss[1]), NVME_SC_ASYMMETRIC_ACCESS_INACCESSIBLE);
	set_state(f, "persistent_loss", 2, 0);
	assert_int_equal(nvmf_ana_path_sc(p, &f->nss[1]), NVME_SC_ASYMMETRIC_ACCESS_PERSISTENT_LOSS);
	set_state(f, "optimized", 2, 0);
	assert_int_equal(nvmf_ana_path_sc(p, &f->nss[1]), 0);
	set_state(f, "non_optimized", 2, 0);
	assert_int_equal(nvmf_ana_path_sc(p, &f->nss[1]), 0);
	assert_int_equal(nvmf_ana_path_sc(NULL, &f->nss[1]), 0);
	/* refused: unknown state, group past ANAGRPMAX, unknown listener */
	set_state(f, "sideways", 0, -EINVAL);
	set_state(f, NULL, 0, -EINVAL);
	set_state(f, "optimized", MAXNS + 1, -EINVAL);
	snprintf(other.trsvcid, sizeof(other.trsvcid), "4421");
	assert_int_equal(dbk_nvmf_subsystem_set_ana_state(&f->s, &other, "optimized", 0, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "no listener"));
	fx_free(f);
	/* and on a subsystem without ANA reporting */
	f = fx_new(false);
	assert_int_equal(dbk_nvmf_subsystem_set_ana_state(&f->s, &f->l.addr, "optimized", 0, err, sizeof(err)), 0);
	assert_int_equal(dbk_nvmf_subsystem_set_ana_state(&f->s, &f->l.addr, "inaccessible", 0, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "ANA reporting is disabled"));
	assert_int_equal(dbk_nvmf_subsystem_set_ana_state(&f->s, &other, "optimized", 0, err, sizeof(err)), -ENOENT);
	for (uint32_t g = 1; g <= MAXNS; g++)
		assert_int_equal(f->sl.ana->state[g - 1], NVMF_ANA_OPTIMIZED);
	fx_free(f);
}

static void test_identify(void **state)
{
	struct fixture *f = fx_new(true);
	uint8_t b[4096] = {0};
	uint8_t n[4096] = {0};

	(void)state;
	b[76] = 0x2;
	memcpy(b + 92, &(uint32_t){ 1u << 8 }, 4);
	nvmf_ana_identify_ctrlr(&f->s, b);
	assert_int_equal(b[76], 0x0A);
	assert_int_equal(get32(b, 92), (1u << 8) | (1u << 11));
	assert_int_equal(b[343], NVMF_ANA_ANATT_SEC);
	assert_int_equal(b[344] & 0x1F, 0x1F);
	assert_int_equal(get32(b, 348), MAXNS);
	assert_int_equal(get32(b, 352), MAXNS);
	assert_int_equal(get32(b, 540), MAXNS);
	add_ns(f, 3, 7);
	nvmf_ana_identify_ns(&f->nss[2], n);
	assert_int_equal(get32(n, 92), 7);
	fx_free(f);
	f = fx_new(false);
	memset(b, 0, sizeof(b));
	nvmf_ana_identify_ctrlr(&f->s, b);
	for (size_t i = 0; i < sizeof(b); i++)
		assert_int_equal(b[i], 0);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_full),
		cmocka_unit_test(test_log_rgo),
		cmocka_unit_test(test_log_offsets),
		cmocka_unit_test(test_log_inactive),
		cmocka_unit_test(test_state_changes),
		cmocka_unit_test(test_identify),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
