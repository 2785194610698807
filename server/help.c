/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * CLIENT HELP: Redis's text for each CLIENT subcommand that kvs has, in
 * the order of CLIENT's table (commands.h's struct subcommand), so that
 * the help lists what kvs does and no more. Run on the connection's
 * worker.
 */
#include <string.h>

#include "commands.h"
#include "config.h"
#include "conn.h"
#include "reply.h"

/* Redis 7.0's lines for each subcommand: the usage, then its description
   (lines beginning with four spaces), NULL-terminated. */
static const struct {
    const char *name;
    const char *lines[16];
} client_texts[] = {
    {"caching",
     {"CACHING (YES|NO)",
      "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.", NULL}},
    {"getredir",
     {"GETREDIR", "    Return the client ID we are redirecting to when tracking is enabled.",
      NULL}},
    {"getname", {"GETNAME", "    Return the name of the current connection.", NULL}},
    {"id", {"ID", "    Return the ID of the current connection.", NULL}},
    {"info", {"INFO", "    Return information about the current client connection.", NULL}},
    {"kill",
     {"KILL <ip:port>", "    Kill connection made from <ip:port>.",
      "KILL <option> <value> [<option> <value> [...]]",
      "    Kill connections. Options are:", "    * ADDR (<ip:port>|<unixsocket>:0)",
      "      Kill connections made from the specified address",
      "    * LADDR (<ip:port>|<unixsocket>:0)",
      "      Kill connections made to specified local address",
      "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)", "      Kill connections by type.",
      "    * USER <username>", "      Kill connections authenticated by <username>.",
      "    * SKIPME (YES|NO)", "      Skip killing current connection (default: yes).", NULL}},
    {"list",
     {"LIST [options ...]", "    Return information about client connections. Options:",
      "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)", "      Return clients of specified type.",
      NULL}},
    {"unpause", {"UNPAUSE", "    Stop the current client pause, resuming traffic.", NULL}},
    {"pause",
     {"PAUSE <timeout> [WRITE|ALL]",
      "    Suspend all, or just write, clients for <timeout> milliseconds.", NULL}},
    {"reply",
     {"REPLY (ON|OFF|SKIP)", "    Control the replies sent to the current connection.", NULL}},
    {"setname", {"SETNAME <name>", "    Assign the name <name> to the current connection.", NULL}},
    {"setinfo",
     {"SETINFO <option> <value>", "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
      NULL}},
    {"unblock",
     {"UNBLOCK <clientid> [TIMEOUT|ERROR]", "    Unblock the specified blocked client.", NULL}},
    {"tracking",
     {"TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
      "         [OPTIN] [OPTOUT] [NOLOOP]", "    Control server assisted client side caching.",
      NULL}},
    {"trackinginfo",
     {"TRACKINGINFO", "    Report tracking status for the current connection.", NULL}},
    {"no-evict",
     {"NO-EVICT (ON|OFF)", "    Protect current client connection from eviction.", NULL}},
    {"help", {"HELP", "    Prints this help.", NULL}},
};

/* The lines of subcommand name, or NULL. */
static const char *const *texts_of(const char *name)
{
    for (size_t i = 0; i < sizeof(client_texts) / sizeof(client_texts[0]); i++) {
        if (strcmp(client_texts[i].name, name) == 0)
            return client_texts[i].lines;
    }
    return NULL;
}

/* The subcommands in Redis's order of help, HELP last. */
void help_reply_client(struct conn *c, const struct subcommand *subs, size_t nsubs)
{
    size_t n = 1;
    for (size_t i = 0; i < nsubs; i++) {
        const char *const *lines = texts_of(subs[i].name);
        for (size_t k = 0; lines && lines[k]; k++)
            n++;
        if (!lines)
            n++;
    }
    reply_array(c, n);
    reply_simple(c, "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
    for (size_t j = 0; j <= nsubs; j++) {
        /* HELP last, wherever the table has it. */
        size_t i = j;
        if (j == nsubs) {
            for (i = 0; i < nsubs && strcmp(subs[i].name, "help") != 0; i++)
                ;
            if (i == nsubs)
                break;
        } else if (strcmp(subs[i].name, "help") == 0) {
            continue;
        }
        const char *const *lines = texts_of(subs[i].name);
        for (size_t k = 0; lines && lines[k]; k++)
            reply_simple(c, lines[k]);
        if (!lines) {
            char upper[64];
            size_t k = 0;
            for (; subs[i].name[k] && k < sizeof(upper) - 1; k++) {
                char ch = subs[i].name[k];
                upper[k] = (char)(ch >= 'a' && ch <= 'z' ? ch - 'a' + 'A' : ch);
            }
            upper[k] = '\0';
            reply_simple(c, upper);
        }
    }
}
