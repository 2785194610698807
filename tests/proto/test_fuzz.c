/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Random input for the request parser: 10,000 payloads of garbage and of
 * mutated commands never crash it (ASan/UBSan watch), always end in DONE,
 * MORE or ERROR, and parse the same whether they arrive whole or byte by
 * byte. Small limits make the limit paths common. The seed is fixed so a
 * failure reproduces; KVS_FUZZ_SEED overrides it.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* xorshift64*: a small generator whose sequence depends on nothing else. */
static uint64_t rng_state;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static void seed(void)
{
    const char *env = getenv("KVS_FUZZ_SEED");
    rng_state = env ? strtoull(env, NULL, 0) : 0x6b76732d70726f74ull;
    if (rng_state == 0)
        rng_state = 1;
}

/* Bytes a parser cares about, to hit its branches more often than chance. */
static const char alphabet[] = "*$\r\n\r\n0123456789-+ \t\"'\\xaZ\0";

static size_t random_payload(char *buf, size_t cap)
{
    static const char *const pieces[] = {
        "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
        "*1\r\n$4\r\nPING\r\n",
        "*2\r\n$3\r\nGET\r\n$0\r\n\r\n",
        "*-1\r\n",
        "*0\r\n",
        "SET \"a b\" 'c'\r\n",
        "GET \"\\x41\"\n",
        "*20000000\r\n",
        "$2000000000\r\n",
    };
    size_t len = 0;
    size_t target = (size_t)(rng() % cap);
    while (len < target) {
        uint64_t r = rng();
        if (r % 4 == 0) {
            const char *piece = pieces[(r >> 8) % (sizeof(pieces) / sizeof(pieces[0]))];
            size_t n = strlen(piece);
            if (len + n > cap)
                break;
            memcpy(buf + len, piece, n);
            len += n;
        } else if (r % 4 == 1) {
            buf[len++] = (char)(r >> 16);
        } else {
            buf[len++] = alphabet[(r >> 16) % (sizeof(alphabet) - 1)];
        }
    }
    /* Mutate a few bytes of the well-formed pieces too. */
    for (int m = (int)(rng() % 3); m > 0 && len > 0; m--)
        buf[rng() % len] = (char)rng();
    return len;
}

Test(fuzz, garbage_never_breaks_the_parser)
{
    seed();
    const resp_limits small = {.max_bulk = 64, .max_args = 16, .max_inline = 48};
    char buf[300];
    struct outcome whole[128], bytewise[128];
    int counts[3] = {0};
    for (int i = 0; i < 10000; i++) {
        size_t len = random_payload(buf, sizeof(buf));
        const resp_limits *limits = i % 2 ? &small : NULL;
        size_t nw = feed(limits, buf, len, len ? len : 1, whole, 128);
        cr_assert_geq(nw, 1);
        int last = whole[nw - 1].status;
        cr_assert(last == RESP_MORE || last == RESP_ERROR, "payload %d ended in %d", i, last);
        counts[last == RESP_MORE ? 0 : 1]++;
        counts[2] += (int)nw - 1;
        if (last == RESP_ERROR)
            cr_assert(strncmp(whole[nw - 1].error, "ERR ", 4) == 0);
        /* Split-equivalence is the expensive check: one payload in four. */
        if (i % 4 == 0) {
            size_t nb = feed(limits, buf, len, 1, bytewise, 128);
            assert_same_outcomes(whole, nw, bytewise, nb, "whole vs byte by byte");
        }
    }
    /* The generator must reach all three outcomes, or the test is weak. */
    cr_assert_gt(counts[0], 100, "MORE %d", counts[0]);
    cr_assert_gt(counts[1], 100, "ERROR %d", counts[1]);
    cr_assert_gt(counts[2], 100, "DONE %d", counts[2]);
}

Test(fuzz, reply_parser_on_garbage)
{
    seed();
    char buf[300];
    for (int i = 0; i < 10000; i++) {
        size_t len = random_payload(buf, sizeof(buf));
        if (len && rng() % 2)
            buf[0] = "+-:$*"[rng() % 5];
        size_t off = 0;
        for (;;) {
            resp_reply r;
            size_t used = 0;
            int rc = resp_parse_reply(buf + off, len - off, 1024, &r, &used);
            cr_assert(rc == RESP_DONE || rc == RESP_MORE || rc == RESP_ERROR);
            if (rc != RESP_DONE)
                break;
            cr_assert(used > 0 && used <= len - off);
            if (r.type == RESP_BULK || r.type == RESP_SIMPLE || r.type == RESP_ERR)
                cr_assert((const char *)r.str.data >= buf + off &&
                          (const char *)r.str.data + r.str.len <= buf + off + used);
            off += used;
        }
    }
}
