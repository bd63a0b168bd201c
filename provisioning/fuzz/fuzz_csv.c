/* fuzz_csv: libFuzzer target for the CSV input of ddns-provision batch,
 * derive and register (prov_csv: splitting and quoting, the header's
 * column map; prov_batch: every line's validation, in-file duplicates,
 * random labels).
 *
 * Input: byte 0 chooses a batch file (even) or a public file of 'derive'
 * (odd); the rest is the file's text. Checks: a parse that succeeds leaves
 * every row in one of the three states, a row that is not rejected has a
 * valid MAC and terminated serial, model and label strings, its line
 * number lies inside the input and its raw text inside the input; the
 * labels drawn for the valid rows are 1 to 63 characters; every serial
 * and model written back with prov_csv_field splits again to the same
 * text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prov_batch.h"
#include "prov_csv.h"

static void roundtrip(const char *s)
{
    char out[600], scratch[700], *fields[4];
    size_t n = 0, nf = 0;
    const char *why;
    if (strlen(s) > 200)
        return;
    if (prov_csv_field(s, out, sizeof out, &n) != 0)
        abort();
    if (memchr(s, '\n', strlen(s)) || memchr(s, '\r', strlen(s)))
        return;     /* a line break inside a field is not a line of its own */
    if (prov_csv_split(out, n, scratch, sizeof scratch, fields, 4, &nf, &why) != 0 || nf != 1 ||
        strcmp(fields[0], s) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int public_file = data[0] & 1;
    char err[512];
    prov_batch_t *b = prov_batch_new(public_file ? "" : "ddns.example.test");
    if (b == NULL)
        abort();
    if (public_file)
        prov_batch_set_public(b);
    char *text = malloc(size);      /* owned by the batch */
    if (text == NULL)
        abort();
    memcpy(text, data + 1, size - 1);
    if (prov_batch_set_text(b, text, size - 1, err, sizeof err) != 0) {
        prov_batch_free(b);
        return 0;
    }
    if (prov_batch_parse(b, err, sizeof err) == 0) {
        size_t n = prov_batch_count(b);
        if (prov_batch_count_state(b, PROV_ROW_NEW) + prov_batch_count_state(b, PROV_ROW_SAME) +
                prov_batch_count_state(b, PROV_ROW_BAD) != n)
            abort();
        for (size_t i = 0; i < n; i++) {
            const prov_row_t *r = prov_batch_row_c(b, i);
            if (r->line == 0 || (size_t)r->raw_off + r->raw_len > size - 1)
                abort();
            if (r->state == PROV_ROW_BAD)
                continue;
            if (r->mac == 0 || r->mac >> 48 != 0 || (r->mac >> 40 & 1) != 0)
                abort();
            roundtrip(prov_batch_str(b, r->serial));
            roundtrip(prov_batch_str(b, r->model));
        }
        if (!public_file && n < 2000 &&
            prov_batch_labels(b, "", err, sizeof err) == 0) {
            for (size_t i = 0; i < n; i++) {
                const prov_row_t *r = prov_batch_row_c(b, i);
                if (r->state == PROV_ROW_BAD)
                    continue;
                const char *l = prov_batch_str(b, r->label);
                if (l[0] == '\0' || strlen(l) > 63)
                    abort();
            }
        }
    } else if (err[0] == '\0') {
        abort();
    }
    prov_batch_free(b);
    return 0;
}
