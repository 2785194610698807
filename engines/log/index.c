/* The in-memory index of the kvs engine; see index.h for the design. */
#include "index.h"

#include <stdlib.h>

#include "kvs/error.h"

#define MIN_SLOTS 64

static struct log_table *table_new(size_t slots)
{
    /* calloc: large tables come from mmap and their pages stay untouched
       (and unbacked) until used. Zero is an empty slot. */
    struct log_table *t = calloc(1, sizeof(*t) + slots * sizeof(struct log_slot));
    if (t)
        t->mask = slots - 1;
    return t;
}

static void table_free(struct log_retired *r)
{
    free((struct log_table *)r);
}

static struct log_table *cur(struct log_index *ix)
{
    /* The writer is the only one that changes the pointer. */
    return atomic_load_explicit(&ix->table, memory_order_relaxed);
}

int log_index_init(struct log_index *ix, struct log_epoch *epoch)
{
    struct log_table *t = table_new(MIN_SLOTS);
    if (!t)
        return KVS_ENOMEM;
    atomic_init(&ix->table, t);
    ix->epoch = epoch;
    ix->used = ix->live = 0;
    return 0;
}

void log_index_destroy(struct log_index *ix)
{
    free(cur(ix));
    atomic_store_explicit(&ix->table, NULL, memory_order_relaxed);
}

static uint64_t slot_loc(const struct log_slot *s)
{
    return atomic_load_explicit(&s->loc, memory_order_acquire);
}

static uint64_t slot_hash(const struct log_slot *s)
{
    return atomic_load_explicit(&s->hash, memory_order_relaxed);
}

int log_index_find(const struct log_table *t, uint64_t hash, log_match_fn match, void *ctx,
                   uint64_t *loc)
{
    for (size_t i = hash & t->mask;; i = (i + 1) & t->mask) {
        uint64_t l = slot_loc(&t->slot[i]);
        if (l == LOG_LOC_EMPTY)
            return 0;
        if (!log_loc_live(l) || slot_hash(&t->slot[i]) != hash)
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

uint64_t log_index_first_loc(const struct log_table *t, uint64_t hash)
{
    const struct log_slot *s = &t->slot[hash & t->mask];
    uint64_t l = slot_loc(s);
    return log_loc_live(l) && slot_hash(s) == hash ? l : LOG_LOC_EMPTY;
}

/* Writer-side probe: the slot holding the key, or else (*free_slot) the
   first reusable slot of its chain. */
static int probe_locked(struct log_table *t, uint64_t hash, log_match_fn match, void *ctx,
                        struct log_slot **found, struct log_slot **free_slot)
{
    *found = *free_slot = NULL;
    for (size_t i = hash & t->mask;; i = (i + 1) & t->mask) {
        struct log_slot *s = &t->slot[i];
        uint64_t l = slot_loc(s);
        if (l == LOG_LOC_EMPTY) {
            if (!*free_slot)
                *free_slot = s;
            return 0;
        }
        if (!log_loc_live(l)) {
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
static struct log_table *rehash(const struct log_table *old, size_t slots)
{
    struct log_table *t = table_new(slots);
    if (!t)
        return NULL;
    for (size_t i = 0; i <= old->mask; i++) {
        uint64_t l = slot_loc(&old->slot[i]);
        if (!log_loc_live(l))
            continue;
        uint64_t h = slot_hash(&old->slot[i]);
        size_t j = h & t->mask;
        while (atomic_load_explicit(&t->slot[j].loc, memory_order_relaxed) != LOG_LOC_EMPTY)
            j = (j + 1) & t->mask;
        atomic_store_explicit(&t->slot[j].hash, h, memory_order_relaxed);
        atomic_store_explicit(&t->slot[j].loc, l, memory_order_relaxed);
    }
    return t;
}

static void publish_locked(struct log_index *ix, struct log_table *t)
{
    struct log_table *old = cur(ix);
    /* release: the slots written above are visible to whoever loads t. */
    atomic_store_explicit(&ix->table, t, memory_order_release);
    log_epoch_retire(ix->epoch, &old->retired, table_free);
}

/* Make room for n more used slots: grow, or rehash away removed marks. */
static int make_room_locked(struct log_index *ix, size_t more)
{
    struct log_table *t = cur(ix);
    size_t slots = t->mask + 1;
    if ((ix->used + more) * 10 <= slots * 7)
        return 0;
    /* After a rehash the load is at most one half, so rehashes are paid for
       by at least 0.2 * slots insertions each. */
    size_t want = MIN_SLOTS;
    while (want < (ix->live + more) * 2)
        want *= 2;
    struct log_table *n = rehash(t, want);
    if (!n)
        return KVS_ENOMEM;
    publish_locked(ix, n);
    ix->used = ix->live;
    return 0;
}

int log_index_lookup_locked(struct log_index *ix, uint64_t hash, log_match_fn match, void *ctx,
                            bool room, struct log_index_pos *pos)
{
    struct log_slot *found, *free_slot;
    int rc = probe_locked(cur(ix), hash, match, ctx, &found, &free_slot);
    if (rc < 0)
        return rc;
    pos->found = found != NULL;
    pos->slot = found ? found : free_slot;
    pos->fresh = !found && slot_loc(free_slot) == LOG_LOC_EMPTY;
    if (!room || !pos->fresh)
        return 0;
    /* A new slot would get used: the table may need to grow first. A fresh
       table has no removed marks and lacks the key, so the first empty
       slot of the chain is the one. */
    struct log_table *before = cur(ix);
    rc = make_room_locked(ix, 1);
    if (rc < 0)
        return rc;
    struct log_table *t = cur(ix);
    if (t != before) {
        size_t i = hash & t->mask;
        while (slot_loc(&t->slot[i]) != LOG_LOC_EMPTY)
            i = (i + 1) & t->mask;
        pos->slot = &t->slot[i];
    }
    return 0;
}

int log_index_reserve_locked(struct log_index *ix, size_t n)
{
    return make_room_locked(ix, n);
}

void log_index_put_locked(struct log_index *ix, const struct log_index_pos *pos, uint64_t hash,
                          uint64_t loc, uint64_t *old)
{
    struct log_slot *s = pos->slot;
    if (pos->found) {
        *old = slot_loc(s);
        atomic_store_explicit(&s->loc, loc, memory_order_release);
        return;
    }
    *old = LOG_LOC_EMPTY;
    if (pos->fresh)
        ix->used++;
    ix->live++;
    /* hash before location: see the header. */
    atomic_store_explicit(&s->hash, hash, memory_order_relaxed);
    atomic_store_explicit(&s->loc, loc, memory_order_release);
}

void log_index_remove_locked(struct log_index *ix, const struct log_index_pos *pos, uint64_t *old)
{
    *old = slot_loc(pos->slot);
    atomic_store_explicit(&pos->slot->loc, LOG_LOC_REMOVED, memory_order_release);
    ix->live--;
}

bool log_index_move_locked(struct log_index *ix, uint64_t hash, uint64_t from, uint64_t to)
{
    struct log_table *t = cur(ix);
    for (size_t i = hash & t->mask;; i = (i + 1) & t->mask) {
        uint64_t l = slot_loc(&t->slot[i]);
        if (l == LOG_LOC_EMPTY)
            return false;
        /* A location names one record, so equal locations mean the same
           key: no key comparison needed. */
        if (l == from) {
            atomic_store_explicit(&t->slot[i].loc, to, memory_order_release);
            return true;
        }
    }
}

struct log_table *log_index_table_new(void)
{
    return table_new(MIN_SLOTS);
}

void log_index_table_free(struct log_table *t)
{
    free(t);
}

void log_index_reset_locked(struct log_index *ix, struct log_table *t)
{
    publish_locked(ix, t);
    ix->used = ix->live = 0;
}
