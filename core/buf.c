/* SPDX-License-Identifier: BSD-3-Clause */
/* Caller-owned byte buffers; see slice.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kvs/error.h"
#include "kvs/slice.h"

int kvs_buf_reserve(kvs_buf *buf, size_t cap)
{
    if (cap <= buf->cap)
        return 0;
    size_t grown = buf->cap ? buf->cap : 64;
    while (grown < cap)
        grown = grown > SIZE_MAX / 2 ? cap : grown * 2;
    void *p = realloc(buf->data, grown);
    if (!p)
        return KVS_ENOMEM;
    buf->data = p;
    buf->cap = grown;
    return 0;
}

int kvs_buf_set(kvs_buf *buf, const void *data, size_t len)
{
    int rc = kvs_buf_reserve(buf, len ? len : 1);
    if (rc != 0)
        return rc;
    if (len)
        memcpy(buf->data, data, len);
    buf->len = len;
    return 0;
}

void kvs_buf_free(kvs_buf *buf)
{
    if (!buf)
        return;
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
}
