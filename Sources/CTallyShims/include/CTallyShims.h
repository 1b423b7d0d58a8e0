#ifndef CTALLYSHIMS_H
#define CTALLYSHIMS_H

#include <stddef.h>
#include <stdint.h>

/// CRC32C (Castagnoli, reflected polynomial 0x82F63B78) of `length` bytes, continuing from `crc`
/// (pass 0 to start). Uses the SSE4.2 `crc32` instruction when the CPU has it, a table otherwise.
uint32_t tally_crc32c(uint32_t crc, const void *data, size_t length);

/// The portable table-driven CRC32C, exposed so tests can check the hardware path against it.
uint32_t tally_crc32c_portable(uint32_t crc, const void *data, size_t length);

/// Server allocator settings (glibc `mallopt`): a fixed mmap threshold of `mmap_threshold` bytes and at most
/// `arenas` arenas; a value of 0 leaves that setting alone. Does nothing where glibc is absent.
void tally_tune_malloc(int mmap_threshold, int arenas);

/// `syncfs(fd)`: everything written to the file system holding `fd` made durable (`sync()` where there is no
/// `syncfs`). 0, or -1 with errno set.
int tally_syncfs(int fd);

#endif
