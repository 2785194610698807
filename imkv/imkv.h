/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libimkv - a thread-safe in-memory hash table of C strings, with the
 * classic ht_* interface.
 *
 * One table per process. Keys and values are NUL-terminated strings; the
 * library copies both. Every function may be called from any thread at the
 * same time as the others, except ht_init() and ht_destroy(), which must
 * not run beside any other call.
 *
 * Memory: ht_init() maps all the memory the library will use for items and
 * buckets, IMKV_MEMORY bytes (from the environment, a decimal number; 64 MiB
 * when unset, enough for about 590,000 items of 16-byte keys and 32-byte
 * values). Inserts and deletes work inside it; an insert fails only when it
 * is full. Besides it, each thread that calls ht_lookup() owns one buffer
 * (malloc), freed when the thread exits or by ht_destroy().
 *
 * Building: cc -Wall -Werror -pthread -O app.c -I<dir of imkv.h> <libimkv.a>
 * (libimkv needs nothing but libc and pthreads).
 */
#ifndef IMKV_H
#define IMKV_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    HT_INIT_OK,
    HT_INIT_FAILED,
    HT_INSERT_OK,
    HT_INSERT_FAILED,
    HT_FOUND,
    HT_NOTFOUND,
    HT_DELETE_OK,
    HT_DELETE_FAILED
} HT_RET;

/*
 * ht_init - create the table with at least num_buckets buckets (rounded up
 * to a power of two, and to 1024 at least; the table doubles as it fills
 * while memory allows) and map IMKV_MEMORY bytes for it.
 * Returns HT_INIT_OK, or HT_INIT_FAILED: already initialised, num_buckets
 * 0 or over 2^30, IMKV_MEMORY not a number of bytes from 2 MiB, the bucket
 * array not fitting in it, or no memory.
 */
HT_RET ht_init(unsigned int num_buckets);

/*
 * ht_insert - store a copy of val under a copy of key, replacing the value
 * if key is there. Returns HT_INSERT_OK, or HT_INSERT_FAILED: not
 * initialised, key or val NULL, or the memory is full (nothing changed;
 * replacing a value needs room for the new one beside the old for a
 * moment, since other threads may be copying the old one).
 */
HT_RET ht_insert(char *key, char *val);

/*
 * ht_lookup - find key. On HT_FOUND, *val points to a NUL-terminated copy
 * of its value in storage that belongs to the calling thread and stays
 * valid until the same thread's next ht_lookup() or ht_destroy(); other
 * threads' writes never change or free it. Returns HT_FOUND, or
 * HT_NOTFOUND (with *val set to NULL when val is not NULL): no such key,
 * not initialised, key or val NULL, or no memory for the copy.
 */
HT_RET ht_lookup(char *key, char **val);

/*
 * ht_delete - remove key. Returns HT_DELETE_OK, or HT_DELETE_FAILED: no
 * such key, not initialised, or key NULL.
 */
HT_RET ht_delete(char *key);

/*
 * ht_destroy - free everything: the table, its memory, and every thread's
 * lookup buffer. Afterwards calls fail as before ht_init(), which may be
 * called again. Does nothing when not initialised.
 */
void ht_destroy(void);

#ifdef __cplusplus
}
#endif
#endif
