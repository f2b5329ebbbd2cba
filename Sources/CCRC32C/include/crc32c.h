#ifndef EMOPIPE_CRC32C_H
#define EMOPIPE_CRC32C_H
#include <stddef.h>
#include <stdint.h>

/// CRC-32C (Castagnoli), as used by iSCSI, ext4 and most storage formats: initial value 0,
/// final XOR done inside, so crc32c_extend(0, data, n) is the checksum of data.
/// Uses the SSE4.2 crc32 instruction when the CPU has it (about 20 GB/s), else a table.
uint32_t crc32c_extend(uint32_t crc, const void *data, size_t length);

#endif
