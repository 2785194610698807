/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Key and value derivation for kvs-bench (see data.h): a seeded bijection
 * from key numbers to ids, keys and values built from ids, and the check
 * every read goes through.
 */
#include "data.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes of the random pool that values are cut from. */
#define POOL_BYTES ((size_t)1 << 20)

/* The MurmurHash3 finalizer: a bijection on 64-bit numbers. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

int keyspace_init(keyspace *ks, size_t key_size, size_t value_size, uint64_t seed)
{
    ks->key_size = key_size;
    ks->value_size = value_size;
    ks->seed = seed;
    ks->pool = malloc(POOL_BYTES + value_size);
    if (!ks->pool)
        return -1;
    uint64_t state = seed ^ 0x5851f42d4c957f2dull;
    for (size_t i = 0; i < POOL_BYTES + value_size; i += 8) {
        uint64_t r = rng_next(&state);
        size_t n = POOL_BYTES + value_size - i < 8 ? POOL_BYTES + value_size - i : 8;
        memcpy(ks->pool + i, &r, n);
    }
    return 0;
}

void keyspace_free(keyspace *ks)
{
    free(ks->pool);
    ks->pool = NULL;
}

uint64_t key_id(const keyspace *ks, uint64_t i)
{
    return mix64(i ^ mix64(ks->seed));
}

void key_make(const keyspace *ks, uint64_t id, uint8_t *out)
{
    for (int b = 0; b < 8; b++)
        out[b] = (uint8_t)(id >> (56 - 8 * b));
    uint64_t fill = mix64(id + 1);
    for (size_t b = KEY_MIN; b < ks->key_size; b++)
        out[b] = (uint8_t)(fill >> (8 * (b % 8)));
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int b = 0; b < 8; b++)
        p[b] = (uint8_t)(v >> (8 * b));
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int b = 0; b < 8; b++)
        v |= (uint64_t)p[b] << (8 * b);
    return v;
}

static const uint8_t *pool_window(const keyspace *ks, uint64_t id, uint64_t version)
{
    return ks->pool + mix64(id ^ (version * 0x9e3779b97f4a7c15ull)) % POOL_BYTES;
}

void value_make(const keyspace *ks, uint64_t id, uint64_t version, uint8_t *out)
{
    put_le64(out, id);
    put_le64(out + 8, version);
    memcpy(out + VALUE_MIN, pool_window(ks, id, version), ks->value_size - VALUE_MIN);
}

bool value_check(const keyspace *ks, uint64_t id, uint64_t max_version, const void *val, size_t len,
                 char *why, size_t size)
{
    const uint8_t *v = val;
    if (len != ks->value_size) {
        snprintf(why, size, "value of %zu bytes, expected %zu", len, ks->value_size);
        return false;
    }
    uint64_t got_id = get_le64(v);
    if (got_id != id) {
        snprintf(why, size, "value belongs to key id %016" PRIx64, got_id);
        return false;
    }
    uint64_t version = get_le64(v + 8);
    if (version > max_version) {
        snprintf(why, size, "value has version %" PRIu64 ", newest written is %" PRIu64, version,
                 max_version);
        return false;
    }
    const uint8_t *want = pool_window(ks, id, version);
    if (memcmp(v + VALUE_MIN, want, len - VALUE_MIN) == 0)
        return true;
    for (size_t i = VALUE_MIN; i < len; i++) {
        if (v[i] != want[i - VALUE_MIN]) {
            snprintf(why, size, "value byte %zu is 0x%02x, expected 0x%02x", i, v[i],
                     want[i - VALUE_MIN]);
            return false;
        }
    }
    return true;
}
