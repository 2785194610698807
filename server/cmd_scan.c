/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Commands over the whole keyspace: SCAN, KEYS, RANDOMKEY. Run on the
 * connection's worker thread, over kvs_db_scan() (kvs.h), which walks the
 * keys in steps that need no state but the cursor and block no writer.
 *
 * - SCAN is one engine step: kvs's cursor, printed in decimal, is the
 *   client's cursor. Keys are filtered by MATCH (glob.h) and TYPE as the
 *   step meets them.
 * - KEYS is a whole pass of steps. Under concurrent writers an engine may
 *   meet a key twice in a pass; KEYS lists it once (a set of the keys
 *   already in the reply), so its reply is a set, as Redis's is.
 * - RANDOMKEY takes the first key of a step from a random cursor, going
 *   round to cursor 0 when that step is past the last key.
 *
 * A key list is appended to the output buffer as the step meets the keys,
 * behind room kept for the array's header, which is written once the
 * count is known (struct deferred): no copy of the keys elsewhere, and
 * --max-output-buffer applies to each key as it is added (reply.h), so a
 * KEYS that would be owed more than that closes the client as soon as it
 * passes the limit rather than after building it all.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "commands.h"
#include "conn.h"
#include "glob.h"
#include "reply.h"
#include "worker.h"

/* Keys a KEYS step asks for: big enough to make the per-step cost (a read
   transaction, an epoch section) small, small enough that a step never
   holds an engine's snapshot for long. */
#define KEYS_STEP 1024
/* Redis's default SCAN COUNT. */
#define SCAN_COUNT 10
/* Room for "*2\r\n$20\r\n<20 digits>\r\n*<20 digits>\r\n". */
#define SCAN_HEAD_MAX 64

static kvs_db *db_of(struct conn *c)
{
    return c->w->srv->store.db;
}

/* An array reply whose length is known only at its end. */
struct deferred {
    size_t mark; /* c->out.len where the reply starts */
    size_t room; /* bytes kept there for the header */
};

/* Keep room bytes for the header. false when the client is over its
   output limit or out of memory (then it is CONN_KILL). */
static bool deferred_begin(struct conn *c, struct deferred *d, size_t room)
{
    if (!reply_room(c, room))
        return false;
    if (kvs_buf_reserve(&c->out, c->out.len + room) != 0) {
        c->flags |= CONN_KILL;
        return false;
    }
    d->mark = c->out.len;
    d->room = room;
    c->out.len += room;
    return true;
}

/* Put the header (hlen <= room bytes) in front of the elements. */
static void deferred_end(struct conn *c, const struct deferred *d, const char *head, size_t hlen)
{
    char *at = (char *)c->out.data + d->mark;
    size_t body = c->out.len - d->mark - d->room;
    memmove(at + hlen, at + d->room, body);
    memcpy(at, head, hlen);
    c->out.len = d->mark + hlen + body;
}

/* Take the reply back (before an error reply, or a client being closed). */
static void deferred_cancel(struct conn *c, const struct deferred *d)
{
    c->out.len = d->mark;
}

/* The keys already in a KEYS reply: open addressing over (offset, length)
   of each key's bytes in c->out, which stay there until the reply is
   done (offsets survive the buffer's reallocation). */
struct seen {
    struct seen_slot {
        size_t off; /* 0: empty (a key's bytes never start the buffer) */
        size_t len;
    } * slot;
    size_t mask, used;
};

static size_t seen_home(const struct seen *s, const void *key, size_t len)
{
    return (size_t)XXH3_64bits(key, len) & s->mask;
}

/* Double the table (or make the first). false when out of memory. */
static bool seen_grow(struct seen *s, const char *out)
{
    size_t n = s->slot ? (s->mask + 1) * 2 : 1024;
    struct seen_slot *slot = calloc(n, sizeof(*slot));
    if (!slot)
        return false;
    struct seen old = *s;
    s->slot = slot;
    s->mask = n - 1;
    for (size_t i = 0; old.slot && i <= old.mask; i++) {
        if (!old.slot[i].off)
            continue;
        size_t j = seen_home(s, out + old.slot[i].off, old.slot[i].len);
        while (s->slot[j].off)
            j = (j + 1) & s->mask;
        s->slot[j] = old.slot[i];
    }
    free(old.slot);
    return true;
}

/* The slot of key: where it is, or the empty slot where it would go. */
static struct seen_slot *seen_find(const struct seen *s, const char *out, kvs_slice key)
{
    size_t j = seen_home(s, key.data, key.len);
    for (;; j = (j + 1) & s->mask) {
        struct seen_slot *e = &s->slot[j];
        if (!e->off || (e->len == key.len && memcmp(out + e->off, key.data, key.len) == 0))
            return e;
    }
}

/* What a step does with the keys it meets. */
struct listing {
    struct conn *c;
    kvs_slice pattern; /* MATCH; data NULL: every key */
    bool typed_out;    /* TYPE names a type no kvs key has */
    size_t n;          /* keys in the reply */
    struct seen *seen; /* KEYS: the keys listed so far; SCAN: NULL */
};

static int list_key(void *ctx, kvs_slice key, const kvs_slice *value, int64_t expire_at)
{
    (void)expire_at;
    (void)value;
    struct listing *l = ctx;
    struct conn *c = l->c;
    if (l->typed_out || (l->pattern.data && !glob_match(l->pattern, key, false)))
        return 0;
    struct seen_slot *e = NULL;
    if (l->seen) {
        bool full = !l->seen->slot || l->seen->used * 2 >= l->seen->mask + 1;
        if (full && !seen_grow(l->seen, c->out.data)) {
            c->flags |= CONN_KILL;
            return KVS_ECLOSED;
        }
        e = seen_find(l->seen, c->out.data, key);
        if (e->off)
            return 0; /* met again in this pass */
    }
    reply_bulk(c, key.data, key.len);
    /* Over the output limit or out of memory: the client is being closed,
       so the step ends (KVS_ECLOSED is only the signal to stop). */
    if (c->flags & CONN_KILL)
        return KVS_ECLOSED;
    if (e) {
        *e = (struct seen_slot){c->out.len - 2 - key.len, key.len};
        l->seen->used++;
    }
    l->n++;
    return 0;
}

/* A SCAN cursor as Redis reads it, with strtoul(): the argument up to its
   first NUL byte, no leading space, an optional sign (a '-' wraps round,
   as strtoul's does), decimal digits to the end, at most 2^64 - 1; the
   empty string is cursor 0. */
static bool parse_cursor(kvs_slice arg, uint64_t *out)
{
    const unsigned char *p = arg.data;
    const unsigned char *nul = arg.len ? memchr(p, '\0', arg.len) : NULL;
    size_t len = nul ? (size_t)(nul - p) : arg.len, i = 0;
    if (len == 0) {
        *out = 0;
        return true;
    }
    if (strchr(" \t\n\v\f\r", p[0]))
        return false;
    bool neg = p[0] == '-';
    if (p[0] == '+' || p[0] == '-')
        i++;
    if (i == len)
        return false;
    uint64_t v = 0;
    for (; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        unsigned digit = p[i] - '0';
        if (v > (UINT64_MAX - digit) / 10)
            return false;
        v = v * 10 + digit;
    }
    *out = neg ? 0 - v : v;
    return true;
}

/* SCAN cursor [MATCH pattern] [COUNT count] [TYPE type], with Redis 7.0's
   checks in its order: the cursor, then each option as it comes (a later
   one of a kind wins). Every kvs key is a string: TYPE string (in any
   case) lists keys, any other name none, as Redis 7.0 answers a type it
   does not know. */
void cmd_scan(struct conn *c, size_t argc, const kvs_slice *argv)
{
    uint64_t cursor;
    if (!parse_cursor(argv[1], &cursor)) {
        reply_error(c, "ERR invalid cursor");
        return;
    }
    struct listing l = {.c = c};
    long long count = SCAN_COUNT;
    for (size_t i = 2; i < argc; i += 2) {
        bool has_value = argc - i >= 2;
        if (slice_is_cstr(argv[i], "count") && has_value) {
            if (slice_to_ll(argv[i + 1], &count) != 0) {
                reply_error(c, "ERR value is not an integer or out of range");
                return;
            }
            if (count < 1) {
                reply_error(c, "ERR syntax error");
                return;
            }
        } else if (slice_is_cstr(argv[i], "match") && has_value) {
            l.pattern = glob_is_all(argv[i + 1]) ? (kvs_slice){NULL, 0} : argv[i + 1];
        } else if (slice_is_cstr(argv[i], "type") && has_value) {
            l.typed_out = !slice_is_cstr(argv[i + 1], "string");
        } else {
            reply_error(c, "ERR syntax error");
            return;
        }
    }
    struct deferred d;
    if (!deferred_begin(c, &d, SCAN_HEAD_MAX))
        return;
    uint64_t next = 0;
    int rc = kvs_db_scan(db_of(c), cursor, (size_t)count, 0, list_key, &l, &next);
    if (rc != 0) {
        deferred_cancel(c, &d);
        if (!(c->flags & CONN_KILL))
            reply_kvs_error(c, rc);
        return;
    }
    char digits[24], head[SCAN_HEAD_MAX];
    int dlen = snprintf(digits, sizeof(digits), "%" PRIu64, next);
    int hlen = snprintf(head, sizeof(head), "*2\r\n$%d\r\n%s\r\n*%zu\r\n", dlen, digits, l.n);
    deferred_end(c, &d, head, (size_t)hlen);
}

/* KEYS pattern: every key matching, each once, in no particular order. */
void cmd_keys(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    struct seen seen = {NULL, 0, 0};
    struct listing l = {.c = c, .seen = &seen};
    if (!glob_is_all(argv[1]))
        l.pattern = argv[1];
    struct deferred d;
    if (!deferred_begin(c, &d, REPLY_HEADER_MAX))
        return;
    uint64_t cursor = 0;
    int rc;
    do
        rc = kvs_db_scan(db_of(c), cursor, KEYS_STEP, 0, list_key, &l, &cursor);
    while (rc == 0 && cursor != 0);
    free(seen.slot);
    if (rc != 0) {
        deferred_cancel(c, &d);
        if (!(c->flags & CONN_KILL))
            reply_kvs_error(c, rc);
        return;
    }
    char head[REPLY_HEADER_MAX];
    int hlen = snprintf(head, sizeof(head), "*%zu\r\n", l.n);
    deferred_end(c, &d, head, (size_t)hlen);
}

/* A cursor to start RANDOMKEY's step from: xorshift64* per thread, seeded
   from the kernel. */
static uint64_t random_cursor(void)
{
    static _Thread_local uint64_t state;
    if (state == 0 && (getentropy(&state, sizeof(state)) != 0 || state == 0)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        state = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) | 1;
    }
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * UINT64_C(0x2545F4914F6CDD1D);
}

struct pick {
    kvs_buf *key;
    bool found;
    uint64_t skip; /* keys to pass over before the one picked */
};

static int pick_first(void *ctx, kvs_slice key, const kvs_slice *value, int64_t expire_at)
{
    (void)expire_at;
    (void)value;
    struct pick *p = ctx;
    if (p->found)
        return 0;
    if (p->skip > 0) {
        p->skip--;
        return 0;
    }
    p->found = true;
    return kvs_buf_set(p->key, key.data, key.len);
}

/* Up to this many keys RANDOMKEY picks one uniformly by walking them all:
   with few keys the gaps of a random cursor are too uneven (two keys could
   be picked 98 times in 100 against 2). */
#define RANDOMKEY_SMALL 64

/* A uniform pick among the few keys of a small store: 1 picked, 0 none
   (the store is not small, or keys expired under the walk), or an error. */
static int pick_small(kvs_db *db, struct pick *p)
{
    kvs_stats st;
    int rc = kvs_db_stats(db, &st);
    if (rc != 0 || st.keys == 0 || st.keys > RANDOMKEY_SMALL)
        return rc;
    p->skip = random_cursor() % st.keys;
    uint64_t cursor = 0;
    do {
        rc = kvs_db_scan(db, cursor, RANDOMKEY_SMALL, 0, pick_first, p, &cursor);
    } while (rc == 0 && cursor != 0 && !p->found);
    p->skip = 0;
    return rc != 0 ? rc : p->found;
}

/* RANDOMKEY: nil when the store is empty. A uniform pick in a small store,
   else the first key of a step from a random cursor: a key after a long gap in the engine's order
   is more likely than one after a short gap, as with Redis's buckets. */
void cmd_randomkey(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    (void)argv;
    struct pick p = {&c->w->scratch, false, 0};
    int small = pick_small(db_of(c), &p);
    if (small != 0) {
        if (small < 0)
            reply_kvs_error(c, small);
        else
            reply_bulk(c, p.key->data, p.key->len);
        return;
    }
    uint64_t start = random_cursor(), cursor = start;
    bool wrapped = start == 0;
    for (;;) {
        uint64_t next = 0;
        int rc = kvs_db_scan(db_of(c), cursor, 1, 0, pick_first, &p, &next);
        if (rc != 0) {
            reply_kvs_error(c, rc);
            return;
        }
        if (p.found) {
            reply_bulk(c, p.key->data, p.key->len);
            return;
        }
        if (next == 0) {
            if (wrapped) {
                reply_nil(c); /* a whole pass met no key */
                return;
            }
            wrapped = true;
        }
        cursor = next;
    }
}
