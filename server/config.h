/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kvs-server's command line: options into a struct server_config, and the
 * --help and --version texts. Main thread, at startup.
 */
#ifndef KVS_SERVER_CONFIG_H
#define KVS_SERVER_CONFIG_H

#include "server.h"

enum config_result {
    CONFIG_OK,   /* run the server */
    CONFIG_EXIT, /* --help or --version was printed: exit 0 */
    CONFIG_BAD,  /* a one-line error was printed to stderr: exit 1 */
};

/* Parse argv into cfg (defaults for what is not given). argv strings are
   borrowed for the life of the process; the text of --requirepass is
   copied and then overwritten in argv. */
enum config_result config_parse(struct server_config *cfg, int argc, char **argv);

/* Release what config_parse() allocated (the password, wiped first). */
void config_free(struct server_config *cfg);

#endif
