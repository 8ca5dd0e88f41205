/* Table-driven CRC32C (Castagnoli, reflected polynomial 0x82F63B78) for the static daosblk-perf build,
 * same interface as util/crc32c.c (which uses isa-l). */
#include <pthread.h>

#include "util/crc32c.h"

static uint32_t table[8][256];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_table(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

uint32_t dbk_crc32c_update(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&once, init_table);
	const uint8_t *p = buf;
	while (len >= 8) {
		uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
		uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
		crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^
		      table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^ table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
	return crc;
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
