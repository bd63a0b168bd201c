/* ctl_table: ddnsctl's output for people.
 *
 * Owns the aligned text tables (a header line, one line per JSON object,
 * columns as wide as their widest cell up to a limit, "-" for null or
 * missing values, long cells shortened with "~"), the "key: value" blocks
 * of one object, and the text form of JSON scalars (times shortened to
 * "YYYY-MM-DD HH:MM:SS" UTC). Output goes to standard output. */
#ifndef CTL_TABLE_H
#define CTL_TABLE_H

#include <jansson.h>

typedef struct ctl_col {
    const char *header;
    const char *key;            /* member of each row; "a.b" not supported */
} ctl_col_t;

/* One line per element of rows (an array of objects). */
void ctl_table_print(const json_t *rows, const ctl_col_t *cols, int ncols);

/* "key: value" lines for the listed keys of obj (label, key pairs). */
void ctl_table_fields(const json_t *obj, const ctl_col_t *cols, int ncols);

/* The text of a scalar (strings as they are, times shortened, arrays of
 * strings joined with ','); "-" for null or absent. Into out. */
void ctl_table_text(const json_t *v, char *out, size_t outlen);

#endif
