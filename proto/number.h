/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Decimal numbers on the wire, for the RESP codec only (private to proto/).
 *
 * Parsing is as strict as Redis's string2ll(): an optional '-', then digits
 * with no leading zero, no '+', no spaces, and no overflow. Formatting writes
 * digits without printf, since an encoder runs once per reply.
 */
#ifndef KVS_PROTO_NUMBER_H
#define KVS_PROTO_NUMBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest text resp__fmt_ll() writes: "-9223372036854775808". */
#define RESP__LL_MAX_DIGITS 20

/* Parse n bytes at s as a long long. Returns false for anything else. */
bool resp__parse_ll(const char *s, size_t n, long long *out);

/* Write v in decimal at dst (no NUL). Returns the number of bytes. */
size_t resp__fmt_u64(char *dst, uint64_t v);
size_t resp__fmt_ll(char *dst, long long v);

#endif
