#pragma once

/*
 * Error codes. Functions return 0 (or a non-negative count/length) on success and a
 * negative ERR_* value on failure. err_str() gives a static description.
 */
enum {
    ERR_OK = 0,
    ERR_NOMEM = -1,      /* allocation failed */
    ERR_INVAL = -2,      /* invalid argument or input */
    ERR_MALFORMED = -3,  /* malformed wire data */
    ERR_SPACE = -4,      /* output buffer too small */
    ERR_NOTFOUND = -5,   /* no such item */
    ERR_IO = -6,         /* system call failed; see errno */
    ERR_EXISTS = -7,     /* duplicate item */
    ERR_PARSE = -8,      /* text could not be parsed */
    ERR_LIMIT = -9,      /* a configured or protocol limit was exceeded */
    ERR_UNSUPPORTED = -10,
};

/* Static, never NULL, description of an ERR_* code. Thread-safe. */
const char *err_str(int code);
