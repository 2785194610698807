/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DEBUG, the few subcommands Redis's own tests lean on that make sense
 * for kvs: SET-ACTIVE-EXPIRE 0|1 (pause the active expiry: keys past
 * their time stay stored, unseen, as with Redis's lazy expiry) and
 * SLEEP seconds. Others answer Redis's unknown-subcommand error. Run on
 * the connection's worker thread.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "conn.h"
#include "reply.h"
#include "worker.h"

void cmd_debug(struct conn *c, size_t argc, const kvs_slice *argv)
{
    if (slice_is(argv[1], "set-active-expire") && argc == 3) {
        long long on;
        if (slice_to_ll(argv[2], &on) != 0) {
            reply_error(c, "ERR value is not an integer or out of range");
            return;
        }
        atomic_store(&c->w->srv->expirer.paused, on == 0);
        reply_ok(c);
        return;
    }
    if (slice_is(argv[1], "sleep") && argc == 3) {
        char buf[32];
        size_t n = argv[2].len < sizeof(buf) - 1 ? argv[2].len : sizeof(buf) - 1;
        memcpy(buf, argv[2].data, n);
        buf[n] = '\0';
        double secs = strtod(buf, NULL);
        if (secs > 0 && secs < 3600) {
            struct timespec ts = {(time_t)secs, (long)((secs - floor(secs)) * 1e9)};
            nanosleep(&ts, NULL);
        }
        reply_ok(c);
        return;
    }
    int len = (int)(argv[1].len > 128 ? 128 : argv[1].len);
    reply_errorf(c, "ERR unknown subcommand '%.*s'. Try DEBUG HELP.", len,
                 (const char *)argv[1].data);
}
