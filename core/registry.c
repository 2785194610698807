/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The engine registry: every engine kvs can serve, found by name.
 * Adding an engine is one folder under engines/ and one line here.
 */
#include <string.h>

#include "kvs/engine.h"

extern const struct kvs_engine kvs__log_engine;
extern const struct kvs_engine kvs__lmdb_engine;
extern const struct kvs_engine kvs__mem_engine;

static const struct kvs_engine *const registry[] = {
    &kvs__log_engine,
    &kvs__lmdb_engine,
    &kvs__mem_engine,
};

#define REGISTRY_LEN (sizeof(registry) / sizeof(registry[0]))

size_t kvs_engine_count(void)
{
    return REGISTRY_LEN;
}

const kvs_engine *kvs_engine_at(size_t i)
{
    return i < REGISTRY_LEN ? registry[i] : NULL;
}

/* Names are compared exactly; the first match wins, and the registry test
   checks that no two entries share a name. */
const kvs_engine *kvs_engine_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < REGISTRY_LEN; i++) {
        if (strcmp(registry[i]->name, name) == 0)
            return registry[i];
    }
    return NULL;
}

const char *kvs_engine_name(const kvs_engine *engine)
{
    return engine->name;
}

size_t kvs_engine_max_key(const kvs_engine *engine)
{
    return engine->max_key;
}

size_t kvs_engine_max_value(const kvs_engine *engine)
{
    return engine->max_value;
}

unsigned kvs_engine_traits(const kvs_engine *engine)
{
    return engine->traits;
}
