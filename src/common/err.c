#include "common/err.h"

const char *err_str(int code)
{
    switch (code) {
    case ERR_OK: return "success";
    case ERR_NOMEM: return "out of memory";
    case ERR_INVAL: return "invalid argument";
    case ERR_MALFORMED: return "malformed data";
    case ERR_SPACE: return "not enough space";
    case ERR_NOTFOUND: return "not found";
    case ERR_IO: return "I/O error";
    case ERR_EXISTS: return "already exists";
    case ERR_PARSE: return "parse error";
    case ERR_LIMIT: return "limit exceeded";
    case ERR_UNSUPPORTED: return "not supported";
    default: return "unknown error";
    }
}
