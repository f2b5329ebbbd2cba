#ifndef EMOPIPE_GUARDED_READ_H
#define EMOPIPE_GUARDED_READ_H
#include <stddef.h>
#include <stdint.h>

/// Reads of a memory-mapped file that another process may cut short: touching a page past the file's
/// new end raises SIGBUS, which would kill the process. These catch that one fault on the calling
/// thread (sigsetjmp/siglongjmp around the read) and report it; a SIGBUS anywhere else keeps its
/// previous disposition (by default the process dies, as before).

/// Copies `length` bytes; 0 when done, -1 when the mapping could not be read (nothing is promised
/// about `destination` then).
int emo_guarded_copy(void *destination, const void *source, size_t length);

/// crc32c_extend over mapped bytes; 0 and `*result` set when done, -1 when they could not be read.
int emo_guarded_crc32c(uint32_t crc, const void *data, size_t length, uint32_t *result);

#endif
