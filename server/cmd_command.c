/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * COMMAND LIST [FILTERBY MODULE name|ACLCAT category|PATTERN pattern] and
 * COMMAND GETKEYS, as Redis 7.0 answers them: the list names subcommands
 * as "parent|sub", the keys come from the table's key positions. Run on
 * the connection's worker thread.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "conn.h"
#include "glob.h"
#include "reply.h"

/* The ACL categories kvs can tell from a command's flags; any other
   category lists nothing. */
static bool in_category(const struct command *cmd, kvs_slice cat)
{
    if (slice_is(cat, "read"))
        return cmd->flags & CMD_READONLY;
    if (slice_is(cat, "write"))
        return cmd->flags & CMD_WRITE;
    if (slice_is(cat, "fast"))
        return cmd->flags & CMD_FAST;
    if (slice_is(cat, "slow"))
        return !(cmd->flags & CMD_FAST);
    if (slice_is(cat, "admin") || slice_is(cat, "dangerous"))
        return cmd->flags & CMD_ADMIN;
    return false;
}

enum filter { F_NONE, F_MODULE, F_ACLCAT, F_PATTERN };

static bool name_matches(enum filter f, kvs_slice arg, const struct command *cmd, const char *name)
{
    switch (f) {
    case F_NONE:
        return true;
    case F_MODULE:
        return false; /* kvs loads no modules */
    case F_ACLCAT:
        return in_category(cmd, arg);
    case F_PATTERN:
        return glob_match(arg, kvs_slice_str(name), true);
    }
    return false;
}

void command_list_sub(struct conn *c, size_t argc, const kvs_slice *argv)
{
    enum filter f = F_NONE;
    kvs_slice arg = {NULL, 0};
    if (argc == 5 && slice_is(argv[2], "filterby")) {
        if (slice_is(argv[3], "module"))
            f = F_MODULE;
        else if (slice_is(argv[3], "aclcat"))
            f = F_ACLCAT;
        else if (slice_is(argv[3], "pattern"))
            f = F_PATTERN;
        arg = argv[4];
    }
    if (argc != 2 && f == F_NONE) {
        reply_error(c, "ERR syntax error");
        return;
    }
    /* Counted first, then written: the array's length leads. */
    size_t mark = c->out.len, n = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            reply_array(c, n);
        for (size_t i = 0; i < command_count(); i++) {
            const struct command *cmd = command_at(i);
            if (name_matches(f, arg, cmd, cmd->name)) {
                if (pass == 0)
                    n++;
                else
                    reply_bulk_str(c, cmd->name);
            }
            size_t nsubs = 0;
            const struct subcommand *subs = command_subcommands(cmd, &nsubs);
            for (size_t j = 0; j < nsubs; j++) {
                char full[64];
                snprintf(full, sizeof(full), "%s|%s", cmd->name, subs[j].name);
                if (!name_matches(f, arg, cmd, full))
                    continue;
                if (pass == 0)
                    n++;
                else
                    reply_bulk_str(c, full);
            }
        }
    }
    (void)mark;
}

/* COMMAND GETKEYS command [arg ...] */
void command_getkeys_sub(struct conn *c, size_t argc, const kvs_slice *argv)
{
    const struct command *cmd = command_lookup(argv[2]);
    size_t n = argc - 2;
    const kvs_slice *args = argv + 2;
    if (!cmd) {
        reply_error(c, "ERR Invalid command specified");
        return;
    }
    if (cmd->arity > 0 ? n != (size_t)cmd->arity : n < (size_t)-cmd->arity) {
        reply_error(c, "ERR Invalid number of arguments specified for command");
        return;
    }
    if (cmd->first_key <= 0) {
        reply_error(c, "ERR The command has no key arguments");
        return;
    }
    long last = cmd->last_key < 0 ? (long)n + cmd->last_key : cmd->last_key;
    if (last >= (long)n)
        last = (long)n - 1;
    long step = cmd->key_step > 0 ? cmd->key_step : 1;
    size_t count = 0;
    for (long i = cmd->first_key; i <= last; i += step)
        count++;
    reply_array(c, count);
    for (long i = cmd->first_key; i <= last; i += step)
        reply_bulk(c, args[i].data, args[i].len);
}
