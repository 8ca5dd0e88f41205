/* CRC32C (Castagnoli) as NVMe/TCP digests use it, computed by isa-l. */
#ifndef DBK_UTIL_CRC32C_H
#define DBK_UTIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Running CRC: start with DBK_CRC32C_INIT, feed buffers, finish with dbk_crc32c_final. */
#define DBK_CRC32C_INIT 0xFFFFFFFFu
uint32_t dbk_crc32c_update(uint32_t crc, const void *buf, size_t len);
static inline uint32_t dbk_crc32c_final(uint32_t crc) { return crc ^ 0xFFFFFFFFu; }
/* One-shot digest of a buffer / of the first len bytes of an iovec list. */
uint32_t dbk_crc32c(const void *buf, size_t len);
uint32_t dbk_crc32c_iov(const struct iovec *iov, int iovcnt, size_t len);

#endif
