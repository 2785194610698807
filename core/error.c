/* SPDX-License-Identifier: BSD-3-Clause */
/* The kvs error space: names and messages generated from KVS_ERROR_MAP. */
#include <errno.h>

#include "kvs/error.h"

const char *kvs_strerror(int err)
{
    switch (err) {
#define KVS__ERR_MSG(name, value, msg)                                                             \
    case value:                                                                                    \
        return msg;
        KVS_ERROR_MAP(KVS__ERR_MSG)
#undef KVS__ERR_MSG
    }
    return "unknown error";
}

const char *kvs_err_name(int err)
{
    switch (err) {
#define KVS__ERR_NAME(name, value, msg)                                                            \
    case value:                                                                                    \
        return "KVS_" #name;
        KVS_ERROR_MAP(KVS__ERR_NAME)
#undef KVS__ERR_NAME
    }
    return "KVS_UNKNOWN";
}

int kvs_err_from_errno(int errnum)
{
    switch (errnum) {
    case 0:
        return KVS_OK;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return KVS_ENOSPC;
    case ENOMEM:
        return KVS_ENOMEM;
    case EACCES:
    case EPERM:
    case EROFS:
        return KVS_EACCES;
    case EINVAL:
        return KVS_EINVAL;
    default:
        return KVS_EIO;
    }
}
