/* vmdk_adler32() against zlib's adler32() on random and worst-case data,
 * every length around the vector and chunk boundaries, odd alignments and
 * chained calls. */
#include <string.h>
#include <zlib.h>

#include "../../vmdk/adler.h"
#include "check.h"

static uint64_t seed = 42;

static uint32_t rnd(void)
{
	seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t)(seed >> 33);
}

int main(void)
{
	static uint8_t buf[300000 + 64];
	size_t i, len, lens[] = {0,     1,     31,    32,	  33,	 63,
				 64,	5551,  5552,  5553,	  32767, 32768,
				 32769, 32800, 65536, 65536 + 7, 131072, 300000};
	int fill;

	for (fill = 0; fill < 3; fill++) {
		for (i = 0; i < sizeof(buf); i++)
			buf[i] = fill == 0 ? (uint8_t)rnd() : fill == 1 ? 0xff : 0;
		for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			size_t at = rnd() % 64;
			uint32_t start = i % 2 ? 1 : rnd();

			/* zlib takes any starting value; reduce it as a
			 * real running sum would be. */
			start = ((start >> 16) % 65521) << 16 | (start & 0xffff) % 65521;
			CHECK(vmdk_adler32(start, buf + at, lens[i]) ==
			      (uint32_t)adler32_z(start, buf + at, lens[i]));
		}
	}
	for (len = 0; len < 2000; len++) {
		size_t at = rnd() % 64;

		for (i = 0; i < len + at; i++)
			buf[i] = (uint8_t)rnd();
		CHECK(vmdk_adler32(1, buf + at, len) ==
		      (uint32_t)adler32_z(1, buf + at, len));
	}
	/* The copying form: the same sums, the bytes copied, nothing past
	 * them touched. */
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		static uint8_t dst[300000 + 64 + 1];
		size_t at = rnd() % 64, to = rnd() % 64;

		for (len = 0; len < sizeof(buf); len++)
			buf[len] = (uint8_t)rnd();
		memset(dst, 0xa5, sizeof(dst));
		CHECK(vmdk_adler32_copy(1, dst + to, buf + at, lens[i]) ==
		      (uint32_t)adler32_z(1, buf + at, lens[i]));
		CHECK(memcmp(dst + to, buf + at, lens[i]) == 0);
		CHECK(dst[to + lens[i]] == 0xa5 && (to == 0 || dst[to - 1] == 0xa5));
	}
	/* Chained: a grain checked in pieces equals one call. */
	for (i = 0; i < 65536; i++)
		buf[i] = (uint8_t)rnd();
	len = 12345;
	CHECK(vmdk_adler32(vmdk_adler32(1, buf, len), buf + len, 65536 - len) ==
	      (uint32_t)adler32_z(1, buf, 65536));
	CHECK_DONE();
}
