/* prov_csv: the CSV dialect of batch input files (docs/PROVISIONING.md).
 *
 * Owns splitting one physical line into fields and reading the header line
 * into a column map. One record is one line (LF or CRLF); fields are
 * separated by ',' and may be quoted with '"' (a quote inside a quoted field
 * is written '""'); blanks around unquoted fields are ignored. Nothing here
 * allocates. */
#ifndef PROV_CSV_H
#define PROV_CSV_H

#include <stddef.h>

#define PROV_CSV_MAX_FIELDS 16

/* The columns the tool knows; anything else in the header is an error. */
enum prov_col {
    PROV_COL_MAC = 0,
    PROV_COL_SERIAL,
    PROV_COL_MODEL,
    PROV_COL_NAME,
    PROV_COL_KID,   /* public files only */
    PROV_COL_ZONE,  /* public files only */
    PROV_COL_GENERATION, /* public files only, optional (absent: generation 0) */
    PROV_COL_N,
};

/* prov_csv_header() modes. */
#define PROV_CSV_INPUT 0  /* batch and derive input: mac, serial, model[, name] */
#define PROV_CSV_PUBLIC 1 /* the public file of 'derive': six columns and
                             optionally generation */

typedef struct prov_csv_header {
    int col[PROV_COL_N]; /* field index of each column, -1 when absent */
    size_t nfields;      /* fields every data line must have */
} prov_csv_header_t;

/* The column's name as written in the header ("mac", "serial", ...). */
const char *prov_csv_col_name(int col);

/* Splits line[0..len) (without its line end) into at most max_fields
 * fields. The unescaped text of each field is written, NUL-terminated, into
 * scratch (which must hold at least len + max_fields bytes) and fields[i]
 * points to it. Returns 0 and *nfields, or -1 with a static reason in *why
 * (unterminated quote, text after a closing quote, a quote inside an
 * unquoted field, too many fields). */
int prov_csv_split(const char *line, size_t len, char *scratch, size_t scratch_len,
                   char **fields, size_t max_fields, size_t *nfields, const char **why)
    __attribute__((warn_unused_result));

/* Reads the header fields (case-insensitive column names) into h. In mode
 * PROV_CSV_INPUT the columns mac, serial and model are required and name is
 * optional; in PROV_CSV_PUBLIC mac, serial, model, name, kid and zone are
 * all required and generation is optional (a public file written before
 * secret generations has none). Unknown, empty or repeated column names are
 * errors, described in err. */
int prov_csv_header(char *const *fields, size_t n, int mode, prov_csv_header_t *h, char *err,
                    size_t errlen) __attribute__((warn_unused_result));

/* Writes s as one CSV field to out (quoted when it holds ',', '"', a blank
 * at either end or a line break; not NUL-terminated). Returns 0 and the
 * byte count in *written, or -1 when outlen is too small. */
int prov_csv_field(const char *s, char *out, size_t outlen, size_t *written)
    __attribute__((warn_unused_result));

#endif
