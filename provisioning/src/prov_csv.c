/* prov_csv: the CSV dialect of batch input files (see prov_csv.h). */
#include "prov_csv.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const prov_col_names[PROV_COL_N] = {"mac", "serial", "model", "name", "kid",
                                                       "zone", "generation"};

const char *prov_csv_col_name(int col)
{
    return (col >= 0 && col < PROV_COL_N) ? prov_col_names[col] : "?";
}

static int prov_csv_blank(char c)
{
    return c == ' ' || c == '\t';
}

int prov_csv_split(const char *line, size_t len, char *scratch, size_t scratch_len,
                   char **fields, size_t max_fields, size_t *nfields, const char **why)
{
    size_t i = 0, o = 0, n = 0;

    *nfields = 0;
    if (scratch_len < len + max_fields) {
        *why = "line too long";
        return -1;
    }
    for (;;) {
        if (n == max_fields) {
            *why = "too many fields";
            return -1;
        }
        while (i < len && prov_csv_blank(line[i]))
            i++;
        fields[n++] = scratch + o;
        if (i < len && line[i] == '"') {
            i++;
            for (;;) {
                if (i >= len) {
                    *why = "a quoted field is not closed (a '\"' is missing)";
                    return -1;
                }
                if (line[i] == '"') {
                    if (i + 1 < len && line[i + 1] == '"') {
                        scratch[o++] = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                scratch[o++] = line[i++];
            }
            while (i < len && prov_csv_blank(line[i]))
                i++;
            if (i < len && line[i] != ',') {
                *why = "text after the closing '\"' of a quoted field";
                return -1;
            }
        } else {
            size_t start = o;
            while (i < len && line[i] != ',') {
                if (line[i] == '"') {
                    *why = "a '\"' inside an unquoted field (quote the whole field)";
                    return -1;
                }
                scratch[o++] = line[i++];
            }
            while (o > start && prov_csv_blank(scratch[o - 1]))
                o--;
        }
        scratch[o++] = '\0';
        if (i >= len)
            break;
        i++; /* the ',' */
    }
    *nfields = n;
    return 0;
}

int prov_csv_header(char *const *fields, size_t n, int mode, prov_csv_header_t *h, char *err,
                    size_t errlen)
{
    const int ncols = mode == PROV_CSV_PUBLIC ? PROV_COL_N : PROV_COL_KID;
    const char *expected = mode == PROV_CSV_PUBLIC ? "mac, serial, model, name, kid, zone and "
                                                     "optionally generation"
                                                   : "mac, serial, model and optionally name";
    for (int c = 0; c < PROV_COL_N; c++)
        h->col[c] = -1;
    h->nfields = n;
    for (size_t i = 0; i < n; i++) {
        int found = -1;
        for (int c = 0; c < ncols; c++)
            if (strcasecmp(fields[i], prov_col_names[c]) == 0)
                found = c;
        if (fields[i][0] == '\0') {
            snprintf(err, errlen, "header: column %zu has no name (the columns are %s)", i + 1,
                     expected);
            return -1;
        }
        if (found < 0) {
            snprintf(err, errlen, "header: unknown column '%.40s' (the columns are %s)",
                     fields[i], expected);
            return -1;
        }
        if (h->col[found] >= 0) {
            snprintf(err, errlen, "header: column '%s' appears twice (columns %d and %zu)",
                     prov_col_names[found], h->col[found] + 1, i + 1);
            return -1;
        }
        h->col[found] = (int)i;
    }
    for (int c = 0; c < ncols; c++) {
        if (h->col[c] < 0 && c != PROV_COL_GENERATION &&
            (c != PROV_COL_NAME || mode == PROV_CSV_PUBLIC)) {
            snprintf(err, errlen, "header: the required column '%s' is missing (the header "
                     "line names the columns: %s)", prov_col_names[c], expected);
            return -1;
        }
    }
    return 0;
}

int prov_csv_field(const char *s, char *out, size_t outlen, size_t *written)
{
    size_t len = strlen(s), o = 0;
    int quote = len > 0 && (prov_csv_blank(s[0]) || prov_csv_blank(s[len - 1]));
    for (size_t i = 0; i < len && !quote; i++)
        if (s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r')
            quote = 1;
    if (!quote) {
        if (len > outlen)
            return -1;
        memcpy(out, s, len);
        *written = len;
        return 0;
    }
    if (outlen < 2)
        return -1;
    out[o++] = '"';
    for (size_t i = 0; i < len; i++) {
        if (o + 3 > outlen)
            return -1;
        if (s[i] == '"')
            out[o++] = '"';
        out[o++] = s[i];
    }
    if (o + 1 > outlen)
        return -1;
    out[o++] = '"';
    *written = o;
    return 0;
}
