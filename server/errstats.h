/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * INFO errorstats and total_error_replies: error replies counted by their
 * first word ("ERR", "WRONGPASS", "EXECABORT"...), as Redis 7 counts them,
 * at most ERRSTATS_MAX kinds (Redis's limit, after which it stops adding
 * kinds). One table for the process under a mutex: errors are rare next to
 * replies. Any thread.
 */
#ifndef KVS_SERVER_ERRSTATS_H
#define KVS_SERVER_ERRSTATS_H

#include <stddef.h>
#include <stdint.h>

#include "kvs/slice.h"

#define ERRSTATS_MAX 128

/* Count an error reply; text is the reply without its '-'. */
void errstats_add(const char *text, size_t len);

/* "errorstat_ERR:count=N\r\n" lines appended to out; the total into
 *total (either may be NULL). Returns 0 or KVS_ENOMEM. */
int errstats_info(kvs_buf *out, uint64_t *total);

/* CONFIG RESETSTAT. */
void errstats_reset(void);

#endif
