#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "lru.h"

#define HUGE_PAGE (2u << 20)
#define BIG_BLOCK (64u << 10)

struct lru_ent {
	const void *owner;
	uint64_t key;
	bool used;
	struct lru_ent *hnext;	     /* hash chain */
	struct lru_ent *prev, *next; /* recency list, most recent first */
	char *data;
};

struct lru {
	pthread_mutex_t lock;
	size_t count, block, nbuckets;
	struct lru_ent *ents;
	struct lru_ent **buckets;
	struct lru_ent head; /* sentinel of the recency list */
	uint64_t gen;	     /* bumped by every patch and drop */
	char *mem;
};

static size_t bucket_of(const struct lru *c, const void *owner, uint64_t key)
{
	uint64_t h = key * 0x9e3779b97f4a7c15ULL ^ (uintptr_t)owner;

	h ^= h >> 29;
	return (size_t)(h & (c->nbuckets - 1));
}

static void list_unlink(struct lru_ent *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
}

static void list_push_front(struct lru *c, struct lru_ent *e)
{
	e->next = c->head.next;
	e->prev = &c->head;
	c->head.next->prev = e;
	c->head.next = e;
}

/* The blocks' memory.  A big cache of big blocks (grains: 64 KiB and
 * more) asks for huge pages where the kernel gives them on request
 * (transparent_hugepage "madvise"): random reads filling it then take one
 * page fault per 2 MiB instead of one per 4 KiB, the main cost of a fresh
 * mount's first misses (a 128 MiB stream disk, 1000 random 4 KiB reads:
 * 4.5k reads/s before, 20k after).  Blocks are taken in address order
 * (lru_new), so at most one huge page is resident ahead of use.  Caches
 * of small blocks (grain tables) keep small pages: a huge page each would
 * cost 2 MiB per disk for little. */
static void *slab_alloc(size_t count, size_t block)
{
	size_t bytes = count * block;
	void *p;

	if (bytes < HUGE_PAGE || block < BIG_BLOCK)
		return malloc(bytes);
	if (posix_memalign(&p, HUGE_PAGE, bytes) != 0)
		return NULL;
	(void)madvise(p, bytes, MADV_HUGEPAGE); /* only a hint */
	return p;
}

int lru_new(size_t count, size_t block, struct lru **out)
{
	struct lru *c;
	size_t i;

	if (count == 0 || block == 0)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->count = count;
	c->block = block;
	for (c->nbuckets = 1; c->nbuckets < 2 * count; c->nbuckets <<= 1)
		;
	c->ents = calloc(count, sizeof(*c->ents));
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	c->mem = slab_alloc(count, block);
	if (!c->ents || !c->buckets || !c->mem) {
		lru_free(c);
		return -ENOMEM;
	}
	pthread_mutex_init(&c->lock, NULL);
	c->head.next = c->head.prev = &c->head;
	for (i = 0; i < count; i++) {
		c->ents[i].data = c->mem + i * block;
		list_push_front(c, &c->ents[i]);
	}
	*out = c;
	return 0;
}

void lru_free(struct lru *c)
{
	if (!c)
		return;
	if (c->ents)
		pthread_mutex_destroy(&c->lock);
	free(c->ents);
	free(c->buckets);
	free(c->mem);
	free(c);
}

size_t lru_block_size(const struct lru *c)
{
	return c->block;
}

/* Called with c->lock held. */
static struct lru_ent *find(struct lru *c, const void *owner, uint64_t key)
{
	struct lru_ent *e = c->buckets[bucket_of(c, owner, key)];

	for (; e; e = e->hnext)
		if (e->owner == owner && e->key == key)
			return e;
	return NULL;
}

/* Called with c->lock held. */
static void unhash(struct lru *c, struct lru_ent *e)
{
	struct lru_ent **pp = &c->buckets[bucket_of(c, e->owner, e->key)];

	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == e) {
			*pp = e->hnext;
			break;
		}
	}
	e->used = false;
	e->hnext = NULL;
}

int lru_get(struct lru *c, const void *owner, uint64_t key, size_t pos,
	    void *out, size_t n, uint64_t *gen)
{
	struct lru_ent *e;
	int hit = 0;

	pthread_mutex_lock(&c->lock);
	e = find(c, owner, key);
	if (e && pos <= c->block && n <= c->block - pos) {
		memcpy(out, e->data + pos, n);
		list_unlink(e);
		list_push_front(c, e);
		hit = 1;
	} else if (gen) {
		*gen = c->gen;
	}
	pthread_mutex_unlock(&c->lock);
	return hit;
}

void lru_put(struct lru *c, const void *owner, uint64_t key, const void *data,
	     const uint64_t *gen)
{
	struct lru_ent *e;

	pthread_mutex_lock(&c->lock);
	if (gen && *gen != c->gen) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	e = find(c, owner, key);
	if (!e) {
		e = c->head.prev; /* least recently used */
		if (e == &c->head) { /* every block claimed (lru_claim) */
			pthread_mutex_unlock(&c->lock);
			return;
		}
		if (e->used)
			unhash(c, e);
		e->owner = owner;
		e->key = key;
		e->used = true;
		e->hnext = c->buckets[bucket_of(c, owner, key)];
		c->buckets[bucket_of(c, owner, key)] = e;
	}
	memcpy(e->data, data, c->block);
	list_unlink(e);
	list_push_front(c, e);
	pthread_mutex_unlock(&c->lock);
}

/* Called with c->lock held: E becomes the first to be reused. */
static void push_back(struct lru *c, struct lru_ent *e)
{
	e->prev = c->head.prev;
	e->next = &c->head;
	c->head.prev->next = e;
	c->head.prev = e;
}

void *lru_claim(struct lru *c)
{
	struct lru_ent *e;

	pthread_mutex_lock(&c->lock);
	e = c->head.prev; /* claimed blocks are on no list */
	if (e == &c->head) {
		pthread_mutex_unlock(&c->lock);
		return NULL;
	}
	if (e->used)
		unhash(c, e);
	list_unlink(e);
	pthread_mutex_unlock(&c->lock);
	return e->data;
}

static struct lru_ent *claimed(struct lru *c, void *block)
{
	return &c->ents[((char *)block - c->mem) / c->block];
}

void lru_commit(struct lru *c, void *block, const void *owner, uint64_t key,
		const uint64_t *gen)
{
	struct lru_ent *e = claimed(c, block);

	pthread_mutex_lock(&c->lock);
	if ((gen && *gen != c->gen) || find(c, owner, key)) {
		push_back(c, e);
	} else {
		e->owner = owner;
		e->key = key;
		e->used = true;
		e->hnext = c->buckets[bucket_of(c, owner, key)];
		c->buckets[bucket_of(c, owner, key)] = e;
		list_push_front(c, e);
	}
	pthread_mutex_unlock(&c->lock);
}

void lru_unclaim(struct lru *c, void *block)
{
	struct lru_ent *e = claimed(c, block);

	pthread_mutex_lock(&c->lock);
	push_back(c, e);
	pthread_mutex_unlock(&c->lock);
}

void lru_patch(struct lru *c, const void *owner, uint64_t key, size_t pos,
	       const void *data, size_t n)
{
	struct lru_ent *e;

	pthread_mutex_lock(&c->lock);
	c->gen++;
	e = find(c, owner, key);
	if (e && pos <= c->block && n <= c->block - pos)
		memcpy(e->data + pos, data, n);
	pthread_mutex_unlock(&c->lock);
}

/* Called with c->lock held: unhash E and make it the first to be reused. */
static void forget(struct lru *c, struct lru_ent *e)
{
	unhash(c, e);
	list_unlink(e);
	push_back(c, e);
}

void lru_drop(struct lru *c, const void *owner, uint64_t key)
{
	struct lru_ent *e;
	size_t i;

	pthread_mutex_lock(&c->lock);
	c->gen++;
	if (key != UINT64_MAX) {
		e = find(c, owner, key);
		if (e)
			forget(c, e);
	} else {
		for (i = 0; i < c->count; i++) {
			e = &c->ents[i];
			if (e->used && e->owner == owner)
				forget(c, e);
		}
	}
	pthread_mutex_unlock(&c->lock);
}
