/* Adler-32 (RFC 1950) of the grains of streamOptimized disks: the same
 * value as zlib's adler32(), several times faster where the CPU has AVX2
 * (zlib 1.2.13 has no vector code, and checking a 64 KiB grain cost as
 * much as inflating it). */
#ifndef VMDKFS_ADLER_H
#define VMDKFS_ADLER_H

#include <stddef.h>
#include <stdint.h>

/* Continue ADLER (1 for a new stream) over N bytes at P. */
uint32_t vmdk_adler32(uint32_t adler, const uint8_t *p, size_t n);

/* The same over N bytes at SRC, copying them to DST (not overlapping) in
 * the same pass. */
uint32_t vmdk_adler32_copy(uint32_t adler, uint8_t *dst, const uint8_t *src,
			   size_t n);

#endif
