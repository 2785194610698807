/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The client library (kvs_client_*) against a real kvs-server on each
 * engine: set/get/remove with binary data, missing keys, a large value,
 * a pipelined batch of 1000 requests, a server error reply, and a server
 * that dies under the client.
 */
#include "kvs/client.h"
#include "kvs/kvs.h"

#include "harness.h"

static kvs_client *connect_to(const struct env *e)
{
    kvs_client *c = NULL;
    char why[256] = "";
    int rc = kvs_client_connect(e->srv.addr, 10000, &c, why, sizeof(why));
    cr_assert_eq(rc, 0, "connect %s: %s (%s)", e->srv.addr, kvs_err_name(rc), why);
    return c;
}

static void expect_value(kvs_client *c, kvs_slice key, const void *want, size_t len)
{
    kvs_buf v = KVS_BUF_INIT;
    int rc = kvs_client_get(c, key, &v);
    cr_assert_eq(rc, 0, "get: %s %s", kvs_err_name(rc), kvs_client_last_error(c));
    cr_assert_eq(v.len, len);
    cr_assert(len == 0 || memcmp(v.data, want, len) == 0);
    kvs_buf_free(&v);
}

ParameterizedTestParameters(client, set_get_remove)
{
    ENGINE_PARAMS;
}

ParameterizedTest(struct ts_engine_param *ep, client, set_get_remove)
{
    struct env e;
    env_init(&e, ep->name);
    kvs_client *c = connect_to(&e);

    kvs_slice key = kvs_slice_of("k\0\r\n\xff", 5);
    kvs_slice value = kvs_slice_of("\r\n$-1\r\n\0", 8);
    cr_assert_eq(kvs_client_set(c, key, value), 0);
    cr_assert_str_eq(kvs_client_last_error(c), "");
    expect_value(c, key, value.data, value.len);

    /* A missing key leaves the output buffer untouched. */
    kvs_buf v = KVS_BUF_INIT;
    cr_assert_eq(kvs_buf_set(&v, "keep", 4), 0);
    cr_assert_eq(kvs_client_get(c, kvs_slice_str("missing"), &v), KVS_ENOTFOUND);
    cr_assert(v.len == 4 && memcmp(v.data, "keep", 4) == 0);
    kvs_buf_free(&v);

    cr_assert_eq(kvs_client_set(c, key, kvs_slice_of("", 0)), 0);
    expect_value(c, key, "", 0);
    cr_assert_eq(kvs_client_remove(c, key), 0);
    cr_assert_eq(kvs_client_get(c, key, &v), KVS_ENOTFOUND);
    cr_assert_eq(kvs_client_remove(c, key), KVS_ENOTFOUND);
    kvs_buf_free(&v);

    kvs_client_close(c);
    env_fini(&e);
}

ParameterizedTestParameters(client, large_value)
{
    ENGINE_PARAMS;
}

ParameterizedTest(struct ts_engine_param *ep, client, large_value)
{
    struct env e;
    env_init(&e, ep->name);
    kvs_client *c = connect_to(&e);
    size_t len = 4u << 20;
    char *big = malloc(len);
    for (size_t i = 0; i < len; i++)
        big[i] = (char)(i * 7 + i / 4096);
    cr_assert_eq(kvs_client_set(c, kvs_slice_str("big"), kvs_slice_of(big, len)), 0);
    expect_value(c, kvs_slice_str("big"), big, len);
    free(big);
    kvs_client_close(c);
    env_fini(&e);
}

/* 1000 requests per batch, each batch one pipelined exchange. */
ParameterizedTestParameters(client, batch_of_1000)
{
    ENGINE_PARAMS;
}

ParameterizedTest(struct ts_engine_param *ep, client, batch_of_1000)
{
    enum { N = 1000 };
    struct env e;
    env_init(&e, ep->name);
    kvs_client *c = connect_to(&e);
    static char keys[N][16], values[N][32];
    static kvs_client_request reqs[N];
    static kvs_buf outs[N];

    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof(keys[i]), "key:%d", i);
        snprintf(values[i], sizeof(values[i]), "value %d\r\n", i * i);
        reqs[i] = (kvs_client_request){.op = KVS_CLIENT_SET,
                                       .key = kvs_slice_str(keys[i]),
                                       .value = kvs_slice_str(values[i]),
                                       .status = 12345};
    }
    cr_assert_eq(kvs_client_batch(c, reqs, N), 0, "%s", kvs_client_last_error(c));
    for (int i = 0; i < N; i++)
        cr_assert_eq(reqs[i].status, 0, "set %d: %s", i, kvs_err_name(reqs[i].status));

    /* Remove every third key, and read the others, in one batch. */
    for (int i = 0; i < N; i++) {
        kvs_client_op op = i % 3 == 0 ? KVS_CLIENT_REMOVE : KVS_CLIENT_GET;
        reqs[i] = (kvs_client_request){
            .op = op, .key = kvs_slice_str(keys[i]), .value_out = &outs[i], .status = 12345};
    }
    cr_assert_eq(kvs_client_batch(c, reqs, N), 0, "%s", kvs_client_last_error(c));
    for (int i = 0; i < N; i++) {
        cr_assert_eq(reqs[i].status, 0, "request %d: %s", i, kvs_err_name(reqs[i].status));
        if (i % 3)
            cr_assert(outs[i].len == strlen(values[i]) &&
                          memcmp(outs[i].data, values[i], outs[i].len) == 0,
                      "value %d", i);
    }

    /* Read everything back: the removed keys are missing. */
    for (int i = 0; i < N; i++) {
        outs[i].len = 0;
        reqs[i] = (kvs_client_request){.op = KVS_CLIENT_GET,
                                       .key = kvs_slice_str(keys[i]),
                                       .value_out = i % 2 ? &outs[i] : NULL,
                                       .status = 12345};
    }
    cr_assert_eq(kvs_client_batch(c, reqs, N), 0);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(reqs[i].status, i % 3 == 0 ? KVS_ENOTFOUND : 0, "request %d: %s", i,
                     kvs_err_name(reqs[i].status));
        if (i % 3 && i % 2)
            cr_assert(outs[i].len == strlen(values[i]) &&
                      memcmp(outs[i].data, values[i], outs[i].len) == 0);
    }
    for (int i = 0; i < N; i++)
        kvs_buf_free(&outs[i]);
    kvs_client_close(c);
    env_fini(&e);
}

/* A key over the engine's limit is refused by the server with an error
   reply; the connection stays usable. */
ParameterizedTestParameters(client, server_error_reply)
{
    ENGINE_PARAMS;
}

ParameterizedTest(struct ts_engine_param *ep, client, server_error_reply)
{
    const kvs_engine *engine = kvs_engine_find(ep->name);
    cr_assert_not_null(engine);
    size_t len = kvs_engine_max_key(engine) + 1;
    struct env e;
    env_init(&e, ep->name);
    kvs_client *c = connect_to(&e);
    char *key = malloc(len);
    memset(key, 'k', len);
    cr_assert_eq(kvs_client_set(c, kvs_slice_of(key, len), kvs_slice_str("v")), KVS_ESERVER);
    const char *msg = kvs_client_last_error(c);
    cr_assert(strncmp(msg, "ERR", 3) == 0, "server error '%s'", msg);
    cr_assert_eq(kvs_client_set(c, kvs_slice_str("ok"), kvs_slice_str("fine")), 0);
    cr_assert_str_eq(kvs_client_last_error(c), "");
    expect_value(c, kvs_slice_str("ok"), "fine", 4);
    free(key);
    kvs_client_close(c);
    env_fini(&e);
}

/* The server dies under a connected client: the next call fails with a
   connection error, every later one with KVS_ECLOSED. */
Test(client, server_killed_under_the_client)
{
    struct env e;
    env_init(&e, "lmdb");
    kvs_client *c = connect_to(&e);
    cr_assert_eq(kvs_client_set(c, kvs_slice_str("a"), kvs_slice_str("b")), 0);
    cr_assert_eq(ts_server_kill(&e.srv), 128 + 9);
    kvs_buf v = KVS_BUF_INIT;
    int rc = kvs_client_get(c, kvs_slice_str("a"), &v);
    cr_assert(rc == KVS_ECLOSED || rc == KVS_EIO, "%s", kvs_err_name(rc));
    cr_assert_neq(kvs_client_last_error(c)[0], '\0');
    cr_assert_eq(kvs_client_get(c, kvs_slice_str("a"), &v), KVS_ECLOSED);
    kvs_client_close(c);
    kvs_buf_free(&v);
    env_fini(&e);
}
