/* A bounded, thread-safe cache of fixed-size blocks, least recently used
 * out first.  Keys are (owner pointer, 64-bit number).  Values are copied in
 * and out under the cache's lock, so no lock is held across any I/O: on a
 * miss the caller reads the block itself, then offers it with lru_put().
 */
#ifndef VMDKFS_LRU_H
#define VMDKFS_LRU_H

#include <stddef.h>
#include <stdint.h>

struct lru;

/* A cache of at most COUNT blocks of BLOCK bytes (memory: COUNT * BLOCK). */
int lru_new(size_t count, size_t block, struct lru **out);
void lru_free(struct lru *c);

/* On a hit copy N bytes from offset POS of the block into OUT and return 1;
 * return 0 on a miss, and then, if GEN is not NULL, the cache's generation
 * in *GEN, to be given back to lru_put(). */
int lru_get(struct lru *c, const void *owner, uint64_t key, size_t pos,
	    void *out, size_t n, uint64_t *gen);

/* Store a whole block (BLOCK bytes from DATA), evicting the oldest.  With
 * GEN (from the lru_get() miss) the block is stored only if no lru_patch()
 * or lru_drop() happened since: a block read from the file while a writer
 * changed it is then never cached stale. */
void lru_put(struct lru *c, const void *owner, uint64_t key, const void *data,
	     const uint64_t *gen);

/* For a block read straight into the cache's memory (no copy): take the
 * least recently used block out of the cache, its contents forgotten, and
 * return its BLOCK bytes to fill, or NULL if every block is taken.  The
 * caller then gives it back with lru_commit(), which stores it as OWNER and
 * KEY as lru_put() does (with GEN, only if nothing changed since; not if
 * the key was stored meanwhile), or with lru_unclaim(), which returns it
 * unused. */
void *lru_claim(struct lru *c);
void lru_commit(struct lru *c, void *block, const void *owner, uint64_t key,
		const uint64_t *gen);
void lru_unclaim(struct lru *c, void *block);

/* A writer changed N bytes at POS of a block: update the cached copy, if
 * any, and bump the generation. */
void lru_patch(struct lru *c, const void *owner, uint64_t key, size_t pos,
	       const void *data, size_t n);

/* Drop one block, or (key == UINT64_MAX) every block of OWNER; bumps the
 * generation. */
void lru_drop(struct lru *c, const void *owner, uint64_t key);

size_t lru_block_size(const struct lru *c);

#endif
