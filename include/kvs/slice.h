/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Byte strings that cross the kvs API.
 *
 * Keys and values are binary-safe: a pointer and a length, never C strings.
 *  1. A kvs_slice is borrowed: the callee reads it during the call only and
 *     keeps no pointer to it afterwards.
 *  2. A kvs_buf is owned by the caller and reusable: a call that outputs bytes
 *     grows it as needed (realloc) and sets len; the caller frees it with
 *     kvs_buf_free() once, whatever the calls in between returned.
 */
#ifndef KVS_SLICE_H
#define KVS_SLICE_H

#include <stddef.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kvs_slice {
    const void *data;
    size_t len;
} kvs_slice;

typedef struct kvs_buf {
    void *data; /* NULL or malloc'd; owned by the caller */
    size_t len; /* bytes of valid output */
    size_t cap; /* bytes allocated */
} kvs_buf;

#define KVS_BUF_INIT                                                                               \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

static inline kvs_slice kvs_slice_of(const void *data, size_t len)
{
    kvs_slice s = {data, len};
    return s;
}

/* A slice over a NUL-terminated string, without the NUL. */
static inline kvs_slice kvs_slice_str(const char *s)
{
    return kvs_slice_of(s, strlen(s));
}

/*
 * kvs_buf_reserve - make room for at least cap bytes, keeping the content.
 * Returns 0, or KVS_ENOMEM leaving the buffer as it was.
 */
int kvs_buf_reserve(kvs_buf *buf, size_t cap);

/*
 * kvs_buf_set - replace the content with a copy of len bytes at data.
 * Returns 0, or KVS_ENOMEM leaving the buffer as it was.
 */
int kvs_buf_set(kvs_buf *buf, const void *data, size_t len);

/* kvs_buf_free - release the memory and reset to empty; accepts NULL. */
void kvs_buf_free(kvs_buf *buf);

#ifdef __cplusplus
}
#endif
#endif
