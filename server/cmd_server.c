/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Connection and server commands: PING, ECHO, SELECT, QUIT, HELLO, CLIENT,
 * COMMAND, CONFIG, SHUTDOWN. What redis-cli, redis-benchmark and client
 * libraries send on connect is answered here. Run on the connection's
 * worker thread.
 */
#include <stdio.h>
#include <sys/resource.h>

#include "auth.h"
#include "clients.h"
#include "commands.h"
#include "config.h"
#include "conn.h"
#include "errstats.h"
#include "glob.h"
#include "log.h"
#include "repl.h"
#include "reply.h"
#include "worker.h"

void cmd_ping(struct conn *c, size_t argc, const kvs_slice *argv)
{
    if (argc > 2)
        reply_arity_error(c, "ping");
    else if (argc == 2)
        reply_bulk(c, argv[1].data, argv[1].len);
    else
        reply_simple(c, "PONG");
}

void cmd_echo(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    reply_bulk(c, argv[1].data, argv[1].len);
}

/* One database, number 0, as Redis Cluster has. */
void cmd_select(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    long long index;
    if (slice_to_ll(argv[1], &index) != 0 || index < INT32_MIN || index > INT32_MAX)
        reply_error(c, "ERR value is not an integer or out of range");
    else if (index != 0)
        reply_error(c, "ERR DB index is out of range");
    else
        reply_ok(c);
}

void cmd_quit(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    (void)argv;
    reply_ok(c);
    c->flags |= CONN_QUIT;
}

/* SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE]: the same graceful stop as SIGTERM.
   Like Redis, no reply: the client sees the connection close. The stop
   writes a volatile engine's snapshot when its interval is not 0 (as
   Redis saves when save points are set); SAVE writes one first (and a
   failed one refuses the stop, unless FORCE), NOSAVE writes none. */
void cmd_shutdown(struct conn *c, size_t argc, const kvs_slice *argv)
{
    bool save = false, nosave = false, force = false;
    for (size_t i = 1; i < argc; i++) {
        if (slice_is(argv[i], "nosave"))
            nosave = true;
        else if (slice_is(argv[i], "save"))
            save = true;
        else if (slice_is(argv[i], "force"))
            force = true;
        else if (!slice_is(argv[i], "now")) {
            reply_error(c, "ERR syntax error");
            return;
        }
    }
    if (save && nosave) {
        reply_error(c, "ERR syntax error");
        return;
    }
    if (save && persist_save(c->w->srv) != 0 && !force) {
        reply_error(c, "ERR Errors trying to SHUTDOWN. Check logs.");
        return;
    }
    if (nosave)
        atomic_store(&c->w->srv->shutdown_nosave, true);
    log_info("SHUTDOWN%s by client id=%llu",
             save     ? " SAVE"
             : nosave ? " NOSAVE"
                      : "",
             (unsigned long long)c->id);
    server_request_stop(c->w->srv);
    c->flags |= CONN_QUIT;
}

/* Redis's rule for client names: printable ASCII without spaces. */
static bool valid_client_name(kvs_slice name)
{
    const unsigned char *p = name.data;
    for (size_t i = 0; i < name.len; i++) {
        if (p[i] < '!' || p[i] > '~')
            return false;
    }
    return true;
}

/* Set the name, or reply an error. Returns whether it was set. */
static bool set_client_name(struct conn *c, kvs_slice name)
{
    if (!valid_client_name(name)) {
        reply_error(c, "ERR Client names cannot contain spaces, newlines or special characters.");
        return false;
    }
    if (clients_set_name(c, name) != 0) {
        c->flags |= CONN_KILL;
        return false;
    }
    return true;
}

static void client_id(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    (void)argv;
    reply_int(c, (long long)c->id);
}

static void client_getname(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    (void)argv;
    if (c->name.len)
        reply_bulk(c, c->name.data, c->name.len);
    else
        reply_nil(c);
}

static void client_setname(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    if (set_client_name(c, argv[2]))
        reply_ok(c);
}

/* Sent by recent client libraries on connect; accepted and not kept. */
static void client_setinfo(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    if (slice_is(argv[2], "lib-name") || slice_is(argv[2], "lib-ver"))
        reply_ok(c);
    else
        reply_errorf(c, "ERR Unrecognized option '%.*s'", (int)argv[2].len,
                     (const char *)argv[2].data);
}

static void client_help(struct conn *c, size_t argc, const kvs_slice *argv);

static const struct subcommand client_subs[] = {
    {"help", client_help, 2},
    {"id", client_id, 2},
    {"getname", client_getname, 2},
    {"setname", client_setname, 3},
    {"setinfo", client_setinfo, 4},
    /* cmd_client.c */
    {"list", client_list, -2},
    {"info", client_info, 2},
    {"kill", client_kill, -3},
    {"reply", client_reply, 3},
    {"no-evict", client_no_evict, 3},
    {"pause", client_pause, -3},
    {"unpause", client_unpause, 2},
};

/* CLIENT HELP: Redis's lines for the subcommands above (help.c). */
static void client_help(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    (void)argv;
    help_reply_client(c, client_subs, sizeof(client_subs) / sizeof(client_subs[0]));
}

void cmd_client(struct conn *c, size_t argc, const kvs_slice *argv)
{
    subcommand_dispatch(c, "client", client_subs, sizeof(client_subs) / sizeof(client_subs[0]),
                        argc, argv);
}

static const char wrongpass[] = "WRONGPASS invalid username-password pair or user is disabled.";

/* Authenticate as user with pass, as Redis's default user: with no
   password set it takes any password, else only the password. Replies
   WRONGPASS and returns false on failure; replies nothing on success. */
static bool authenticate(struct conn *c, kvs_slice user, kvs_slice pass)
{
    const struct server_config *cfg = &c->w->srv->cfg;
    bool ok = slice_is(user, "default");
    /* Compared even for a wrong user, so that its time tells nothing. */
    bool match = auth_password_matches(cfg, pass);
    if (ok && auth_required(cfg))
        ok = match;
    if (!ok) {
        log_debug("client id=%llu: AUTH failed", (unsigned long long)c->id);
        reply_error(c, wrongpass);
        return false;
    }
    auth_conn_grant(c);
    return true;
}

/* AUTH [username] password, as Redis 6+ answers it for its default user. */
void cmd_auth(struct conn *c, size_t argc, const kvs_slice *argv)
{
    if (argc > 3) {
        reply_error(c, "ERR syntax error");
        return;
    }
    if (argc == 2 && !auth_required(&c->w->srv->cfg)) {
        reply_error(c, "ERR AUTH <password> called without any password configured for the "
                       "default user. Are you sure your configuration is correct?");
        return;
    }
    kvs_slice user = argc == 3 ? argv[1] : (kvs_slice){"default", 7};
    if (authenticate(c, user, argv[argc - 1]))
        reply_ok(c);
}

/* HELLO [protover [AUTH user pass] [SETNAME name]]. kvs speaks RESP2 only.
   AUTH authenticates as the AUTH command does; without it, a client that
   must authenticate gets Redis's NOAUTH text for HELLO. */
void cmd_hello(struct conn *c, size_t argc, const kvs_slice *argv)
{
    if (argc >= 2) {
        long long ver;
        if (slice_to_ll(argv[1], &ver) != 0) {
            reply_error(c, "ERR Protocol version is not an integer or out of range");
            return;
        }
        if (ver != 2) {
            reply_error(c, "NOPROTO unsupported protocol version");
            return;
        }
    }
    kvs_slice name = {NULL, 0};
    const kvs_slice *user = NULL, *pass = NULL;
    for (size_t i = 2; i < argc; i++) {
        if (slice_is(argv[i], "auth") && i + 2 < argc) {
            user = &argv[i + 1];
            pass = &argv[i + 2];
            i += 2;
        } else if (slice_is(argv[i], "setname") && i + 1 < argc) {
            name = argv[++i];
        } else {
            reply_errorf(c, "ERR Syntax error in HELLO option '%.*s'", (int)argv[i].len,
                         (const char *)argv[i].data);
            return;
        }
    }
    if (user && !authenticate(c, *user, *pass))
        return;
    if (!auth_conn_allowed(c)) {
        reply_error(c, "NOAUTH HELLO must be called with the client already authenticated, "
                       "otherwise the HELLO <proto> AUTH <user> <pass> option can be used to "
                       "authenticate the client and select the RESP protocol version at the "
                       "same time");
        return;
    }
    if (name.data && !set_client_name(c, name))
        return;
    reply_array(c, 14);
    reply_bulk_str(c, "server");
    reply_bulk_str(c, "kvs");
    reply_bulk_str(c, "version");
    reply_bulk_str(c, KVS_VERSION);
    reply_bulk_str(c, "proto");
    reply_int(c, 2);
    reply_bulk_str(c, "id");
    reply_int(c, (long long)c->id);
    reply_bulk_str(c, "mode");
    reply_bulk_str(c, "standalone");
    reply_bulk_str(c, "role");
    reply_bulk_str(c, repl_is_replica(c->w->srv->repl) ? "replica" : "master");
    reply_bulk_str(c, "modules");
    reply_array(c, 0);
}

/* COMMAND's view of one command, in Redis 7's ten fields; the last four
   (ACL categories, tips, key specs, subcommands) are empty. */
static void reply_command_info(struct conn *c, const struct command *cmd)
{
    /* In the order Redis lists them. */
    static const struct {
        unsigned flag;
        const char *name;
    } flag_names[] = {
        {CMD_WRITE, "write"},
        {CMD_READONLY, "readonly"},
        {CMD_DENYOOM, "denyoom"},
        {CMD_ADMIN, "admin"},
        {CMD_NOSCRIPT, "noscript"},
        {CMD_LOADING, "loading"},
        {CMD_STALE, "stale"},
        {CMD_SKIP_SLOWLOG, "skip_slowlog"},
        {CMD_FAST, "fast"},
        {CMD_NOAUTH, "no_auth"},
        {CMD_NO_ASYNC_LOADING, "no_async_loading"},
        {CMD_NO_MULTI, "no_multi"},
        {CMD_ALLOW_BUSY, "allow_busy"},
    };
    size_t nflags = 0;
    for (size_t i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++)
        nflags += (cmd->flags & flag_names[i].flag) != 0;
    reply_array(c, 10);
    reply_bulk_str(c, cmd->name);
    reply_int(c, cmd->arity);
    reply_array(c, nflags);
    for (size_t i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++) {
        if (cmd->flags & flag_names[i].flag)
            reply_simple(c, flag_names[i].name);
    }
    reply_int(c, cmd->first_key);
    reply_int(c, cmd->last_key);
    reply_int(c, cmd->key_step);
    for (int i = 0; i < 4; i++)
        reply_array(c, 0);
}

static void command_count_sub(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    (void)argv;
    reply_int(c, (long long)command_count());
}

/* Documentation is not served: an empty reply (redis-cli then shows no
   per-command hints). */
static void command_docs(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    (void)argv;
    reply_array(c, 0);
}

/* COMMAND INFO [name ...]: every command when none is named, as Redis 7. */
static void command_info_sub(struct conn *c, size_t argc, const kvs_slice *argv)
{
    if (argc == 2) {
        reply_array(c, command_count());
        for (size_t i = 0; i < command_count(); i++)
            reply_command_info(c, command_at(i));
        return;
    }
    reply_array(c, argc - 2);
    for (size_t i = 2; i < argc; i++) {
        const struct command *cmd = command_lookup(argv[i]);
        if (cmd)
            reply_command_info(c, cmd);
        else
            reply_nil(c);
    }
}

static const struct subcommand command_subs[] = {
    {"count", command_count_sub, 2},      {"docs", command_docs, -2},
    {"info", command_info_sub, -2},       {"list", command_list_sub, -2},
    {"getkeys", command_getkeys_sub, -4},
};

void cmd_command(struct conn *c, size_t argc, const kvs_slice *argv)
{
    if (argc == 1) {
        command_info_sub(c, 2, argv);
        return;
    }
    subcommand_dispatch(c, "command", command_subs, sizeof(command_subs) / sizeof(command_subs[0]),
                        argc, argv);
}

/* CONFIG GET, SET, REWRITE and HELP are cmd_config.c's. */
static void config_resetstat(struct conn *c, size_t argc, const kvs_slice *argv)
{
    (void)argc;
    (void)argv;
    server_stats_reset(c->w->srv);
    errstats_reset();
    reply_ok(c);
}

static const struct subcommand config_subs[] = {
    {"get", config_cmd_get, -3},        {"set", config_cmd_set, -4},
    {"resetstat", config_resetstat, 2}, {"rewrite", config_cmd_rewrite, 2},
    {"help", config_cmd_help, 2},
};

const struct subcommand *command_subcommands(const struct command *cmd, size_t *n)
{
    if (cmd->proc == cmd_client) {
        *n = sizeof(client_subs) / sizeof(client_subs[0]);
        return client_subs;
    }
    if (cmd->proc == cmd_command) {
        *n = sizeof(command_subs) / sizeof(command_subs[0]);
        return command_subs;
    }
    if (cmd->proc == cmd_config) {
        *n = sizeof(config_subs) / sizeof(config_subs[0]);
        return config_subs;
    }
    *n = 0;
    return NULL;
}

void cmd_config(struct conn *c, size_t argc, const kvs_slice *argv)
{
    subcommand_dispatch(c, "config", config_subs, sizeof(config_subs) / sizeof(config_subs[0]),
                        argc, argv);
}
