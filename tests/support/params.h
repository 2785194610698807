/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Criterion parameters over the registered engines, for the suites that run
 * once per engine: the list comes from the registry (kvs_engine_count(),
 * kvs_engine_at()), so an engine added later is run by every such suite
 * without an edit. Names are copied into the parameters (cr_calloc), which
 * is how they reach the process Criterion runs each test in.
 *
 * Header-only (static inline functions) because only Criterion suites use
 * it, and kvs_test_support is linked by plain programs too.
 */
#ifndef KVS_TESTS_SUPPORT_PARAMS_H
#define KVS_TESTS_SUPPORT_PARAMS_H

#include <criterion/parameterized.h>
#include <stdio.h>

#include "kvs/kvs.h"

struct ts_engine_param {
    char name[32];
};

static inline void ts_free_params(struct criterion_test_params *crp)
{
    cr_free(crp->params);
}

/* One parameter per registered engine. */
static inline struct criterion_test_params ts_engine_params(void)
{
    size_t n = kvs_engine_count();
    struct ts_engine_param *p = cr_calloc(n, sizeof(*p));
    for (size_t i = 0; p && i < n; i++)
        snprintf(p[i].name, sizeof(p[i].name), "%s", kvs_engine_name(kvs_engine_at(i)));
    return cr_make_param_array(struct ts_engine_param, p, p ? n : 0, ts_free_params);
}

#endif
