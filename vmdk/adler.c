/* Adler-32, with an AVX2 path; see adler.h.
 *
 * For a block of 32 bytes x[0..31] entered with sums (a, b):
 *   a' = a + sum x[i]
 *   b' = b + 32 a + sum (32 - i) x[i]
 * Over K blocks, with S[j] the byte sum of block j:
 *   b  += 32 K a0 + 32 sum_k sum_{j<k} S[j] + sum_k W[k]
 * The vector loop keeps, per lane, the running byte sums (S), the sum of
 * those before each block (the double sum) and the weighted sums (W), and
 * folds them into (a, b) modulo 65521 every CHUNK blocks, before any
 * 32-bit lane can overflow. */
#include <string.h>
#include <zlib.h>

#include "adler.h"

#define MOD 65521u

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* Lanes hold at most 255 * 8 * CHUNK * CHUNK / 2 in the double sum:
 * below 2^32 for CHUNK up to 2051. */
#define CHUNK 1024

__attribute__((target("avx2"))) static uint64_t hsum(__m256i v)
{
	uint32_t l[8];
	uint64_t s = 0;
	int i;

	_mm256_storeu_si256((__m256i *)l, v);
	for (i = 0; i < 8; i++)
		s += l[i];
	return s;
}

/* The vector sums over N bytes at P; with DST, the bytes are also stored
 * there as they are summed (one pass instead of a copy and a check). */
__attribute__((target("avx2"), always_inline)) static inline uint32_t
adler_avx2_body(uint32_t adler, uint8_t *dst, const uint8_t *p, size_t n)
{
	const __m256i zero = _mm256_setzero_si256();
	const __m256i ones = _mm256_set1_epi16(1);
	const __m256i weights = _mm256_setr_epi8(
	    32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16,
	    15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1);
	uint64_t a = adler & 0xffff, b = adler >> 16;

	while (n >= 32) {
		size_t k, blocks = n / 32 < CHUNK ? n / 32 : CHUNK;
		__m256i s = zero, before = zero, w = zero;

		for (k = 0; k < blocks; k++, p += 32) {
			__m256i x = _mm256_loadu_si256((const __m256i *)p);

			if (dst) {
				_mm256_storeu_si256((__m256i *)dst, x);
				dst += 32;
			}
			before = _mm256_add_epi32(before, s);
			s = _mm256_add_epi32(s, _mm256_sad_epu8(x, zero));
			w = _mm256_add_epi32(
			    w, _mm256_madd_epi16(
				   _mm256_maddubs_epi16(x, weights), ones));
		}
		n -= blocks * 32;
		b = (b + 32 * blocks * a + 32 * hsum(before) + hsum(w)) % MOD;
		a = (a + hsum(s)) % MOD;
	}
	while (n--) {
		if (dst)
			*dst++ = *p;
		a += *p++;
		b += a;
	}
	return (uint32_t)((b % MOD) << 16 | (a % MOD));
}

__attribute__((target("avx2"))) static uint32_t
adler_avx2(uint32_t adler, const uint8_t *p, size_t n)
{
	return adler_avx2_body(adler, NULL, p, n);
}

__attribute__((target("avx2"))) static uint32_t
adler_avx2_copy(uint32_t adler, uint8_t *dst, const uint8_t *p, size_t n)
{
	return adler_avx2_body(adler, dst, p, n);
}

uint32_t vmdk_adler32(uint32_t adler, const uint8_t *p, size_t n)
{
	if (__builtin_cpu_supports("avx2"))
		return adler_avx2(adler, p, n);
	return (uint32_t)adler32_z(adler, p, n);
}

uint32_t vmdk_adler32_copy(uint32_t adler, uint8_t *dst, const uint8_t *src,
			   size_t n)
{
	if (__builtin_cpu_supports("avx2"))
		return adler_avx2_copy(adler, dst, src, n);
	memcpy(dst, src, n);
	return (uint32_t)adler32_z(adler, dst, n);
}
#else
uint32_t vmdk_adler32(uint32_t adler, const uint8_t *p, size_t n)
{
	return (uint32_t)adler32_z(adler, p, n);
}

uint32_t vmdk_adler32_copy(uint32_t adler, uint8_t *dst, const uint8_t *src,
			   size_t n)
{
	memcpy(dst, src, n);
	return (uint32_t)adler32_z(adler, dst, n);
}
#endif
