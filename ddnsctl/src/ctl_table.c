/* ctl_table: text output (see ctl_table.h). */
#include "ctl_table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CTL_CELL_MAX 48
#define CTL_TEXT_MAX 512

/* "2026-11-21T13:56:22.264178+00:00" -> "2026-11-21 13:56:22" */
static int ctl_is_time(const char *s)
{
    return strlen(s) >= 19 && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' &&
           s[16] == ':';
}

void ctl_table_text(const json_t *v, char *out, size_t outlen)
{
    if (v == NULL || json_is_null(v)) {
        snprintf(out, outlen, "-");
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (ctl_is_time(s))
            snprintf(out, outlen, "%.10s %.8s", s, s + 11);
        else
            snprintf(out, outlen, "%s", s[0] ? s : "\"\"");
    } else if (json_is_integer(v)) {
        snprintf(out, outlen, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else if (json_is_real(v)) {
        snprintf(out, outlen, "%g", json_real_value(v));
    } else if (json_is_boolean(v)) {
        snprintf(out, outlen, "%s", json_is_true(v) ? "yes" : "no");
    } else if (json_is_array(v)) {
        size_t i, o = 0;
        json_t *e;
        out[0] = '\0';
        if (json_array_size(v) == 0)
            snprintf(out, outlen, "-");
        json_array_foreach(v, i, e) {
            char one[CTL_TEXT_MAX];
            ctl_table_text(e, one, sizeof one);
            int n = snprintf(out + o, outlen - o, "%s%s", i ? "," : "", one);
            if (n < 0 || (size_t)n >= outlen - o)
                break;
            o += (size_t)n;
        }
    } else {
        char *s = json_dumps(v, JSON_COMPACT);
        snprintf(out, outlen, "%s", s ? s : "?");
        free(s);
    }
}

static void ctl_cell(const json_t *row, const char *key, char *out, size_t outlen)
{
    ctl_table_text(json_object_get(row, key), out, outlen);
    /* one line per row: control characters become '?' */
    for (char *c = out; *c; c++)
        if ((unsigned char)*c < 0x20)
            *c = '?';
    size_t n = strlen(out);
    if (n > CTL_CELL_MAX) {
        out[CTL_CELL_MAX - 1] = '~';
        out[CTL_CELL_MAX] = '\0';
    }
}

static void ctl_table_put(const char *cell, size_t width, int last)
{
    if (last)
        printf("%s\n", cell);
    else
        printf("%-*s  ", (int)width, cell);
}

void ctl_table_print(const json_t *rows, const ctl_col_t *cols, int ncols)
{
    size_t w[32], nrows = json_array_size(rows);
    char cell[CTL_TEXT_MAX];
    if (ncols > 32)
        ncols = 32;
    for (int c = 0; c < ncols; c++)
        w[c] = strlen(cols[c].header);
    for (size_t r = 0; r < nrows; r++)
        for (int c = 0; c < ncols; c++) {
            ctl_cell(json_array_get(rows, r), cols[c].key, cell, sizeof cell);
            if (strlen(cell) > w[c])
                w[c] = strlen(cell);
        }
    for (int c = 0; c < ncols; c++)
        ctl_table_put(cols[c].header, w[c], c + 1 == ncols);
    for (size_t r = 0; r < nrows; r++)
        for (int c = 0; c < ncols; c++) {
            ctl_cell(json_array_get(rows, r), cols[c].key, cell, sizeof cell);
            ctl_table_put(cell, w[c], c + 1 == ncols);
        }
}

void ctl_table_fields(const json_t *obj, const ctl_col_t *cols, int ncols)
{
    size_t w = 0;
    char text[CTL_TEXT_MAX];
    for (int c = 0; c < ncols; c++)
        if (strlen(cols[c].header) > w)
            w = strlen(cols[c].header);
    for (int c = 0; c < ncols; c++) {
        char label[64];
        ctl_table_text(json_object_get(obj, cols[c].key), text, sizeof text);
        snprintf(label, sizeof label, "%s:", cols[c].header);
        printf("%-*s %s\n", (int)w + 1, label, text);
    }
}
