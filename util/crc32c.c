#include "util/crc32c.h"

#include <isa-l/crc.h>

uint32_t dbk_crc32c_update(uint32_t crc, const void *buf, size_t len)
{
	/* isa-l's crc32_iscsi takes and returns the raw (non-inverted) register. */
	return crc32_iscsi((unsigned char *)buf, (int)len, crc);
}

uint32_t dbk_crc32c(const void *buf, size_t len)
{
	return dbk_crc32c_final(dbk_crc32c_update(DBK_CRC32C_INIT, buf, len));
}

uint32_t dbk_crc32c_iov(const struct iovec *iov, int iovcnt, size_t len)
{
	uint32_t crc = DBK_CRC32C_INIT;
	for (int i = 0; i < iovcnt && len > 0; i++) {
		size_t n = iov[i].iov_len < len ? iov[i].iov_len : len;
		crc = dbk_crc32c_update(crc, iov[i].iov_base, n);
		len -= n;
	}
	return dbk_crc32c_final(crc);
}
