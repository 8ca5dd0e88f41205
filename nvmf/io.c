/*
 * I/O commands on I/O qpairs: Read, Write, Compare, Flush, Write Zeroes and
 * Dataset Management, executed on the poll group's bdev channel of the
 * namespace. No allocation and no lock on this path: the request carries all
 * state (core_* fields, bdev_wait for -ENOMEM retries).
 */
#include <errno.h>
#include <string.h>

#include "nvmf/ana.h"
#include "nvmf/nvmf_internal.h"
#include "util/log.h"

#define STATUS_INT(sct, sc) (((sct) << 8) | (sc))

/* req->core_state for Read/Write/Compare/Write Zeroes/Flush */
#define IO_PLAIN 0
#define IO_FUA_PENDING 1	/* write with FUA on a volatile cache: flush the range after it */
#define IO_FUA_FLUSHING 2
#define NVME_RW_FUA (1u << 30)

static inline void finish(struct dbk_nvmf_request *req, int status)
{
	nvmf_req_status(req, (status >> 8) & 0x7, status & 0xFF);
	dbk_nvmf_request_complete(req);
}

static inline void entry_put(struct nvmf_pg_ns *e)
{
	e->outstanding--;
	if (e->outstanding == 0 && e->old_ch) {
		dbk_put_io_channel(e->old_ch);
		e->old_ch = NULL;
	}
}

static int bdev_status(struct dbk_bdev_io *io, bool success)
{
	int sct = 0, sc = 0;

	if (success)
		return 0;
	dbk_bdev_io_get_nvme_status(io, &sct, &sc);
	if (sct == 0 && sc == 0)
		return STATUS_INT(NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR);
	return STATUS_INT(sct, sc);
}

static int submit_rw(struct dbk_nvmf_request *req);

/* Zero-copy Read done: on success keep the I/O (and the channel) until the transport releases the memory. */
static void lend_done(struct dbk_bdev_io *io, bool success, void *arg)
{
	struct dbk_nvmf_request *req = arg;
	int status = bdev_status(io, success);

	if (status != 0) {
		dbk_bdev_free_io(io);
		entry_put(req->core_ptr);
		finish(req, status);
		return;
	}
	req->core_lent_io = io;
	req->iov[0] = req->core_lend_iov;
	req->iovcnt = 1;
	req->lent = true;
	finish(req, 0);
}

#define IO_WLEND_PENDING 0xFFFFu	/* core_state while a Write lend is submitted */

static void wlend_done(struct dbk_bdev_io *io, bool success, void *arg)
{
	struct dbk_nvmf_request *req = arg;

	if (!success || req->core_state != IO_WLEND_PENDING) {
		/* Failed, or (against the bdev contract) completed after dbk_nvmf_request_lend_write returned. */
		if (success)
			DBK_ERRLOG("nvmf: a bdev completed a write lend late; dropped");
		dbk_bdev_free_io(io);
		entry_put(req->core_ptr);
		return;
	}
	req->core_lent_io = io;
	req->iov[0] = req->core_lend_iov;
	req->iovcnt = 1;
	req->lent = true;
}

bool dbk_nvmf_request_lend_write(struct dbk_nvmf_request *req)
{
	struct dbk_nvmf_qpair *q = req->qpair;
	struct nvme_cmd *cmd = req->cmd;
	struct nvmf_pg_ns *e;
	struct nvmf_ns *ns;
	uint64_t num_blocks, slba, nlb;
	int rc;

	if (!req->lend_ok || req->lent || req->xfer != DBK_NVMF_XFER_HOST_TO_CTRLR ||
	    q->core_state != NVMF_QPAIR_ACTIVE || q->ctrlr == NULL || q->qid == 0 || cmd->opc != NVME_OPC_WRITE ||
	    cmd->fuse || cmd->nsid == 0 || cmd->nsid > q->ctrlr->subsys->max_namespaces)
		return false;
	e = &q->ctrlr->subsys->pg_ns[q->group->idx][cmd->nsid - 1];
	ns = e->ns;
	if (ns == NULL || !dbk_bdev_can_lend_write(ns->bdev) || nvmf_ana_path_sc(q->ctrlr->ana, ns) != 0)
		return false;
	/* Anything exec would refuse is left to exec, which reports it. */
	num_blocks = dbk_bdev_get_num_blocks(ns->bdev);
	slba = (uint64_t)cmd->cdw10 | ((uint64_t)cmd->cdw11 << 32);
	nlb = (uint64_t)(cmd->cdw12 & 0xFFFF) + 1;
	if (slba >= num_blocks || nlb > num_blocks - slba || req->length != nlb * ns->block_size ||
	    req->length > q->transport->opts.max_io_size)
		return false;
	req->core_ptr = e;
	req->core_state = IO_WLEND_PENDING;
	req->core_lend_iov.iov_base = NULL;
	req->core_lend_iov.iov_len = req->length;
	e->outstanding++;
	rc = dbk_bdev_write_lend_blocks(ns->desc, e->ch, &req->core_lend_iov, slba, nlb, wlend_done, req);
	req->core_state = IO_PLAIN;
	if (rc != 0) {
		entry_put(e);
		return false;
	}
	if (req->lent)
		req->core_lent_bdev = ns->bdev;
	return req->lent;
}

void dbk_nvmf_request_release(struct dbk_nvmf_request *req)
{
	struct dbk_bdev_io *io = req->core_lent_io;

	if (!req->lent || io == NULL)
		return;
	req->lent = false;
	req->core_lent_io = NULL;
	req->iovcnt = 0;
	dbk_bdev_free_io(io);
	entry_put(req->core_ptr);
}

static void io_done(struct dbk_bdev_io *io, bool success, void *arg)
{
	struct dbk_nvmf_request *req = arg;
	struct nvmf_pg_ns *e = req->core_ptr;
	int status = bdev_status(io, success);

	dbk_bdev_free_io(io);
	entry_put(e);
	if (status == 0 && req->core_state == IO_FUA_PENDING) {
		/* Force Unit Access: the written range must be durable before we answer */
		req->core_state = IO_FUA_FLUSHING;
		if (e->ns) {
			submit_rw(req);
			return;
		}
		status = STATUS_INT(NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR);
	}
	finish(req, status);
}

static void dsm_continue(struct dbk_nvmf_request *req);

static void retry_cb(void *arg)
{
	struct dbk_nvmf_request *req = arg;
	struct nvmf_pg_ns *e = req->core_ptr;

	req->qpair->group->pending_bdev_io--;
	if (!e->ns) {
		finish(req, STATUS_INT(NVME_SCT_GENERIC, NVME_SC_INVALID_NAMESPACE_OR_FORMAT));
		return;
	}
	if (req->cmd->opc == NVME_OPC_DATASET_MANAGEMENT) {
		dsm_continue(req);
		return;
	}
	submit_rw(req);
}

static bool queue_wait(struct dbk_nvmf_request *req)
{
	struct nvmf_pg_ns *e = req->core_ptr;

	req->bdev_wait.bdev = e->ns->bdev;
	req->bdev_wait.cb_fn = retry_cb;
	req->bdev_wait.cb_arg = req;
	if (dbk_bdev_queue_io_wait(e->ns->bdev, e->ch, &req->bdev_wait) != 0)
		return false;
	req->qpair->group->pending_bdev_io++;
	return true;
}

/* Submit (or resubmit) a single-I/O command; the range was validated already. Returns 0 always. */
static int submit_rw(struct dbk_nvmf_request *req)
{
	struct nvmf_pg_ns *e = req->core_ptr;
	struct nvmf_ns *ns = e->ns;
	struct nvme_cmd *cmd = req->cmd;
	uint64_t slba = (uint64_t)cmd->cdw10 | ((uint64_t)cmd->cdw11 << 32);
	uint64_t nlb = (uint64_t)(cmd->cdw12 & 0xFFFF) + 1;
	int rc;

	e->outstanding++;
	if (req->core_state == IO_FUA_FLUSHING) {
		rc = dbk_bdev_flush_blocks(ns->desc, e->ch, slba, nlb, io_done, req);
		goto submitted;
	}
	switch (cmd->opc) {
	case NVME_OPC_READ:
		rc = -ENOTSUP;
		if (req->lend_ok && req->iovcnt > 0 && dbk_bdev_can_lend_read(ns->bdev)) {
			req->core_lend_iov.iov_base = NULL;
			req->core_lend_iov.iov_len = req->length;
			rc = dbk_bdev_read_lend_blocks(ns->desc, e->ch, &req->core_lend_iov, slba, nlb, lend_done, req);
		}
		if (rc == -ENOTSUP)
			rc = dbk_bdev_readv_blocks(ns->desc, e->ch, req->iov, req->iovcnt, slba, nlb, io_done, req);
		break;
	case NVME_OPC_WRITE:
		if (req->lent) {
			/* Zero-copy write: the data is in the bdev already; only FUA is left to do. */
			struct dbk_bdev_io *io = req->core_lent_io;

			entry_put(e);	/* this submission's count; the lend's goes with io_done */
			if (req->core_lent_bdev != ns->bdev) {
				/* The namespace was replaced while the data was arriving: it went to the old bdev. */
				dbk_nvmf_request_release(req);
				finish(req, STATUS_INT(NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR));
				return 0;
			}
			req->lent = false;
			req->core_lent_io = NULL;
			io_done(io, true, req);
			return 0;
		}
		rc = dbk_bdev_writev_blocks(ns->desc, e->ch, req->iov, req->iovcnt, slba, nlb, io_done, req);
		break;
	case NVME_OPC_COMPARE:
		rc = dbk_bdev_comparev_blocks(ns->desc, e->ch, req->iov, req->iovcnt, slba, nlb, io_done, req);
		break;
	case NVME_OPC_WRITE_ZEROES:
		rc = dbk_bdev_write_zeroes_blocks(ns->desc, e->ch, slba, nlb, io_done, req);
		break;
	case NVME_OPC_FLUSH:
		rc = dbk_bdev_flush_blocks(ns->desc, e->ch, 0, dbk_bdev_get_num_blocks(ns->bdev), io_done, req);
		break;
	default:
		rc = -ENOTSUP;
		break;
	}
submitted:
	if (rc == 0)
		return 0;
	entry_put(e);
	if (rc == -ENOMEM) {
		if (queue_wait(req))
			return 0;
		finish(req, STATUS_INT(NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR));
	} else if (rc == -ENOTSUP) {
		finish(req, STATUS_INT(NVME_SCT_GENERIC, NVME_SC_INVALID_OPCODE));
	} else if (rc == -EINVAL) {
		finish(req, STATUS_INT(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD));
	} else {
		finish(req, STATUS_INT(NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR));
	}
	return 0;
}

/* ---------------------------------------------------------------- DSM */

static void dsm_finish_if_done(struct dbk_nvmf_request *req, uint32_t nr)
{
	if (req->core_count == 0 && req->core_state >= nr)
		finish(req, req->core_status);
}

static inline uint32_t dsm_nr(const struct dbk_nvmf_request *req)
{
	return (req->cmd->cdw10 & 0xFF) + 1;
}

static void dsm_child_done(struct dbk_bdev_io *io, bool success, void *arg)
{
	struct dbk_nvmf_request *req = arg;
	int status = bdev_status(io, success);

	dbk_bdev_free_io(io);
	entry_put(req->core_ptr);
	if (status && !req->core_status)
		req->core_status = status;
	req->core_count--;
	dsm_finish_if_done(req, dsm_nr(req));
}

static void dsm_continue(struct dbk_nvmf_request *req)
{
	struct nvmf_pg_ns *e = req->core_ptr;
	struct nvmf_ns *ns = e->ns;
	uint32_t nr = dsm_nr(req);

	while (req->core_state < nr) {
		struct nvme_dsm_range r;
		int rc;

		nvmf_req_copy_from(req, (size_t)req->core_state * sizeof(r), &r, sizeof(r));
		if (r.length == 0) {
			req->core_state++;
			continue;
		}
		e->outstanding++;
		req->core_count++;
		rc = dbk_bdev_unmap_blocks(ns->desc, e->ch, r.starting_lba, r.length, dsm_child_done, req);
		if (rc == 0) {
			req->core_state++;
			continue;
		}
		entry_put(e);
		req->core_count--;
		if (rc == -ENOMEM) {
			if (queue_wait(req))
				return;
			rc = -EIO;
		}
		if (rc == -ENOTSUP) {
			/* deallocation is advisory: a bdev without unmap keeps the data */
			req->core_state++;
			continue;
		}
		if (!req->core_status)
			req->core_status = STATUS_INT(NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR);
		req->core_state = nr;
	}
	dsm_finish_if_done(req, nr);
}

static void exec_dsm(struct dbk_nvmf_request *req, uint64_t num_blocks)
{
	uint32_t nr = dsm_nr(req);

	if (req->xfer != DBK_NVMF_XFER_HOST_TO_CTRLR || req->length < nr * sizeof(struct nvme_dsm_range)) {
		finish(req, STATUS_INT(NVME_SCT_GENERIC, NVME_SC_DATA_SGL_LENGTH_INVALID));
		return;
	}
	if (!(req->cmd->cdw11 & NVME_DSM_ATTR_DEALLOCATE)) {
		finish(req, 0);
		return;
	}
	for (uint32_t i = 0; i < nr; i++) {
		struct nvme_dsm_range r;

		nvmf_req_copy_from(req, (size_t)i * sizeof(r), &r, sizeof(r));
		if (r.starting_lba > num_blocks || r.length > num_blocks - r.starting_lba) {
			finish(req, STATUS_INT(NVME_SCT_GENERIC, NVME_SC_LBA_OUT_OF_RANGE));
			return;
		}
	}
	req->core_state = 0;
	req->core_count = 0;
	req->core_status = 0;
	dsm_continue(req);
}

/* ---------------------------------------------------------------- exec */

void nvmf_io_exec(struct dbk_nvmf_request *req)
{
	struct dbk_nvmf_qpair *q = req->qpair;
	struct nvme_cmd *cmd = req->cmd;
	struct dbk_nvmf_subsystem *s = q->ctrlr->subsys;
	struct nvmf_pg_ns *e;
	uint64_t num_blocks, slba, nlb;
	uint32_t bs;

	switch (cmd->opc) {
	case NVME_OPC_READ:
	case NVME_OPC_WRITE:
	case NVME_OPC_COMPARE:
	case NVME_OPC_WRITE_ZEROES:
	case NVME_OPC_FLUSH:
	case NVME_OPC_DATASET_MANAGEMENT:
		break;
	default:
		finish(req, STATUS_INT(NVME_SCT_GENERIC, NVME_SC_INVALID_OPCODE));
		return;
	}
	if (cmd->fuse) {
		finish(req, STATUS_INT(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD));
		return;
	}
	if (cmd->nsid == 0 || cmd->nsid > s->max_namespaces ||
	    (e = &s->pg_ns[q->group->idx][cmd->nsid - 1])->ns == NULL) {
		finish(req, STATUS_INT(NVME_SCT_GENERIC, NVME_SC_INVALID_NAMESPACE_OR_FORMAT));
		return;
	}
	/* a path that is not accessible answers every I/O command with its ANA status, never with data */
	if (q->ctrlr->ana) {
		int sc = nvmf_ana_path_sc(q->ctrlr->ana, e->ns);

		if (sc) {
			/* DNR clear: a multipath host retries it on another path (Linux fails it over only then) */
			nvme_cpl_set_status(req->rsp, NVME_SCT_PATH, sc, 0);
			dbk_nvmf_request_complete(req);
			return;
		}
	}
	req->core_ptr = e;
	req->core_state = IO_PLAIN;
	if (cmd->opc == NVME_OPC_WRITE && dbk_bdev_has_write_cache(e->ns->bdev) &&
	    ((cmd->cdw12 & NVME_RW_FUA) || atomic_load_explicit(&q->ctrlr->write_through, memory_order_relaxed)))
		req->core_state = IO_FUA_PENDING;
	num_blocks = dbk_bdev_get_num_blocks(e->ns->bdev);
	bs = e->ns->block_size;

	switch (cmd->opc) {
	case NVME_OPC_FLUSH:
		if (!dbk_bdev_has_write_cache(e->ns->bdev)) {
			finish(req, 0);
			return;
		}
		submit_rw(req);
		return;
	case NVME_OPC_DATASET_MANAGEMENT:
		exec_dsm(req, num_blocks);
		return;
	default:
		break;
	}
	slba = (uint64_t)cmd->cdw10 | ((uint64_t)cmd->cdw11 << 32);
	nlb = (uint64_t)(cmd->cdw12 & 0xFFFF) + 1;
	if (slba >= num_blocks || nlb > num_blocks - slba) {
		finish(req, STATUS_INT(NVME_SCT_GENERIC, NVME_SC_LBA_OUT_OF_RANGE));
		return;
	}
	if (cmd->opc != NVME_OPC_WRITE_ZEROES) {
		enum dbk_nvmf_xfer want =
			cmd->opc == NVME_OPC_READ ? DBK_NVMF_XFER_CTRLR_TO_HOST : DBK_NVMF_XFER_HOST_TO_CTRLR;

		if (nlb * bs > q->transport->opts.max_io_size) {
			finish(req, STATUS_INT(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD));
			return;
		}
		if (req->xfer != want || req->length != nlb * bs) {
			finish(req, STATUS_INT(NVME_SCT_GENERIC, NVME_SC_DATA_SGL_LENGTH_INVALID));
			return;
		}
	}
	submit_rw(req);
}
