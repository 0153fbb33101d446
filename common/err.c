/* err.c: the error table's names and messages, errno translation. */
#include <errno.h>
#include <stdio.h>

#include "common.h"

struct err_entry
{
    int code;
    const char *name;
    const char *msg;
};

static const struct err_entry err_table[] = {
#define ERR_ROW(name, msg) {name, #name, msg},
    MOOR_ERRORS(ERR_ROW)
#undef ERR_ROW
};

static const struct err_entry *err_find(int err)
{
    if (err <= MOOR__ERR_FIRST || err >= MOOR__ERR_LAST) {
        return NULL;
    }
    return &err_table[err - MOOR__ERR_FIRST - 1];
}

const char *moor_strerror(int err)
{
    if (err == MOOR_OK) {
        return "ok";
    }
    const struct err_entry *e = err_find(err);
    return e != NULL ? e->msg : "unknown error";
}

const char *moor_errname(int err)
{
    if (err == MOOR_OK) {
        return "MOOR_OK";
    }
    const struct err_entry *e = err_find(err);
    return e != NULL ? e->name : "MOOR_EUNKNOWN";
}

int moor_err_from_errno(int errnum)
{
    switch (errnum) {
    case 0:
        return MOOR_OK;
    case ENOSPC:
    case EDQUOT:
        return MOOR_ENOSPC;
    case ENOMEM:
        return MOOR_ENOMEM;
    case ENOENT:
        return MOOR_ENOENT;
    case EEXIST:
        return MOOR_EEXIST;
    case EINVAL:
        return MOOR_EINVAL;
    case EAGAIN:
        return MOOR_EAGAIN;
    case ETIMEDOUT:
        return MOOR_ETIMEDOUT;
    case ECONNREFUSED:
    case ECONNRESET:
    case EPIPE:
        return MOOR_ECONN;
    default:
        return MOOR_EIO;
    }
}

void moor_errmsg_set(char *errmsg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, MOOR_ERRMSG_SIZE, fmt, ap);
    va_end(ap);
}
