/*
 * NVMe/TCP PDU wire format (NVMe/TCP Transport Specification 1.0), shared by
 * the target transport (nvmf/tcp) and the user-space initiator (tools/perf).
 */
#ifndef DBK_NVMF_TCP_NVME_TCP_H
#define DBK_NVMF_TCP_NVME_TCP_H

#include <stdint.h>

#include "nvmf/nvme_spec.h"

enum nvme_tcp_pdu_type {
	NVME_TCP_PDU_IC_REQ = 0x00,
	NVME_TCP_PDU_IC_RESP = 0x01,
	NVME_TCP_PDU_H2C_TERM_REQ = 0x02,
	NVME_TCP_PDU_C2H_TERM_REQ = 0x03,
	NVME_TCP_PDU_CAPSULE_CMD = 0x04,
	NVME_TCP_PDU_CAPSULE_RESP = 0x05,
	NVME_TCP_PDU_H2C_DATA = 0x06,
	NVME_TCP_PDU_C2H_DATA = 0x07,
	NVME_TCP_PDU_R2T = 0x09,
};

#define NVME_TCP_F_HDGST 0x01
#define NVME_TCP_F_DDGST 0x02
#define NVME_TCP_F_DATA_LAST 0x04
#define NVME_TCP_F_DATA_SUCCESS 0x08

#define NVME_TCP_DIGEST_LEN 4
#define NVME_TCP_PFV_1_0 0
#define NVME_TCP_ICREQ_DGST_HDGST 0x1
#define NVME_TCP_ICREQ_DGST_DDGST 0x2

/* Common header (8 bytes). */
struct nvme_tcp_common_hdr {
	uint8_t pdu_type;
	uint8_t flags;
	uint8_t hlen;
	uint8_t pdo;
	uint32_t plen;
} __attribute__((packed));
DBK_STATIC_ASSERT(sizeof(struct nvme_tcp_common_hdr) == 8, "ch");

/* ICReq / ICResp (hlen = plen = 128, no digests). */
struct nvme_tcp_ic_req {
	struct nvme_tcp_common_hdr common;
	uint16_t pfv;
	uint8_t hpda;		/* host PDU data alignment, 0-based dwords */
	uint8_t dgst;		/* bit 0 HDGST enable, bit 1 DDGST enable */
	uint32_t maxr2t;	/* 0-based */
	uint8_t rsvd[112];
} __attribute__((packed));
DBK_STATIC_ASSERT(sizeof(struct nvme_tcp_ic_req) == 128, "icreq");

struct nvme_tcp_ic_resp {
	struct nvme_tcp_common_hdr common;
	uint16_t pfv;
	uint8_t cpda;
	uint8_t dgst;
	uint32_t maxh2cdata;	/* bytes, multiple of 4, >= 4096 */
	uint8_t rsvd[112];
} __attribute__((packed));
DBK_STATIC_ASSERT(sizeof(struct nvme_tcp_ic_resp) == 128, "icresp");

/* H2CTermReq / C2HTermReq (hlen 24; data: the offending PDU header, up to 128 bytes for C2H). */
struct nvme_tcp_term_req_hdr {
	struct nvme_tcp_common_hdr common;
	uint16_t fes;		/* fatal error status */
	uint32_t fei;		/* fatal error information (e.g. offset of the bad field) */
	uint8_t rsvd[10];
} __attribute__((packed));
DBK_STATIC_ASSERT(sizeof(struct nvme_tcp_term_req_hdr) == 24, "termreq");
#define NVME_TCP_TERM_REQ_MAX_DATA 128

enum nvme_tcp_term_req_fes {
	NVME_TCP_FES_INVALID_HEADER_FIELD = 0x01,
	NVME_TCP_FES_PDU_SEQUENCE_ERROR = 0x02,
	NVME_TCP_FES_HDGST_ERROR = 0x03,
	NVME_TCP_FES_DATA_TRANSFER_OUT_OF_RANGE = 0x04,
	NVME_TCP_FES_DATA_TRANSFER_LIMIT_EXCEEDED = 0x05,
	NVME_TCP_FES_R2T_LIMIT_EXCEEDED = 0x05,
	NVME_TCP_FES_INVALID_DATA_UNSUPPORTED_PARAMETER = 0x06,
};

/* CapsuleCmd: header 72 bytes (hlen 72), then optional HDGST, padding to PDO, in-capsule data, optional DDGST. */
struct nvme_tcp_cmd {
	struct nvme_tcp_common_hdr common;
	struct nvme_cmd ccsqe;
} __attribute__((packed));
DBK_STATIC_ASSERT(sizeof(struct nvme_tcp_cmd) == 72, "capsule cmd");

/* CapsuleResp: 24 bytes (hlen 24). */
struct nvme_tcp_rsp {
	struct nvme_tcp_common_hdr common;
	struct nvme_cpl rccqe;
} __attribute__((packed));
DBK_STATIC_ASSERT(sizeof(struct nvme_tcp_rsp) == 24, "capsule resp");

/* H2CData / C2HData: 24 bytes (hlen 24). */
struct nvme_tcp_data_hdr {
	struct nvme_tcp_common_hdr common;
	uint16_t cccid;		/* command capsule CID */
	uint16_t ttag;		/* H2C: transfer tag from the R2T; C2H: reserved */
	uint32_t datao;		/* offset into the command's data */
	uint32_t datal;		/* length of this PDU's data */
	uint8_t rsvd[4];
} __attribute__((packed));
DBK_STATIC_ASSERT(sizeof(struct nvme_tcp_data_hdr) == 24, "data hdr");

/* R2T: 24 bytes (hlen 24). */
struct nvme_tcp_r2t_hdr {
	struct nvme_tcp_common_hdr common;
	uint16_t cccid;
	uint16_t ttag;
	uint32_t r2to;		/* offset */
	uint32_t r2tl;		/* length */
	uint8_t rsvd[4];
} __attribute__((packed));
DBK_STATIC_ASSERT(sizeof(struct nvme_tcp_r2t_hdr) == 24, "r2t");

/* Largest PDU header including a header digest. */
#define NVME_TCP_MAX_HDR_LEN (128)

#endif
