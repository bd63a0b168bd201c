/* prov_batch: one batch of devices read from a CSV file, in memory.
 *
 * Owns reading the input (file or standard input) and its SHA-256, parsing
 * and validating every line (MAC forms and classes, serial, model and name
 * syntax, duplicates within the file), drawing random hostname labels that
 * are unique within the batch, and the verdict on each line: new, already
 * registered exactly so, or rejected with its reasons. It knows nothing of
 * the database: prov_db feeds it what the database holds through
 * prov_batch_existing() and prov_batch_reject(). No secret is held here.
 *
 * Memory: the input text, about 40 bytes per line and the short strings of
 * each line; hash indexes are freed once they are no longer needed. */
#ifndef PROV_BATCH_H
#define PROV_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "cmn_mac.h"

#define PROV_INPUT_MAX ((size_t)1 << 31) /* 2 GiB of CSV */

enum prov_row_state {
    PROV_ROW_NEW = 0, /* valid, not in the database: to be registered */
    PROV_ROW_SAME,    /* already registered exactly so: nothing to change */
    PROV_ROW_BAD,     /* rejected; the reasons are in the error list */
};

typedef struct prov_row {
    uint64_t mac;             /* the 48-bit MAC; 0 when the MAC was not valid */
    uint32_t line;            /* 1-based line number in the input */
    uint32_t raw_off, raw_len; /* the line's text in the input */
    uint32_t serial, model, label; /* offsets of NUL-terminated strings (prov_batch_str) */
    uint32_t generation;      /* the secret's: the batch's (prov_batch_generation) for a
                                 new row, the registered one for a registered row */
    uint8_t state;            /* enum prov_row_state */
    uint8_t label_explicit;   /* the name came from the CSV */
    uint8_t flags;            /* PROV_ROW_F_VALID and internal bits */
} prov_row_t;

/* Every field of the row is valid (it may still be rejected, for example as
 * a duplicate within the file); such rows are checked against the database. */
#define PROV_ROW_F_VALID 0x80u

typedef struct prov_batch prov_batch_t;

/* Called now and then during long loops (what: "validated", ...). */
typedef void (*prov_progress_fn)(void *ctx, const char *what, size_t done, size_t total);

/* zone: the canonical zone of the batch's names (prov_zone_check); "" for
 * a public file, whose zone column gives it. */
prov_batch_t *prov_batch_new(const char *zone);
void prov_batch_free(prov_batch_t *b);
void prov_batch_set_progress(prov_batch_t *b, prov_progress_fn fn, void *ctx);

/* Reads the whole input ("-": standard input) and computes its SHA-256.
 * Returns 0, or -1 with the reason in err. */
int prov_batch_read(prov_batch_t *b, const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Uses text[0..len) as the input (ownership passes to the batch; it must be
 * malloc'd). For callers that already hold the text, such as tests. */
int prov_batch_set_text(prov_batch_t *b, char *text, size_t len, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Lowercase hex SHA-256 of the input (65 bytes with the NUL). */
const char *prov_batch_sha256(const prov_batch_t *b);
size_t prov_batch_input_size(const prov_batch_t *b);

/* Makes prov_batch_parse() read a public file of 'derive' (PROV_CSV_PUBLIC
 * columns): every line must name its device, and all lines must have the
 * same key id, zone and generation (prov_batch_kid(), prov_batch_zone(),
 * prov_batch_generation(); a file without the generation column is of
 * generation 0). */
void prov_batch_set_public(prov_batch_t *b);

/* The generation of the secrets of the batch's new devices (before
 * prov_batch_parse(); PROV_GENERATION_NEW unless set). */
void prov_batch_set_generation(prov_batch_t *b, uint32_t generation);
uint32_t prov_batch_generation(const prov_batch_t *b);

/* Parses and validates every line. Problems of single lines are recorded
 * (the line becomes PROV_ROW_BAD) and parsing goes on; -1 is returned only
 * for problems of the whole input (no header line, a bad header, binary
 * data, out of memory), described in err. */
int prov_batch_parse(prov_batch_t *b, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Gives every line without an explicit name a random label
 * (prov_label_random with prefix), unique within the batch. */
int prov_batch_labels(prov_batch_t *b, const char *prefix, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Draws a new random label for row i (its label was taken in the database). */
int prov_batch_relabel(prov_batch_t *b, size_t i, const char *prefix)
    __attribute__((warn_unused_result));

/* What the database holds for the MAC of row i. */
typedef struct prov_existing {
    const char *kid;
    const char *generation;
    const char *status;   /* "active" or "revoked" */
    const char *serial;   /* NULL when none is recorded */
    const char *model;    /* NULL when none is recorded */
    const char *label;    /* its name in the batch's zone, NULL when none */
} prov_existing_t;

/* Row i's MAC is registered already: a new row becomes PROV_ROW_SAME when the
 * registration matches it exactly (key id kid, serial, model, the name
 * when the line gives one, and for a public file its generation; the row
 * then takes the registered label and generation), else it is rejected
 * with the difference as the reason. */
void prov_batch_existing(prov_batch_t *b, size_t i, const char *kid, const prov_existing_t *e);

/* Rejects row i with a reason (printf format; the text should start with
 * the field it is about, e.g. "mac 3c5ab4f09a21: ..."). */
void prov_batch_reject(prov_batch_t *b, size_t i, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

const char *prov_batch_zone(const prov_batch_t *b);
/* The key id of a public file ("" before parsing or for other input). */
const char *prov_batch_kid(const prov_batch_t *b);
size_t prov_batch_count(const prov_batch_t *b);
size_t prov_batch_count_state(const prov_batch_t *b, int state);
prov_row_t *prov_batch_row(prov_batch_t *b, size_t i);
const prov_row_t *prov_batch_row_c(const prov_batch_t *b, size_t i);
const char *prov_batch_str(const prov_batch_t *b, uint32_t off);
/* The row's line as it was in the input (no line end). */
const char *prov_batch_raw(const prov_batch_t *b, size_t i, size_t *len);
/* The canonical device id of a row (its MAC must be valid). */
void prov_row_device_id(const prov_row_t *r, char out[CMN_DEVICE_ID_LEN + 1]);

/* The recorded reasons, in the order lines appear in the input (one line
 * may have several). */
size_t prov_batch_nerrors(const prov_batch_t *b);
size_t prov_batch_error_row(const prov_batch_t *b, size_t k);
const char *prov_batch_error_text(const prov_batch_t *b, size_t k);
/* Sorts the reasons by line (after database checks added some). */
void prov_batch_sort_errors(prov_batch_t *b);

#endif
