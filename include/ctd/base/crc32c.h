/* crc32c: the CRC-32C (Castagnoli) checksum the journal's entries carry
 * (journal.c). Pure: on x86-64 with SSE4.2 the processor's crc32
 * instruction (eight bytes a step, a tenth of zlib's CRC-32 time for a
 * record), elsewhere a byte table built by the compiler. */
#ifndef CTD_CRC32C_H
#define CTD_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* The checksum of len bytes at buf continuing crc (0 to start): like
 * zlib's crc32(), parts may be fed one after another. */
uint32_t ctd_crc32c(uint32_t crc, const void *buf, size_t len);
/* The same by the table alone, whatever the processor (tests). */
uint32_t ctd_crc32c_table(uint32_t crc, const void *buf, size_t len);

#endif
