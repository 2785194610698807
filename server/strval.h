/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Strings as values: Redis's limits and number formats, shared by the
 * string and bit commands (cmd_string.c, cmd_bits.c, cmd_lcs.c).
 */
#ifndef KVS_SERVER_STRVAL_H
#define KVS_SERVER_STRVAL_H

#include <stddef.h>

#include "kvs/slice.h"

/* Redis's proto-max-bulk-len: the largest string a command may build. */
#define STRING_MAX_BYTES ((size_t)512 * 1024 * 1024)

/* Room for a long double as text (Redis's MAX_LONG_DOUBLE_CHARS). */
#define STRING_LD_CHARS (5 * 1024)

/* Parse s as Redis's string2ld() does. Returns 0 or -1. */
int slice_to_ld(kvs_slice s, long double *out);

/* Format v as Redis's ld2string() does for INCRBYFLOAT (17 decimals,
   trailing zeros dropped) into buf; returns the length, 0 if it does not
   fit. */
size_t ld_to_text(long double v, char *buf, size_t size);

#endif
