/* The bounded cache: hits, eviction order, bound, drop, threads. */
#include <pthread.h>
#include <string.h>

#include "../../common/lru.h"
#include "check.h"

static struct lru *shared;

static void *hammer(void *arg)
{
	uint64_t base = (uintptr_t)arg;
	char blk[64], out[64];
	int i;

	for (i = 0; i < 100000; i++) {
		uint64_t k = (base * 7919 + (uint64_t)i) % 97;

		memset(blk, (int)(k & 0xff), sizeof(blk));
		if (lru_get(shared, NULL, k, 0, out, sizeof(out), NULL)) {
			if (out[0] != (char)k || out[63] != (char)k)
				check_failures++;
		} else if (i % 2) {
			lru_put(shared, NULL, k, blk, NULL);
		} else {
			char *b = lru_claim(shared);

			if (b) { /* filled in place, then stored */
				memset(b, (int)(k & 0xff), 64);
				if (i % 10)
					lru_commit(shared, b, NULL, k, NULL);
				else
					lru_unclaim(shared, b);
			}
		}
	}
	return NULL;
}

int main(void)
{
	struct lru *c;
	char blk[16], out[16];
	int owner, i;
	pthread_t t[4];

	CHECK(lru_new(3, sizeof(blk), &c) == 0);
	for (i = 0; i < 3; i++) {
		memset(blk, 'a' + i, sizeof(blk));
		lru_put(c, &owner, (uint64_t)i, blk, NULL);
	}
	CHECK(lru_get(c, &owner, 0, 2, out, 4, NULL) == 1 && out[0] == 'a');
	/* 1 is now the oldest: a fourth block evicts it. */
	memset(blk, 'd', sizeof(blk));
	lru_put(c, &owner, 3, blk, NULL);
	CHECK(lru_get(c, &owner, 1, 0, out, 1, NULL) == 0);
	CHECK(lru_get(c, &owner, 0, 0, out, 1, NULL) == 1 && out[0] == 'a');
	CHECK(lru_get(c, &owner, 3, 15, out, 1, NULL) == 1 && out[0] == 'd');
	CHECK(lru_get(c, NULL, 3, 0, out, 1, NULL) == 0);    /* other owner */
	CHECK(lru_get(c, &owner, 3, 10, out, 7, NULL) == 0); /* out of block */
	lru_drop(c, &owner, UINT64_MAX);
	CHECK(lru_get(c, &owner, 0, 0, out, 1, NULL) == 0);
	CHECK(lru_get(c, &owner, 3, 0, out, 1, NULL) == 0);
	/* A block read while a writer patched it is not cached stale. */
	{
		uint64_t gen;

		CHECK(lru_get(c, &owner, 9, 0, out, 1, &gen) == 0);
		lru_patch(c, &owner, 9, 0, "n", 1);
		memset(blk, 'o', sizeof(blk));
		lru_put(c, &owner, 9, blk, &gen);
		CHECK(lru_get(c, &owner, 9, 0, out, 1, NULL) == 0);
		CHECK(lru_get(c, &owner, 9, 0, out, 1, &gen) == 0);
		lru_put(c, &owner, 9, blk, &gen);
		lru_patch(c, &owner, 9, 2, "xy", 2);
		CHECK(lru_get(c, &owner, 9, 1, out, 3, NULL) == 1 &&
		      !memcmp(out, "oxy", 3));
	}
	lru_free(c);

	/* Claims: filled in place; the oldest block goes, every block can be
	 * taken, and a block stored meanwhile is not stored twice. */
	CHECK(lru_new(2, sizeof(blk), &c) == 0);
	memset(blk, 'a', sizeof(blk));
	lru_put(c, &owner, 1, blk, NULL);
	{
		char *b1 = lru_claim(c), *b2, *b3;

		CHECK(b1 != NULL);
		memset(b1, 'b', sizeof(blk));
		lru_commit(c, b1, &owner, 2, NULL);
		CHECK(lru_get(c, &owner, 2, 0, out, 16, NULL) == 1 && out[15] == 'b');
		CHECK(lru_get(c, &owner, 1, 0, out, 1, NULL) == 1 && out[0] == 'a');
		b2 = lru_claim(c); /* the oldest: 2 */
		CHECK(lru_get(c, &owner, 2, 0, out, 1, NULL) == 0);
		b3 = lru_claim(c);
		CHECK(b2 && b3 && b2 != b3 && lru_claim(c) == NULL);
		lru_put(c, &owner, 5, blk, NULL); /* nowhere to go: not stored */
		CHECK(lru_get(c, &owner, 5, 0, out, 1, NULL) == 0);
		lru_unclaim(c, b3);
		lru_put(c, &owner, 5, blk, NULL);
		memset(b2, 'c', sizeof(blk));
		lru_commit(c, b2, &owner, 5, NULL); /* 5 is there: dropped */
		CHECK(lru_get(c, &owner, 5, 0, out, 1, NULL) == 1 && out[0] == 'a');
		b1 = lru_claim(c);
		CHECK(b1 == b2); /* it went back as the first to reuse */
		{
			uint64_t gen;

			CHECK(lru_get(c, &owner, 6, 0, out, 1, &gen) == 0);
			lru_drop(c, &owner, 5);
			lru_commit(c, b1, &owner, 6, &gen); /* stale: not kept */
			CHECK(lru_get(c, &owner, 6, 0, out, 1, NULL) == 0);
		}
	}
	lru_free(c);

	CHECK(lru_new(16, 64, &shared) == 0);
	for (i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, hammer, (void *)(uintptr_t)i);
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	lru_free(shared);
	CHECK_DONE();
}
