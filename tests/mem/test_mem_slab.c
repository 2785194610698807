/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The mem engine's slab allocator (engines/mem/slab.h): size classes,
 * slots and pages going back to where they came from, pages moving between
 * classes, large items, the memory limit and the figures. The threaded
 * case is in scenarios.c (kmem_scn_slab_threads).
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engines/mem/slab.h"
#include "kvs/error.h"
#include "mem/scenarios.h"

#define MiB ((size_t)1 << 20)

TestSuite(mem_slab, .timeout = 120);

static struct kmem_slab *fixed(size_t limit, size_t page)
{
    struct kmem_slab_config cfg = {.limit = limit, .page_size = page};
    struct kmem_slab *s = NULL;
    cr_assert_eq(kmem_slab_create(&cfg, &s), 0);
    return s;
}

static struct kmem_slab *growable(size_t limit, size_t chunk)
{
    struct kmem_slab_config cfg = {.limit = limit, .chunk_size = chunk};
    struct kmem_slab *s = NULL;
    cr_assert_eq(kmem_slab_create(&cfg, &s), 0);
    return s;
}

static struct kmem_slab_stats stats(struct kmem_slab *s)
{
    struct kmem_slab_stats st;
    kmem_slab_stats(s, &st);
    return st;
}

Test(mem_slab, refuses_bad_configurations)
{
    struct kmem_slab *s = NULL;
    struct kmem_slab_config bad[] = {
        {.limit = MiB},                            /* under two pages */
        {.limit = 64 * MiB, .page_size = 3 * MiB}, /* not a power of two */
        {.limit = 64 * MiB, .page_size = 4096},    /* under 64 KiB */
        {.limit = 64 * MiB, .factor = 3},          /* factor out of range */
        {.limit = 64 * MiB, .factor = 1.01},
        {.limit = 64 * MiB, .min_size = 8},         /* smallest class too small */
        {.limit = 64 * MiB, .chunk_size = 3 * MiB}, /* chunk not a power of two */
        {.limit = 64 * MiB, .chunk_size = 2 * MiB}, /* chunk under four pages */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(kmem_slab_create(&bad[i], &s), KVS_EINVAL, "configuration %zu", i);
    kmem_slab_destroy(NULL);
}

Test(mem_slab, classes_grow_by_the_factor_up_to_half_a_page)
{
    struct kmem_slab *s = fixed(16 * MiB, 0);
    struct kmem_slab_stats st = stats(s);
    cr_assert_eq(st.page_size, MiB);
    cr_assert_gt(st.nclasses, 30);
    cr_assert_eq(st.cls[0].size, KMEM_SLAB_MIN_SIZE);
    cr_assert_eq(st.cls[st.nclasses - 1].size, MiB / 2);
    cr_assert_eq(kmem_slab_max_class(s), MiB / 2);
    for (unsigned i = 1; i < st.nclasses; i++) {
        size_t a = st.cls[i - 1].size, b = st.cls[i].size;
        cr_assert_eq(b % 8, 0, "class %u: %zu bytes", i, b);
        cr_assert_gt(b, a);
        if (i < st.nclasses - 1) /* the last class is capped at half a page */
            cr_assert(b >= a * 1.24 && b <= a * 1.25 + 8, "class %u: %zu after %zu", i, b, a);
        cr_assert_eq(st.cls[i].per_page, MiB / b);
    }
    /* An allocation takes the smallest class that holds it. */
    cr_assert_eq(kmem_slab_footprint(s, 1), 48);
    cr_assert_eq(kmem_slab_footprint(s, 48), 48);
    cr_assert_eq(kmem_slab_footprint(s, 49), 64); /* 48 * 1.25, rounded up to 8 */
    cr_assert_eq(kmem_slab_footprint(s, MiB / 2), MiB / 2);
    cr_assert_eq(kmem_slab_footprint(s, MiB / 2 + 1), MiB);
    cr_assert_eq(kmem_slab_footprint(s, 3 * MiB + 5), 4 * MiB);
    cr_assert_eq(kmem_slab_footprint(s, 0), 0);
    cr_assert_null(kmem_slab_alloc(s, 0));
    kmem_slab_destroy(s);
}

Test(mem_slab, a_freed_slot_is_reused_and_an_empty_page_returns_to_the_pool)
{
    struct kmem_slab *s = fixed(16 * MiB, 0);
    size_t free0 = stats(s).free_pages;
    void *a = kmem_slab_alloc(s, 100);
    void *b = kmem_slab_alloc(s, 100);
    cr_assert(a && b && a != b);
    cr_assert_eq((uintptr_t)a % 8, 0);
    struct kmem_slab_stats st = stats(s);
    cr_assert_eq(st.free_pages, free0 - 1);
    cr_assert_eq(st.requested, 200);
    cr_assert_eq(st.allocated, 2 * kmem_slab_footprint(s, 100));
    kmem_slab_free(s, a, 100);
    cr_assert_eq(kmem_slab_alloc(s, 97), a, "the freed slot comes back first");
    kmem_slab_free(s, a, 97);
    kmem_slab_free(s, b, 100);
    st = stats(s);
    cr_assert_eq(st.free_pages, free0, "the empty page is back in the pool");
    cr_assert_eq(st.requested, 0);
    for (unsigned i = 0; i < st.nclasses; i++)
        cr_assert_eq(st.cls[i].pages, 0);
    kmem_slab_free(s, NULL, 100);
    kmem_slab_destroy(s);
}

/* Fill an arena with items of one size until it refuses; returns them. */
static void **fill(struct kmem_slab *s, size_t size, size_t *n)
{
    size_t cap = 1024, count = 0;
    void **v = malloc(cap * sizeof(*v));
    cr_assert_not_null(v);
    for (;;) {
        void *p = kmem_slab_alloc(s, size);
        if (!p)
            break;
        memset(p, 0x5a, size < 64 ? size : 64);
        if (count == cap) {
            cap *= 2;
            v = realloc(v, cap * sizeof(*v));
            cr_assert_not_null(v);
        }
        v[count++] = p;
    }
    *n = count;
    return v;
}

Test(mem_slab, freeing_small_items_makes_room_for_large_ones)
{
    /* 16 MiB: 16 pages shared by every class. */
    struct kmem_slab *s = fixed(16 * MiB, 0);
    size_t pages = stats(s).pages;
    cr_assert_eq(pages, 16);
    size_t nsmall, nlarge;
    void **small = fill(s, 40, &nsmall);
    cr_assert_geq(nsmall * 48, pages * MiB * 99 / 100, "%zu small items", nsmall);
    cr_assert_eq(stats(s).free_pages, 0);
    for (size_t i = 0; i < nsmall; i++)
        kmem_slab_free(s, small[i], 40);
    cr_assert_eq(stats(s).free_pages, pages);
    /* Every page went back: 4000-byte items take all of them. */
    void **large = fill(s, 4000, &nlarge);
    size_t per_page = MiB / kmem_slab_footprint(s, 4000);
    cr_assert_eq(nlarge, pages * per_page, "%zu items of 4000 bytes", nlarge);
    /* And back again, through runs of pages past the largest class. */
    for (size_t i = 0; i < nlarge; i++)
        kmem_slab_free(s, large[i], 4000);
    void **huge = fill(s, 2 * MiB, &nlarge);
    cr_assert_eq(nlarge, pages / 2);
    for (size_t i = 0; i < nlarge; i++)
        kmem_slab_free(s, huge[i], 2 * MiB);
    struct kmem_slab_stats st = stats(s);
    cr_assert_eq(st.free_pages, pages);
    cr_assert_eq(st.requested, 0);
    free(small);
    free(large);
    free(huge);
    kmem_slab_destroy(s);
}

Test(mem_slab, pages_move_between_classes_while_others_stay_in_use)
{
    struct kmem_slab *s = fixed(16 * MiB, 0);
    /* A class page that stays half used, and one that empties. */
    size_t na, nb;
    void *keep = kmem_slab_alloc(s, 200);
    void **a = fill(s, 1000, &na);
    for (size_t i = 0; i < na; i++)
        kmem_slab_free(s, a[i], 1000);
    /* The pages of 1000-byte items serve 300-byte ones now. */
    void **b = fill(s, 300, &nb);
    size_t per_page = MiB / kmem_slab_footprint(s, 300);
    cr_assert_eq(nb, 15 * per_page, "%zu items of 300 bytes", nb);
    for (size_t i = 0; i < nb; i++)
        kmem_slab_free(s, b[i], 300);
    kmem_slab_free(s, keep, 200);
    cr_assert_eq(stats(s).free_pages, 16);
    free(a);
    free(b);
    kmem_slab_destroy(s);
}

Test(mem_slab, large_items_take_runs_of_pages_and_give_them_back)
{
    struct kmem_slab *s = fixed(32 * MiB, 0);
    size_t size = 3 * MiB + 12345;
    unsigned char *p = kmem_slab_alloc(s, size);
    cr_assert_not_null(p);
    memset(p, 0xab, size);
    struct kmem_slab_stats st = stats(s);
    cr_assert_eq(st.large_items, 1);
    cr_assert_eq(st.large_pages, 4);
    cr_assert_eq(st.free_pages, 28);
    cr_assert_eq(st.requested, size);
    cr_assert_eq(st.allocated, 4 * MiB);
    /* Small items beside it do not touch its bytes. */
    void *q = kmem_slab_alloc_zero(s, 500);
    cr_assert_not_null(q);
    for (size_t i = 0; i < size; i += 4093)
        cr_assert_eq(p[i], 0xab);
    kmem_slab_free(s, p, size);
    kmem_slab_free(s, q, 500);
    st = stats(s);
    cr_assert_eq(st.free_pages, 32);
    cr_assert_eq(st.large_items, 0);
    /* The whole arena as one item, and one page too many. */
    p = kmem_slab_alloc(s, 32 * MiB);
    cr_assert_not_null(p);
    cr_assert_null(kmem_slab_alloc(s, 1));
    kmem_slab_free(s, p, 32 * MiB);
    cr_assert_null(kmem_slab_alloc(s, 32 * MiB + 1));
    kmem_slab_destroy(s);
}

Test(mem_slab, growable_mode_maps_chunks_up_to_the_limit)
{
    /* 8 MiB chunks (7 pages each) up to 20 MiB of pages. */
    struct kmem_slab *s = growable(20 * MiB, 8 * MiB);
    struct kmem_slab_stats st = stats(s);
    cr_assert_eq(st.mapped, 0);
    size_t n;
    void **v = fill(s, 10000, &n);
    st = stats(s);
    cr_assert_eq(st.pages, 20, "7 + 7 and a last chunk of 6 pages");
    cr_assert_leq(st.pages * MiB, 20 * MiB);
    cr_assert_eq(n, 20 * (MiB / kmem_slab_footprint(s, 10000)));
    cr_assert_eq(kmem_slab_room(s), 0);
    cr_assert_null(kmem_slab_alloc(s, 2 * MiB), "no more room under the limit");
    for (size_t i = 0; i < n; i++)
        kmem_slab_free(s, v[i], 10000);
    st = stats(s);
    cr_assert_eq(st.free_pages, 20);
    cr_assert_eq(kmem_slab_room(s), 20 * MiB);
    free(v);
    kmem_slab_destroy(s);
}

Test(mem_slab, an_item_larger_than_a_chunk_gets_its_own)
{
    /* The engine's largest value: 512 MiB, with room for a key and a header. */
    struct kmem_slab *s = growable((size_t)1 << 30, 64 * MiB);
    size_t size = 512 * MiB + 100;
    unsigned char *p = kmem_slab_alloc(s, size);
    cr_assert_not_null(p);
    p[0] = 1;
    p[size / 2] = 2;
    p[size - 1] = 3;
    struct kmem_slab_stats st = stats(s);
    cr_assert_eq(st.large_items, 1);
    cr_assert_eq(st.large_pages, 513);
    cr_assert_geq(st.mapped, 513 * MiB);
    /* Small items still come from regular chunks beside it. */
    void *q = kmem_slab_alloc(s, 64);
    cr_assert_not_null(q);
    cr_assert(p[0] == 1 && p[size / 2] == 2 && p[size - 1] == 3);
    /* Past the limit: refused, nothing mapped. */
    size_t mapped = stats(s).mapped;
    cr_assert_null(kmem_slab_alloc(s, 600 * MiB));
    cr_assert_eq(stats(s).mapped, mapped);
    kmem_slab_free(s, p, size);
    st = stats(s);
    cr_assert_eq(st.large_items, 0);
    cr_assert_lt(st.mapped, 64 * MiB + 4096, "the item's own chunk was unmapped");
    kmem_slab_free(s, q, 64);
    kmem_slab_destroy(s);
}

Test(mem_slab, fragmentation_counts_rounding_and_half_empty_pages)
{
    struct kmem_slab *s = fixed(16 * MiB, 0);
    struct kmem_slab_stats st = stats(s);
    cr_assert_eq(kmem_slab_fragmentation(&st), 0);
    /* Items that fill their slots exactly, a whole page of them. */
    size_t slot = kmem_slab_footprint(s, 1000), per_page = MiB / slot;
    void **v = malloc(per_page * sizeof(*v));
    for (size_t i = 0; i < per_page; i++)
        v[i] = kmem_slab_alloc(s, slot);
    st = stats(s);
    double full = kmem_slab_fragmentation(&st);
    cr_assert_lt(full, 0.01, "%f", full);
    /* Free every other one: half the page is lost. */
    for (size_t i = 0; i < per_page; i += 2)
        kmem_slab_free(s, v[i], slot);
    st = stats(s);
    double half = kmem_slab_fragmentation(&st);
    cr_assert(half > 0.45 && half < 0.55, "%f", half);
    for (size_t i = 1; i < per_page; i += 2)
        kmem_slab_free(s, v[i], slot);
    free(v);
    kmem_slab_destroy(s);
}

Test(mem_slab, threads)
{
    char msg[256] = "";
    cr_assert(kmem_scn_slab_threads(1, msg, sizeof(msg)), "%s", msg);
}
