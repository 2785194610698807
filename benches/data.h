/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Keys and values of kvs-bench, derived so that every read can be checked.
 *
 * Key number i (0, 1, 2, ...) maps through a seeded 64-bit bijection to an
 * id; the key is the id in 8 big-endian bytes followed by filler bytes drawn
 * from the id, key_size bytes in all. Different numbers give different keys,
 * and consecutive numbers land in random places of the key space. Keys that
 * must be missing use numbers from MISS_BASE up, which no store is loaded
 * with.
 *
 * A value written under id at version v is: id (8 bytes, little-endian), v
 * (8 bytes), then value_size - 16 bytes copied from a window of a random pool
 * chosen by (id, v). A value read back is checked for its length, its id, a
 * version no newer than the newest written, and every pool byte.
 *
 * Thread safety: a keyspace is read-only once made; share it freely.
 */
#ifndef KVS_BENCH_DATA_H
#define KVS_BENCH_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KEY_MIN 8    /* bytes of id at the front of every key */
#define VALUE_MIN 16 /* bytes of header at the front of every value */
#define MISS_BASE ((uint64_t)1 << 62)

typedef struct keyspace {
    size_t key_size;
    size_t value_size;
    uint64_t seed;
    uint8_t *pool; /* POOL_BYTES + value_size random bytes */
} keyspace;

/* Make the keyspace and its pool. Returns 0 or -1 (out of memory). */
int keyspace_init(keyspace *ks, size_t key_size, size_t value_size, uint64_t seed);
void keyspace_free(keyspace *ks);

/* The id of key number i. */
uint64_t key_id(const keyspace *ks, uint64_t i);

/* Write the key_size bytes of the key with this id into out. */
void key_make(const keyspace *ks, uint64_t id, uint8_t *out);

/* Write the value_size bytes of the value of id at version into out. */
void value_make(const keyspace *ks, uint64_t id, uint64_t version, uint8_t *out);

/*
 * value_check - is val (len bytes) a value written for id at a version no
 * newer than max_version? On false, writes the reason into why (size bytes).
 */
bool value_check(const keyspace *ks, uint64_t id, uint64_t max_version, const void *val, size_t len,
                 char *why, size_t size);

/* splitmix64: a fast generator for per-thread random streams. */
static inline uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A uniform number in [0, n), for n up to 2^32. */
static inline uint64_t rng_below(uint64_t *state, uint64_t n)
{
    return ((rng_next(state) >> 32) * n) >> 32;
}

#endif
