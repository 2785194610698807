/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Error replies by kind; see errstats.h.
 */
#include "errstats.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "kvs/kvs.h"

#define KIND_MAX 32

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char kind[KIND_MAX + 1];
    uint64_t count;
} kinds[ERRSTATS_MAX];
static size_t nkinds;
static uint64_t total_errors;

void errstats_add(const char *text, size_t len)
{
    size_t n = 0;
    while (n < len && n < KIND_MAX && text[n] != ' ' && text[n] != '\r')
        n++;
    pthread_mutex_lock(&lock);
    total_errors++;
    size_t i = 0;
    while (i < nkinds && (strlen(kinds[i].kind) != n || memcmp(kinds[i].kind, text, n) != 0))
        i++;
    if (i == nkinds && nkinds < ERRSTATS_MAX) {
        memcpy(kinds[i].kind, text, n);
        kinds[i].kind[n] = '\0';
        kinds[i].count = 0;
        nkinds++;
    }
    if (i < nkinds)
        kinds[i].count++;
    pthread_mutex_unlock(&lock);
}

int errstats_info(kvs_buf *out, uint64_t *total)
{
    int rc = 0;
    pthread_mutex_lock(&lock);
    if (total)
        *total = total_errors;
    for (size_t i = 0; out && i < nkinds && rc == 0; i++) {
        char line[96];
        int n = snprintf(line, sizeof(line), "errorstat_%s:count=%llu\r\n", kinds[i].kind,
                         (unsigned long long)kinds[i].count);
        if (kvs_buf_reserve(out, out->len + (size_t)n + 1) != 0) {
            rc = KVS_ENOMEM;
            break;
        }
        memcpy((char *)out->data + out->len, line, (size_t)n);
        out->len += (size_t)n;
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

void errstats_reset(void)
{
    pthread_mutex_lock(&lock);
    nkinds = 0;
    total_errors = 0;
    pthread_mutex_unlock(&lock);
}
