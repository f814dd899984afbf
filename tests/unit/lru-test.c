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
		} else {
			lru_put(shared, NULL, k, blk, NULL);
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

	CHECK(lru_new(16, 64, &shared) == 0);
	for (i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, hammer, (void *)(uintptr_t)i);
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	lru_free(shared);
	CHECK_DONE();
}
