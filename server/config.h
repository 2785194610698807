/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kvs-server's configuration: one table of options, each a directive of
 * the configuration file (redis.conf's form, config_file.h) and a
 * --option of the command line, read into a struct server_config at
 * startup; and what CONFIG GET, SET and REWRITE need of that table.
 *
 * Names are Redis's where redis.conf has a directive for the same thing
 * (port, bind, dir, appendfsync, maxclients...), kvs's own otherwise
 * (engine, threads, http-*...); kvs's earlier option names stay as aliases
 * (--data-dir for dir, --fsync for appendfsync...). Redis directives kvs
 * has no use for (save, daemonize...) are accepted and ignored with a
 * warning, so that a Redis user's file mostly works.
 *
 * config_parse() runs on the main thread at startup; the config_opt_*
 * functions on any worker, under config_lock().
 */
#ifndef KVS_SERVER_CONFIG_H
#define KVS_SERVER_CONFIG_H

#include "config_file.h"
#include "server.h"

enum config_result {
    CONFIG_OK,   /* run the server */
    CONFIG_EXIT, /* --help or --version was printed: exit 0 */
    CONFIG_BAD,  /* a one-line error was printed to stderr: exit 1 */
};

/* Parse "kvs-server [CONFIG_FILE] [--option value ...]" into cfg: the
   defaults, then the file's directives, then the command line's. Strings
   kept are copied into cfg; the text of --requirepass and --masterauth is
   then overwritten in argv, out of ps. */
enum config_result config_parse(struct server_config *cfg, int argc, char **argv);

/* Release what config_parse() allocated (passwords wiped first). */
void config_free(struct server_config *cfg);

/* ---- for CONFIG GET, SET and REWRITE (cmd_config.c) ---- */

/* Serialises CONFIG SET, GET and REWRITE. */
void config_lock(void);
void config_unlock(void);

size_t config_opt_count(void);
const char *config_opt_name(size_t i);
/* The other name of option i (kvs's earlier option name, Redis's old
   one), or NULL. */
const char *config_opt_alias(size_t i);
/* Whether CONFIG SET can change option i while the server runs. */
bool config_opt_live(size_t i);

/* Option i's value as CONFIG GET shows it, appended to out. */
void config_opt_get(struct server *srv, size_t i, struct text *out);

/* CONFIG SET of option i to val (len bytes): with apply false only
   checked. Returns 0, or -1 with Redis's reason text in why ("argument
   must be between 1 and 500 inclusive"). */
int config_opt_set(struct server *srv, size_t i, const char *val, size_t len, bool apply, char *why,
                   size_t size);

/* CONFIG REWRITE: the running configuration into srv->cfg.config_file.
   Returns 0, or -1 with why. */
int config_write_back(struct server *srv, char *why, size_t size);

/* The CONFIG subcommands (cmd_config.c), run on the connection's worker;
   and CLIENT HELP (help.c), over CLIENT's subcommand table. */
struct conn;
struct subcommand;
void config_cmd_get(struct conn *c, size_t argc, const kvs_slice *argv);
void config_cmd_set(struct conn *c, size_t argc, const kvs_slice *argv);
void config_cmd_rewrite(struct conn *c, size_t argc, const kvs_slice *argv);
void config_cmd_help(struct conn *c, size_t argc, const kvs_slice *argv);
void help_reply_client(struct conn *c, const struct subcommand *subs, size_t nsubs);

#endif
