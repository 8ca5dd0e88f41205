/*
 * NVMe wire definitions (NVMe Base 2.0 / NVMe over Fabrics) used by the
 * target (nvmf/) and by the user-space initiator (tools/perf). All
 * multi-byte fields are little-endian on the wire; daosblk only runs on
 * little-endian hosts (checked at compile time).
 */
#ifndef DBK_NVMF_NVME_SPEC_H
#define DBK_NVMF_NVME_SPEC_H

#include <stdint.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "daosblk assumes a little-endian host"
#endif

#define DBK_STATIC_ASSERT(c, m) _Static_assert(c, m)

/* ---------------------------------------------------------------- SGL */

#define NVME_SGL_TYPE_DATA_BLOCK 0x0
#define NVME_SGL_TYPE_TRANSPORT_DATA_BLOCK 0x5
#define NVME_SGL_SUBTYPE_ADDRESS 0x0
#define NVME_SGL_SUBTYPE_OFFSET 0x1
#define NVME_SGL_SUBTYPE_TRANSPORT 0xA

struct nvme_sgl_desc {
	uint64_t address;	/* offset into the capsule for in-capsule data */
	uint32_t length;
	uint8_t reserved[3];
	uint8_t subtype : 4;
	uint8_t type : 4;
} __attribute__((packed));
DBK_STATIC_ASSERT(sizeof(struct nvme_sgl_desc) == 16, "sgl");

/* ------------------------------------------------------- command / completion */

/* Submission queue entry (64 bytes). */
struct nvme_cmd {
	uint8_t opc;
	uint8_t fuse : 2;
	uint8_t rsvd1 : 4;
	uint8_t psdt : 2;	/* 2 = SGL (fabrics always) */
	uint16_t cid;
	uint32_t nsid;
	uint32_t cdw2;
	uint32_t cdw3;
	uint64_t mptr;
	struct nvme_sgl_desc sgl1;	/* dptr */
	uint32_t cdw10;
	uint32_t cdw11;
	uint32_t cdw12;
	uint32_t cdw13;
	uint32_t cdw14;
	uint32_t cdw15;
} __attribute__((packed));
DBK_STATIC_ASSERT(sizeof(struct nvme_cmd) == 64, "sqe");

/* Status field (without the phase bit): SC bits 0-7, SCT bits 8-10, CRD 11-12, M 13, DNR 14. */
#define NVME_STATUS(sct, sc) ((uint16_t)((((sct) & 0x7) << 8) | ((sc) & 0xff)))
#define NVME_STATUS_DNR (1u << 14)
#define NVME_STATUS_GET_SC(s) ((s) & 0xff)
#define NVME_STATUS_GET_SCT(s) (((s) >> 8) & 0x7)

/* Completion queue entry (16 bytes). */
struct nvme_cpl {
	uint32_t cdw0;
	uint32_t cdw1;
	uint16_t sqhd;
	uint16_t sqid;
	uint16_t cid;
	uint16_t status;	/* bit 0: phase tag (0 on fabrics); bits 1-15: status field << 1 */
} __attribute__((packed));
DBK_STATIC_ASSERT(sizeof(struct nvme_cpl) == 16, "cqe");

static inline void nvme_cpl_set_status(struct nvme_cpl *cpl, int sct, int sc, int dnr)
{
	cpl->status = (uint16_t)((NVME_STATUS(sct, sc) | (dnr ? NVME_STATUS_DNR : 0)) << 1);
}
static inline uint16_t nvme_cpl_status(const struct nvme_cpl *cpl) { return cpl->status >> 1; }

/* ------------------------------------------------------------ status codes */

enum nvme_sct {
	NVME_SCT_GENERIC = 0x0,
	NVME_SCT_COMMAND_SPECIFIC = 0x1,
	NVME_SCT_MEDIA_ERROR = 0x2,
	NVME_SCT_PATH = 0x3,
	NVME_SCT_VENDOR = 0x7,
};

enum nvme_generic_sc {
	NVME_SC_SUCCESS = 0x00,
	NVME_SC_INVALID_OPCODE = 0x01,
	NVME_SC_INVALID_FIELD = 0x02,
	NVME_SC_COMMAND_ID_CONFLICT = 0x03,
	NVME_SC_DATA_TRANSFER_ERROR = 0x04,
	NVME_SC_ABORTED_POWER_LOSS = 0x05,
	NVME_SC_INTERNAL_DEVICE_ERROR = 0x06,
	NVME_SC_ABORTED_BY_REQUEST = 0x07,
	NVME_SC_ABORTED_SQ_DELETION = 0x08,
	NVME_SC_INVALID_NAMESPACE_OR_FORMAT = 0x0b,
	NVME_SC_COMMAND_SEQUENCE_ERROR = 0x0c,
	NVME_SC_INVALID_SGL_SEG_DESCRIPTOR = 0x0d,
	NVME_SC_DATA_SGL_LENGTH_INVALID = 0x0f,
	NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID = 0x11,
	NVME_SC_INVALID_SGL_OFFSET = 0x16,
	NVME_SC_HOSTID_INCONSISTENT_FORMAT = 0x18,
	NVME_SC_KEEP_ALIVE_EXPIRED = 0x19,
	NVME_SC_KEEP_ALIVE_INVALID = 0x1a,
	NVME_SC_COMMAND_ABORTED_PREEMPT = 0x1b,
	NVME_SC_SANITIZE_FAILED = 0x1c,
	NVME_SC_COMMAND_INTERRUPTED = 0x21,
	NVME_SC_TRANSIENT_TRANSPORT_ERROR = 0x22,
	NVME_SC_LBA_OUT_OF_RANGE = 0x80,
	NVME_SC_CAPACITY_EXCEEDED = 0x81,
	NVME_SC_NAMESPACE_NOT_READY = 0x82,
};

/* SCT 3h (path related) */
enum nvme_path_sc {
	NVME_SC_ASYMMETRIC_ACCESS_PERSISTENT_LOSS = 0x01,
	NVME_SC_ASYMMETRIC_ACCESS_INACCESSIBLE = 0x02,
	NVME_SC_ASYMMETRIC_ACCESS_TRANSITION = 0x03,
};

enum nvme_command_specific_sc {
	NVME_SC_INVALID_QUEUE_IDENTIFIER = 0x01,
	NVME_SC_INVALID_QUEUE_SIZE = 0x02,
	NVME_SC_ABORT_COMMAND_LIMIT_EXCEEDED = 0x03,
	NVME_SC_ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED = 0x05,
	NVME_SC_INVALID_FIRMWARE_SLOT = 0x06,
	NVME_SC_INVALID_LOG_PAGE = 0x09,
	NVME_SC_FEATURE_ID_NOT_SAVEABLE = 0x0d,
	NVME_SC_FEATURE_NOT_CHANGEABLE = 0x0e,
	NVME_SC_FEATURE_NOT_NAMESPACE_SPECIFIC = 0x0f,
	NVME_SC_INVALID_CONTROLLER_ID = 0x1f,
	/* Fabrics (Connect) specific */
	NVME_SC_CONNECT_INCOMPATIBLE_FORMAT = 0x80,
	NVME_SC_CONNECT_CONTROLLER_BUSY = 0x81,
	NVME_SC_CONNECT_INVALID_PARAMETERS = 0x82,
	NVME_SC_CONNECT_RESTART_DISCOVERY = 0x83,
	NVME_SC_CONNECT_INVALID_HOST = 0x84,
	NVME_SC_CONNECT_INVALID_QUEUE_TYPE = 0x85,
	/* NVM command set */
	NVME_SC_CONFLICTING_ATTRIBUTES = 0x80,
	NVME_SC_INVALID_PROTECTION_INFO = 0x81,
	NVME_SC_ATTEMPTED_WRITE_TO_RO_RANGE = 0x82,
};

enum nvme_media_error_sc {
	NVME_SC_WRITE_FAULTS = 0x80,
	NVME_SC_UNRECOVERED_READ_ERROR = 0x81,
	NVME_SC_COMPARE_FAILURE = 0x85,
	NVME_SC_ACCESS_DENIED = 0x86,
	NVME_SC_DEALLOCATED_OR_UNWRITTEN_BLOCK = 0x87,
};

/* ---------------------------------------------------------------- opcodes */

enum nvme_admin_opcode {
	NVME_OPC_DELETE_IO_SQ = 0x00,
	NVME_OPC_CREATE_IO_SQ = 0x01,
	NVME_OPC_GET_LOG_PAGE = 0x02,
	NVME_OPC_DELETE_IO_CQ = 0x04,
	NVME_OPC_CREATE_IO_CQ = 0x05,
	NVME_OPC_IDENTIFY = 0x06,
	NVME_OPC_ABORT = 0x08,
	NVME_OPC_SET_FEATURES = 0x09,
	NVME_OPC_GET_FEATURES = 0x0a,
	NVME_OPC_ASYNC_EVENT_REQUEST = 0x0c,
	NVME_OPC_NS_MANAGEMENT = 0x0d,
	NVME_OPC_FIRMWARE_COMMIT = 0x10,
	NVME_OPC_FIRMWARE_IMAGE_DOWNLOAD = 0x11,
	NVME_OPC_NS_ATTACHMENT = 0x15,
	NVME_OPC_KEEP_ALIVE = 0x18,
	NVME_OPC_FABRIC = 0x7f,
};

enum nvme_nvm_opcode {
	NVME_OPC_FLUSH = 0x00,
	NVME_OPC_WRITE = 0x01,
	NVME_OPC_READ = 0x02,
	NVME_OPC_WRITE_UNCORRECTABLE = 0x04,
	NVME_OPC_COMPARE = 0x05,
	NVME_OPC_WRITE_ZEROES = 0x08,
	NVME_OPC_DATASET_MANAGEMENT = 0x09,
};

/* Fabrics command types (cmd byte 4, "fctype", when opc == 0x7f). */
enum nvmf_fabric_cmd_type {
	NVMF_FCTYPE_PROPERTY_SET = 0x00,
	NVMF_FCTYPE_CONNECT = 0x01,
	NVMF_FCTYPE_PROPERTY_GET = 0x04,
	NVMF_FCTYPE_AUTHENTICATION_SEND = 0x05,
	NVMF_FCTYPE_AUTHENTICATION_RECV = 0x06,
	NVMF_FCTYPE_DISCONNECT = 0x08,
};

/* Fabrics command capsule view of the SQE. */
struct nvmf_fabric_cmd {
	uint8_t opc;	/* 0x7f */
	uint8_t rsvd1;
	uint16_t cid;
	uint8_t fctype;
	uint8_t rsvd2[19];
	struct nvme_sgl_desc sgl1;
	uint8_t fabric_specific[24];
} __attribute__((packed));
DBK_STATIC_ASSERT(sizeof(struct nvmf_fabric_cmd) == 64, "fabric cmd");

struct nvmf_connect_cmd {
	uint8_t opc;
	uint8_t rsvd1;
	uint16_t cid;
	uint8_t fctype;
	uint8_t rsvd2[19];
	struct nvme_sgl_desc sgl1;
	uint16_t recfmt;	/* 0 */
	uint16_t qid;
	uint16_t sqsize;	/* 0-based */
	uint8_t cattr;		/* bit 2: SQ flow control disable */
	uint8_t rsvd3;
	uint32_t kato;		/* ms */
	uint8_t rsvd4[12];
} __attribute__((packed));
DBK_STATIC_ASSERT(sizeof(struct nvmf_connect_cmd) == 64, "connect cmd");

struct nvmf_connect_data {
	uint8_t hostid[16];
	uint16_t cntlid;	/* 0xFFFF: dynamic */
	uint8_t rsvd5[238];
	char subnqn[256];
	char hostnqn[256];
	uint8_t rsvd6[256];
} __attribute__((packed));
DBK_STATIC_ASSERT(sizeof(struct nvmf_connect_data) == 1024, "connect data");

/* Connect response DW0 for "invalid parameters": offending field. */
struct nvmf_connect_invalid_param {
	uint16_t ipo;	/* byte offset of the invalid parameter */
	uint8_t iattr;	/* bit 0: 0 = in the command SQE, 1 = in the connect data */
	uint8_t rsvd;
} __attribute__((packed));

struct nvmf_property_cmd {
	uint8_t opc;
	uint8_t rsvd1;
	uint16_t cid;
	uint8_t fctype;
	uint8_t rsvd2[19];
	struct nvme_sgl_desc sgl1;
	uint8_t attrib;	/* bits 2:0 size: 0 = 4 bytes, 1 = 8 bytes */
	uint8_t rsvd3[3];
	uint32_t ofst;
	uint64_t value;	/* Property Set */
	uint8_t rsvd4[8];
} __attribute__((packed));
DBK_STATIC_ASSERT(sizeof(struct nvmf_property_cmd) == 64, "property cmd");

/* Controller properties (register offsets). */
#define NVME_REG_CAP 0x00
#define NVME_REG_VS 0x08
#define NVME_REG_CC 0x14
#define NVME_REG_CSTS 0x1c

#define NVME_CC_EN (1u << 0)
#define NVME_CC_SHN_SHIFT 14
#define NVME_CC_SHN_MASK (3u << 14)
#define NVME_CC_IOSQES_SHIFT 16
#define NVME_CC_IOCQES_SHIFT 20
#define NVME_CSTS_RDY (1u << 0)
#define NVME_CSTS_CFS (1u << 1)
#define NVME_CSTS_SHST_SHIFT 2
#define NVME_CSTS_SHST_NORMAL 0u
#define NVME_CSTS_SHST_OCCURRING (1u << 2)
#define NVME_CSTS_SHST_COMPLETE (2u << 2)

/* ---------------------------------------------------------- admin details */

enum nvme_identify_cns {
	NVME_ID_CNS_NS = 0x00,
	NVME_ID_CNS_CTRLR = 0x01,
	NVME_ID_CNS_ACTIVE_NS_LIST = 0x02,
	NVME_ID_CNS_NS_DESC_LIST = 0x03,
	NVME_ID_CNS_CS_NS = 0x05,
	NVME_ID_CNS_CS_CTRLR = 0x06,
	NVME_ID_CNS_ACTIVE_NS_LIST_CS = 0x07,
	NVME_ID_CNS_CS_INDEPENDENT_NS = 0x08,
};

enum nvme_log_page {
	NVME_LOG_SUPPORTED_PAGES = 0x00,
	NVME_LOG_ERROR = 0x01,
	NVME_LOG_HEALTH = 0x02,
	NVME_LOG_FIRMWARE_SLOT = 0x03,
	NVME_LOG_CHANGED_NS_LIST = 0x04,
	NVME_LOG_COMMAND_EFFECTS = 0x05,
	NVME_LOG_ANA = 0x0c,
	NVME_LOG_FEATURE_IDS = 0x12,
	NVME_LOG_DISCOVERY = 0x70,
};

enum nvme_feature {
	NVME_FEAT_ARBITRATION = 0x01,
	NVME_FEAT_POWER_MANAGEMENT = 0x02,
	NVME_FEAT_TEMPERATURE_THRESHOLD = 0x04,
	NVME_FEAT_ERROR_RECOVERY = 0x05,
	NVME_FEAT_VOLATILE_WRITE_CACHE = 0x06,
	NVME_FEAT_NUMBER_OF_QUEUES = 0x07,
	NVME_FEAT_INTERRUPT_COALESCING = 0x08,
	NVME_FEAT_INTERRUPT_VECTOR_CONFIG = 0x09,
	NVME_FEAT_WRITE_ATOMICITY = 0x0a,
	NVME_FEAT_ASYNC_EVENT_CONFIG = 0x0b,
	NVME_FEAT_KEEP_ALIVE_TIMER = 0x0f,
	NVME_FEAT_HOST_IDENTIFIER = 0x81,
	NVME_FEAT_HOST_RESERVE_MASK = 0x82,
	NVME_FEAT_HOST_RESERVE_PERSIST = 0x83,
};

/* Async event completion DW0: type bits 2:0, info bits 15:8, log page bits 23:16. */
#define NVME_AER_TYPE_NOTICE 0x2
#define NVME_AER_INFO_NS_ATTR_CHANGED 0x00
#define NVME_AER_INFO_ANA_CHANGE 0x03
#define NVME_AER_INFO_DISCOVERY_LOG_CHANGE 0xf0
#define NVME_AER_CPL_DW0(type, info, lid) ((uint32_t)(type) | ((uint32_t)(info) << 8) | ((uint32_t)(lid) << 16))

/* Dataset management range (16 bytes), deallocate attribute = cdw11 bit 2. */
struct nvme_dsm_range {
	uint32_t attributes;
	uint32_t length;	/* LBAs */
	uint64_t starting_lba;
} __attribute__((packed));
DBK_STATIC_ASSERT(sizeof(struct nvme_dsm_range) == 16, "dsm range");
#define NVME_DSM_ATTR_DEALLOCATE (1u << 2)

/* --------------------------------------------------------------- discovery */

#define NVME_DISC_SUBSYS_NQN "nqn.2014-08.org.nvmexpress.discovery"
#define NVME_NQN_MAX_LEN 223	/* without the terminating NUL */

enum nvmf_trtype { NVMF_TRTYPE_RDMA = 1, NVMF_TRTYPE_FC = 2, NVMF_TRTYPE_TCP = 3 };
enum nvmf_adrfam { NVMF_ADRFAM_IPV4 = 1, NVMF_ADRFAM_IPV6 = 2 };
enum nvmf_subtype { NVMF_SUBTYPE_DISCOVERY_REFERRAL = 1, NVMF_SUBTYPE_NVME = 2, NVMF_SUBTYPE_DISCOVERY_CURRENT = 3 };
/* TREQ bits 1:0 secure channel: 0 not specified, 1 required, 2 not required; bit 2: SQ flow control disable supported. */
#define NVMF_TREQ_SECURE_CHANNEL_NOT_SPECIFIED 0x0
#define NVMF_TREQ_SECURE_CHANNEL_REQUIRED 0x1
/* TSAS for TCP: SECTYPE 0 none, 1 TLS 1.2, 2 TLS 1.3 */
#define NVMF_TCP_SECTYPE_TLS13 0x2
#define NVMF_TREQ_DISABLE_SQ_FLOW_CONTROL 0x4

struct nvmf_discovery_log_entry {
	uint8_t trtype;
	uint8_t adrfam;
	uint8_t subtype;
	uint8_t treq;
	uint16_t portid;
	uint16_t cntlid;
	uint16_t asqsz;
	uint16_t eflags;
	uint8_t rsvd12[20];
	char trsvcid[32];	/* space padded */
	uint8_t rsvd64[192];
	char subnqn[256];
	char traddr[256];	/* space padded */
	union {
		uint8_t raw[256];
		struct {
			uint8_t sectype;	/* 0: none */
		} tcp;
	} tsas;
} __attribute__((packed));
DBK_STATIC_ASSERT(sizeof(struct nvmf_discovery_log_entry) == 1024, "disc entry");

struct nvmf_discovery_log_header {
	uint64_t genctr;
	uint64_t numrec;
	uint16_t recfmt;
	uint8_t rsvd[1006];
} __attribute__((packed));
DBK_STATIC_ASSERT(sizeof(struct nvmf_discovery_log_header) == 1024, "disc header");

#endif
