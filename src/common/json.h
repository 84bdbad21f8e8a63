#pragma once

#include <stdio.h>

/* Write s as a JSON string literal (quotes, backslashes and control bytes escaped);
 * NULL is written as "". */
void json_str(FILE *f, const char *s);
