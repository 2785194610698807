/* SPDX-License-Identifier: BSD-3-Clause */
/* The in-memory index of the kvs engine; see index.h for the design. */
#include "index.h"

#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

#include "kvs/error.h"

#define MIN_SLOTS 64

uint64_t kvs__klog_test_salt;

/* A salt for a new index, different at each call and each start. */
static uint64_t new_salt(void)
{
    if (kvs__klog_test_salt)
        return kvs__klog_test_salt;
    static atomic_uint_least64_t counter;
    uint64_t salt;
    if (getrandom(&salt, sizeof(salt), GRND_NONBLOCK) != (ssize_t)sizeof(salt)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        salt = (uint64_t)ts.tv_nsec * UINT64_C(0x9e3779b97f4a7c15) ^ (uint64_t)ts.tv_sec;
    }
    return salt + atomic_fetch_add(&counter, UINT64_C(0x9e3779b97f4a7c15));
}

static struct klog_table *table_new(size_t slots, uint64_t salt)
{
    /* calloc: large tables come from mmap and their pages stay untouched
       (and unbacked) until used. Zero is an empty slot. */
    struct klog_table *t = calloc(1, sizeof(*t) + slots * sizeof(struct klog_slot));
    if (t) {
        t->mask = slots - 1;
        t->shift = 64 - (unsigned)__builtin_ctzll(slots);
        t->salt = salt;
    }
    return t;
}

static void table_free(struct klog_retired *r)
{
    free((struct klog_table *)r);
}

static struct klog_table *cur(struct klog_index *ix)
{
    /* The writer is the only one that changes the pointer. */
    return atomic_load_explicit(&ix->table, memory_order_relaxed);
}

int klog_index_init(struct klog_index *ix, struct klog_epoch *epoch)
{
    struct klog_table *t = table_new(MIN_SLOTS, new_salt());
    if (!t)
        return KVS_ENOMEM;
    atomic_init(&ix->table, t);
    ix->epoch = epoch;
    ix->used = ix->live = 0;
    ix->opening = false;
    return 0;
}

void klog_index_destroy(struct klog_index *ix)
{
    free(cur(ix));
    atomic_store_explicit(&ix->table, NULL, memory_order_relaxed);
}

static uint64_t slot_loc(const struct klog_slot *s)
{
    return atomic_load_explicit(&s->loc, memory_order_acquire);
}

static uint64_t slot_hash(const struct klog_slot *s)
{
    return atomic_load_explicit(&s->hash, memory_order_relaxed);
}

int klog_index_find(const struct klog_table *t, uint64_t hash, klog_match_fn match, void *ctx,
                    uint64_t *loc)
{
    for (size_t i = klog_index_home(t, hash);; i = (i + 1) & t->mask) {
        uint64_t l = slot_loc(&t->slot[i]);
        if (l == KLOG_LOC_EMPTY)
            return 0;
        if (!klog_loc_live(l) || slot_hash(&t->slot[i]) != hash)
            continue;
        int rc = match(ctx, l);
        if (rc < 0)
            return rc;
        if (rc) {
            *loc = l;
            return 1;
        }
    }
}

uint64_t klog_index_first_loc(const struct klog_table *t, uint64_t hash)
{
    const struct klog_slot *s = &t->slot[klog_index_home(t, hash)];
    uint64_t l = slot_loc(s);
    return klog_loc_live(l) && slot_hash(s) == hash ? l : KLOG_LOC_EMPTY;
}

/* Writer-side probe: the slot holding the key, or else (*free_slot) the
   first reusable slot of its chain. */
static int probe_locked(struct klog_table *t, uint64_t hash, klog_match_fn match, void *ctx,
                        struct klog_slot **found, struct klog_slot **free_slot)
{
    *found = *free_slot = NULL;
    for (size_t i = klog_index_home(t, hash);; i = (i + 1) & t->mask) {
        struct klog_slot *s = &t->slot[i];
        uint64_t l = slot_loc(s);
        if (l == KLOG_LOC_EMPTY) {
            if (!*free_slot)
                *free_slot = s;
            return 0;
        }
        if (!klog_loc_live(l)) {
            if (!*free_slot)
                *free_slot = s;
            continue;
        }
        if (slot_hash(s) != hash)
            continue;
        int rc = match(ctx, l);
        if (rc < 0)
            return rc;
        if (rc) {
            *found = s;
            return 0;
        }
    }
}

/* Copy the live slots of old into a table of the given size. */
static struct klog_table *rehash(const struct klog_table *old, size_t slots)
{
    struct klog_table *t = table_new(slots, old->salt);
    if (!t)
        return NULL;
    for (size_t i = 0; i <= old->mask; i++) {
        uint64_t l = slot_loc(&old->slot[i]);
        if (!klog_loc_live(l))
            continue;
        uint64_t h = slot_hash(&old->slot[i]);
        size_t j = klog_index_home(t, h);
        while (atomic_load_explicit(&t->slot[j].loc, memory_order_relaxed) != KLOG_LOC_EMPTY)
            j = (j + 1) & t->mask;
        atomic_store_explicit(&t->slot[j].hash, h, memory_order_relaxed);
        atomic_store_explicit(&t->slot[j].loc, l, memory_order_relaxed);
    }
    return t;
}

static void publish_locked(struct klog_index *ix, struct klog_table *t)
{
    struct klog_table *old = cur(ix);
    /* release: the slots written above are visible to whoever loads t. */
    atomic_store_explicit(&ix->table, t, memory_order_release);
    if (ix->opening)
        table_free(&old->retired);
    else
        klog_epoch_retire(ix->epoch, &old->retired, table_free);
}

/* Make room for n more used slots: grow, or rehash away removed marks. */
static int make_room_locked(struct klog_index *ix, size_t more)
{
    struct klog_table *t = cur(ix);
    size_t slots = t->mask + 1;
    if ((ix->used + more) * 10 <= slots * 7)
        return 0;
    /* After a rehash the load is at most one half, so rehashes are paid for
       by at least 0.2 * slots insertions each. */
    size_t want = MIN_SLOTS;
    while (want < (ix->live + more) * 2)
        want *= 2;
    struct klog_table *n = rehash(t, want);
    if (!n)
        return KVS_ENOMEM;
    publish_locked(ix, n);
    ix->used = ix->live;
    return 0;
}

int klog_index_lookup_locked(struct klog_index *ix, uint64_t hash, klog_match_fn match, void *ctx,
                             bool room, struct klog_index_pos *pos)
{
    struct klog_slot *found, *free_slot;
    int rc = probe_locked(cur(ix), hash, match, ctx, &found, &free_slot);
    if (rc < 0)
        return rc;
    pos->found = found != NULL;
    pos->slot = found ? found : free_slot;
    pos->fresh = !found && slot_loc(free_slot) == KLOG_LOC_EMPTY;
    if (!room || !pos->fresh)
        return 0;
    /* A new slot would get used: the table may need to grow first. A fresh
       table has no removed marks and lacks the key, so the first empty
       slot of the chain is the one. */
    struct klog_table *before = cur(ix);
    rc = make_room_locked(ix, 1);
    if (rc < 0)
        return rc;
    struct klog_table *t = cur(ix);
    if (t != before) {
        size_t i = klog_index_home(t, hash);
        while (slot_loc(&t->slot[i]) != KLOG_LOC_EMPTY)
            i = (i + 1) & t->mask;
        pos->slot = &t->slot[i];
    }
    return 0;
}

int klog_index_reserve_locked(struct klog_index *ix, size_t n)
{
    return make_room_locked(ix, n);
}

void klog_index_put_locked(struct klog_index *ix, const struct klog_index_pos *pos, uint64_t hash,
                           uint64_t loc, uint64_t *old)
{
    struct klog_slot *s = pos->slot;
    if (pos->found) {
        *old = slot_loc(s);
        atomic_store_explicit(&s->loc, loc, memory_order_release);
        return;
    }
    *old = KLOG_LOC_EMPTY;
    if (pos->fresh)
        ix->used++;
    ix->live++;
    /* hash before location: see the header. */
    atomic_store_explicit(&s->hash, hash, memory_order_relaxed);
    atomic_store_explicit(&s->loc, loc, memory_order_release);
}

void klog_index_remove_locked(struct klog_index *ix, const struct klog_index_pos *pos,
                              uint64_t *old)
{
    *old = slot_loc(pos->slot);
    atomic_store_explicit(&pos->slot->loc, KLOG_LOC_REMOVED, memory_order_release);
    ix->live--;
}

bool klog_index_move_locked(struct klog_index *ix, uint64_t hash, uint64_t from, uint64_t to)
{
    struct klog_table *t = cur(ix);
    for (size_t i = klog_index_home(t, hash);; i = (i + 1) & t->mask) {
        uint64_t l = slot_loc(&t->slot[i]);
        if (l == KLOG_LOC_EMPTY)
            return false;
        /* A location names one record, so equal locations mean the same
           key: no key comparison needed. */
        if (l == from) {
            atomic_store_explicit(&t->slot[i].loc, to, memory_order_release);
            return true;
        }
    }
}

/*
 * A step covers the keys of the home slots [b0, b1) whose order is at least
 * the cursor (b0 is the cursor's home; after a shrink the cursor may lie
 * inside it). Such a key sits in its home slot or after it, up to the
 * first empty slot (slots never empty within a table), so the step reads
 * slots b0 to b1 - 1, choosing b1 as it goes, and then on to the first
 * empty slot, wrapping past the end of the table. In the first part a key
 * whose home is past its slot wrapped around from the end: it belongs to
 * the last step, where the second part finds it, reading again slots of
 * the first part if that step began at slot 0 (and then only such keys,
 * so that no key is visited twice).
 */
int klog_index_scan(const struct klog_table *t, uint64_t cursor, size_t want, size_t max_slots,
                    klog_visit_fn visit, void *ctx, uint64_t *next)
{
    size_t n = t->mask + 1, b0 = (size_t)(cursor >> t->shift), b1 = n, counted = 0;
    for (size_t v = b0; v < n; v++) {
        uint64_t l = slot_loc(&t->slot[v]);
        if (klog_loc_live(l)) {
            uint64_t h = slot_hash(&t->slot[v]);
            uint64_t o = klog_index_order(t, h);
            if (o >= cursor && (size_t)(o >> t->shift) <= v) {
                int rc = visit(ctx, h, l);
                if (rc < 0)
                    return rc;
                counted += (size_t)rc;
            }
        }
        if (counted >= want || v - b0 + 1 >= max_slots) {
            b1 = v + 1;
            break;
        }
    }
    /* Keys below end: with b1 == n, every key from the cursor up. */
    uint64_t end = b1 == n ? 0 : (uint64_t)b1 << t->shift;
    for (size_t v = b1; v < b1 + n; v++) {
        const struct klog_slot *s = &t->slot[v & t->mask];
        uint64_t l = slot_loc(s);
        if (l == KLOG_LOC_EMPTY)
            break;
        if (!klog_loc_live(l))
            continue;
        uint64_t h = slot_hash(s);
        uint64_t o = klog_index_order(t, h);
        /* Back in the slots of the first part: only the keys it left. */
        if (v >= b0 + n && (size_t)(o >> t->shift) <= (v & t->mask))
            continue;
        if (o >= cursor && (end == 0 || o < end)) {
            int rc = visit(ctx, h, l);
            if (rc < 0)
                return rc;
        }
    }
    *next = end;
    return 0;
}

bool klog_index_drop_locked(struct klog_index *ix, uint64_t hash, uint64_t from)
{
    if (!klog_index_move_locked(ix, hash, from, KLOG_LOC_REMOVED))
        return false;
    ix->live--;
    return true;
}

struct klog_table *klog_index_table_new(void)
{
    return table_new(MIN_SLOTS, new_salt());
}

void klog_index_table_free(struct klog_table *t)
{
    free(t);
}

void klog_index_reset_locked(struct klog_index *ix, struct klog_table *t)
{
    publish_locked(ix, t);
    ix->used = ix->live = 0;
}

void klog_index_set_opening_locked(struct klog_index *ix, bool opening)
{
    ix->opening = opening;
}
