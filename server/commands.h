/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The command table: every command kvs-server answers, as data.
 *
 * As in Redis, an entry is {name, handler, arity, flags, key positions};
 * arity counts the command name, and a negative arity -N means "at least
 * N". The dispatcher checks arity before a handler runs, so handlers index
 * argv without checking argc against it. Names are looked up through a
 * small hash index built once at startup: no string compare per entry.
 *
 * Handlers run on the connection's worker thread; they append exactly one
 * reply to the connection (or set CONN_QUIT/CONN_KILL) and never block on
 * anything but the store.
 */
#ifndef KVS_SERVER_COMMANDS_H
#define KVS_SERVER_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>

#include "kvs/slice.h"

struct conn;
struct worker;

typedef void cmd_proc(struct conn *c, size_t argc, const kvs_slice *argv);

/* Flags as Redis 7 reports them in COMMAND (their names, in Redis's
   order, are in cmd_server.c), and kvs's own CMD_BATCHED. */
enum cmd_flag {
    CMD_WRITE = 1u << 0,             /* may change the store */
    CMD_READONLY = 1u << 1,          /* reads the store */
    CMD_DENYOOM = 1u << 2,           /* may grow the store */
    CMD_ADMIN = 1u << 3,             /* server administration */
    CMD_NOSCRIPT = 1u << 4,          /* not allowed in scripts */
    CMD_LOADING = 1u << 5,           /* allowed while the data set loads */
    CMD_STALE = 1u << 6,             /* allowed on a replica with stale data */
    CMD_FAST = 1u << 7,              /* O(1) or O(argc) */
    CMD_NOAUTH = 1u << 8,            /* allowed before AUTH under --requirepass */
    CMD_NO_MULTI = 1u << 9,          /* not allowed inside MULTI */
    CMD_ALLOW_BUSY = 1u << 10,       /* allowed while a script runs */
    CMD_NO_ASYNC_LOADING = 1u << 11, /* refused while a replica loads in the background */
    CMD_SKIP_SLOWLOG = 1u << 12,     /* not shown in the slow log (EXEC) */
    /* kvs's own, not reported: with argc fitting batch_arity (and
       batch_if, if any) the command is an unconditional write queued in
       the worker's batch of the turn (worker.h), answered once the batch
       is applied. See command_batched(). */
    CMD_BATCHED = 1u << 16,
};

struct command {
    const char *name; /* lower case, as COMMAND and error messages show it */
    cmd_proc *proc;
    int arity;
    unsigned flags;                    /* enum cmd_flag */
    int first_key, last_key, key_step; /* as COMMAND reports them */
    /* CMD_BATCHED only: the argc, as an arity (3: exactly 3; -2: at least
       2), for which the command is batched. The arguments from first_key
       on must also come in whole key_step groups (MSET's key/value
       pairs), and batch_if, when not NULL, must accept them (SET k v and
       SET k v EX t are batched, SET with other options is not). */
    int batch_arity;
    bool (*batch_if)(size_t argc, const kvs_slice *argv);
};

/* Build the lookup index. Main thread, before any worker starts. */
void commands_init(void);

/* The command named name, in any case, or NULL. */
const struct command *command_lookup(kvs_slice name);

/* Walk the table (COMMAND, COMMAND COUNT). */
size_t command_count(void);
const struct command *command_at(size_t i);

/* Whether cmd, with these arguments, is a batched write (CMD_BATCHED):
   the one rule that conn.c (which pauses a connection with queued writes
   for anything else) and the handlers (which queue or run) both follow.
   Authentication is the caller's to check. */
bool command_batched(const struct command *cmd, size_t argc, const kvs_slice *argv);

/* Execute one parsed command; argc >= 1. cmd is command_lookup(argv[0]),
   looked up once by the caller (NULL: unknown). c->cmd is cmd while its
   handler runs. */
void commands_execute(struct conn *c, const struct command *cmd, size_t argc,
                      const kvs_slice *argv);

/* A command's subcommands (CONFIG GET, CLIENT ID...): small tables
   searched in order; arity counts argv from the command's name. */
struct subcommand {
    const char *name; /* lower case */
    cmd_proc *proc;
    int arity;
};

/* Whether the reply that c's command appended to c->out from out_len on
   is an error (INFO commandstats' failed_calls). */
bool command_failed(const struct conn *c, size_t out_len);

/* The subcommands of cmd (CLIENT, COMMAND, CONFIG), *n of them, or NULL
   (cmd_server.c). */
const struct subcommand *command_subcommands(const struct command *cmd, size_t *n);

/* Run the subcommand named by argv[1] of parent (e.g. "config"), or reply
   Redis's errors for an unknown one or a wrong count. argc >= 2. */
void subcommand_dispatch(struct conn *c, const char *parent, const struct subcommand *subs,
                         size_t nsubs, size_t argc, const kvs_slice *argv);

/* "ERR wrong number of arguments for 'NAME' command", where NAME is a
   command or "command|subcommand". */
void reply_arity_error(struct conn *c, const char *name);

/* Whether s equals the ASCII text lit, ignoring case. */
bool slice_is(kvs_slice s, const char *lit);

/* Whether s, up to its first NUL byte, equals lit ignoring case: how
   Redis compares option names (strcasecmp() on the argument). */
bool slice_is_cstr(kvs_slice s, const char *lit);

/* Parse s as a decimal long long exactly as Redis's string2ll() does: no
   spaces, no '+', no leading zeros, no "-0". Returns 0 or -1. */
int slice_to_ll(kvs_slice s, long long *out);

/* The handlers (cmd_keys.c, cmd_expire.c, cmd_scan.c, cmd_server.c,
   cmd_info.c). */
cmd_proc cmd_get, cmd_set, cmd_del, cmd_exists, cmd_mget, cmd_mset, cmd_dbsize, cmd_flushdb;
cmd_proc cmd_setex, cmd_psetex, cmd_getex, cmd_expire, cmd_pexpire, cmd_expireat, cmd_pexpireat;
cmd_proc cmd_ttl, cmd_pttl, cmd_expiretime, cmd_pexpiretime, cmd_persist;
cmd_proc cmd_type, cmd_strlen, cmd_scan, cmd_keys, cmd_randomkey;
cmd_proc cmd_ping, cmd_echo, cmd_select, cmd_quit, cmd_shutdown, cmd_client, cmd_hello, cmd_auth;
cmd_proc cmd_command, cmd_config, cmd_info;
/* cmd_string.c, cmd_lcs.c, cmd_bits.c */
cmd_proc cmd_append, cmd_incr, cmd_decr, cmd_incrby, cmd_decrby, cmd_incrbyfloat, cmd_getset;
cmd_proc cmd_getdel, cmd_getrange, cmd_setrange, cmd_setnx, cmd_msetnx, cmd_lcs;
cmd_proc cmd_setbit, cmd_getbit, cmd_bitcount, cmd_bitpos, cmd_bitop;
/* cmd_rename.c */
cmd_proc cmd_rename, cmd_renamenx, cmd_copy;
/* cmd_client.c, monitor.c */
cmd_proc cmd_reset, cmd_monitor, cmd_debug;
cmd_proc client_list, client_info, client_kill, client_reply, client_no_evict, client_pause;
cmd_proc client_unpause;
/* cmd_command.c: COMMAND LIST and COMMAND GETKEYS */
cmd_proc command_list_sub, command_getkeys_sub;
/* cmd_multi.c */
cmd_proc cmd_multi, cmd_exec, cmd_discard, cmd_watch, cmd_unwatch;

/* Every INFO section, as INFO writes them, into text (emptied first): for
   the HTTP /_info route. Worker thread. Returns 0, KVS_ENOMEM, or the
   engine's error. */
int info_text_all(struct worker *w, kvs_buf *text);
/* cmd_persist.c */
cmd_proc cmd_save, cmd_bgsave, cmd_lastsave;
/* cmd_repl.c */
cmd_proc cmd_psync, cmd_sync, cmd_replconf, cmd_replicaof, cmd_role, cmd_wait;

/* SET with options (all but SET k v): cmd_expire.c. */
cmd_proc set_with_options;

/* The SET options that the batch takes, SET k v EX|PX|EXAT|PXAT t: an
   unconditional write with a time (the table's batch_if for SET). */
bool set_batchable(size_t argc, const kvs_slice *argv);

#endif
