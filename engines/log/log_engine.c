/* Placeholder until the engine lands: every call answers KVS_ENOTSUP. */
#include "kvs/engine.h"

static int nop_open(const char *dir, const kvs_options *opts, struct kvs_db **dbp, char *why)
{
    (void)dir;
    (void)opts;
    (void)dbp;
    kvs__why(why, "engine not built yet");
    return KVS_ENOTSUP;
}

const struct kvs_engine kvs__log_engine = {
    .abi = KVS_ENGINE_ABI,
    .name = "kvs",
    .open = nop_open,
};
