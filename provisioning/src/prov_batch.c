/* prov_batch: one batch of devices in memory (see prov_batch.h). */
#include "prov_batch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cmn_key.h"
#include "prov_cred.h"
#include "prov_csv.h"
#include "prov_record.h"

/* prov_row_t.flags */
#define PROV_F_DUP_MAC 1u
#define PROV_F_DUP_SERIAL 2u
#define PROV_F_DUP_NAME 4u

enum prov_idx_kind { PROV_IDX_MAC, PROV_IDX_SERIAL, PROV_IDX_LABEL };

/* Open-addressing index of row numbers (slot value = row + 1). */
typedef struct prov_idx {
    uint32_t *slot;
    size_t mask;
} prov_idx_t;

typedef struct prov_err {
    size_t row;
    size_t seq; /* order of recording, to keep a line's reasons in order */
    char *text;
} prov_err_t;

struct prov_batch {
    char zone[PROV_ZONE_MAX + 1];
    char kid[CMN_KID_MAX + 1];
    uint32_t generation;        /* of the new devices' secrets */
    int public_file;
    uint32_t zone_line, kid_line; /* where a public file's zone and kid come from */
    uint32_t generation_line;     /* ... and its generation (0: none yet) */
    char *text;
    size_t text_len;
    char sha256[65];
    prov_row_t *rows;
    size_t nrows, cap_rows;
    char *arena; /* NUL-terminated strings; offset 0 is "" */
    size_t arena_len, arena_cap;
    prov_err_t *errs;
    size_t nerrs, cap_errs;
    prov_idx_t idx_mac, idx_serial, idx_label;
    prov_progress_fn progress;
    void *progress_ctx;
};

prov_batch_t *prov_batch_new(const char *zone)
{
    prov_batch_t *b = calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    snprintf(b->zone, sizeof b->zone, "%s", zone);
    b->generation = PROV_GENERATION_NEW;
    b->arena_cap = 4096;
    b->arena = malloc(b->arena_cap);
    if (b->arena == NULL) {
        free(b);
        return NULL;
    }
    b->arena[0] = '\0';
    b->arena_len = 1;
    return b;
}

static void prov_idx_free(prov_idx_t *x)
{
    free(x->slot);
    x->slot = NULL;
    x->mask = 0;
}

void prov_batch_free(prov_batch_t *b)
{
    if (b == NULL)
        return;
    for (size_t k = 0; k < b->nerrs; k++)
        free(b->errs[k].text);
    free(b->errs);
    free(b->rows);
    free(b->arena);
    free(b->text);
    prov_idx_free(&b->idx_mac);
    prov_idx_free(&b->idx_serial);
    prov_idx_free(&b->idx_label);
    free(b);
}

void prov_batch_set_public(prov_batch_t *b)
{
    b->public_file = 1;
}

void prov_batch_set_generation(prov_batch_t *b, uint32_t generation)
{
    b->generation = generation;
}

uint32_t prov_batch_generation(const prov_batch_t *b)
{
    return b->generation;
}

void prov_batch_set_progress(prov_batch_t *b, prov_progress_fn fn, void *ctx)
{
    b->progress = fn;
    b->progress_ctx = ctx;
}

static void prov_progress(prov_batch_t *b, const char *what, size_t done, size_t total)
{
    if (b->progress != NULL)
        b->progress(b->progress_ctx, what, done, total);
}

/* ---- input ------------------------------------------------------------- */

static int prov_hash_text(prov_batch_t *b, char *err, size_t errlen)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (EVP_Digest(b->text, b->text_len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        snprintf(err, errlen, "SHA-256 of the input failed");
        return -1;
    }
    cmn_hex(md, 32, b->sha256);
    return 0;
}

int prov_batch_set_text(prov_batch_t *b, char *text, size_t len, char *err, size_t errlen)
{
    free(b->text);
    b->text = text;
    b->text_len = len;
    if (len > PROV_INPUT_MAX) {
        snprintf(err, errlen, "the input is larger than 2 GiB; split it into several batches");
        return -1;
    }
    return prov_hash_text(b, err, errlen);
}

int prov_batch_read(prov_batch_t *b, const char *path, char *err, size_t errlen)
{
    int fd = -1, rc = -1;
    size_t cap = 1 << 20, len = 0;
    char *buf = NULL;
    const char *name = strcmp(path, "-") == 0 ? "standard input" : path;

    fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        goto out;
    }
    buf = malloc(cap);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory reading %s", name);
        goto out;
    }
    for (;;) {
        if (len == cap) {
            if (cap > PROV_INPUT_MAX) {
                snprintf(err, errlen, "%s is larger than 2 GiB; split it into several batches",
                         name);
                goto out;
            }
            char *grown = realloc(buf, cap * 2);
            if (grown == NULL) {
                snprintf(err, errlen, "out of memory reading %s", name);
                goto out;
            }
            buf = grown;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR) {
            /* only a signal handler installed without SA_RESTART gets
             * here: the caller asked to be interruptible */
            snprintf(err, errlen, "interrupted while reading %s", name);
            goto out;
        }
        if (n < 0) {
            snprintf(err, errlen, "%s: read error: %s", name, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    rc = prov_batch_set_text(b, buf, len, err, errlen);
    buf = NULL;
out:
    free(buf);
    if (fd > STDIN_FILENO)
        close(fd);
    return rc;
}

const char *prov_batch_sha256(const prov_batch_t *b)
{
    return b->sha256;
}

size_t prov_batch_input_size(const prov_batch_t *b)
{
    return b->text_len;
}

/* ---- storage ----------------------------------------------------------- */

static int prov_arena_add(prov_batch_t *b, const char *s, uint32_t *off)
{
    size_t n = strlen(s) + 1;
    if (n == 1) {
        *off = 0;
        return 0;
    }
    if (b->arena_len + n > b->arena_cap) {
        size_t cap = b->arena_cap * 2;
        while (cap < b->arena_len + n)
            cap *= 2;
        if (cap > UINT32_MAX)
            return -1;
        char *grown = realloc(b->arena, cap);
        if (grown == NULL)
            return -1;
        b->arena = grown;
        b->arena_cap = cap;
    }
    memcpy(b->arena + b->arena_len, s, n);
    *off = (uint32_t)b->arena_len;
    b->arena_len += n;
    return 0;
}

static void prov_batch_vreject(prov_batch_t *b, size_t i, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    b->rows[i].state = PROV_ROW_BAD;
    if (b->nerrs == b->cap_errs) {
        size_t cap = b->cap_errs ? b->cap_errs * 2 : 64;
        prov_err_t *grown = realloc(b->errs, cap * sizeof *grown);
        if (grown == NULL)
            return; /* the row stays rejected; only the reason is lost */
        b->errs = grown;
        b->cap_errs = cap;
    }
    char *text = strdup(msg);
    if (text == NULL)
        return;
    b->errs[b->nerrs].row = i;
    b->errs[b->nerrs].seq = b->nerrs;
    b->errs[b->nerrs].text = text;
    b->nerrs++;
}

void prov_batch_reject(prov_batch_t *b, size_t i, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    prov_batch_vreject(b, i, fmt, ap);
    va_end(ap);
}

/* ---- indexes ----------------------------------------------------------- */

static uint64_t prov_mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t prov_hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return prov_mix(h);
}

static int prov_idx_init(prov_idx_t *x, size_t n)
{
    size_t cap = 1024;
    while (cap < 2 * n + 2)
        cap *= 2;
    x->slot = calloc(cap, sizeof *x->slot);
    if (x->slot == NULL)
        return -1;
    x->mask = cap - 1;
    return 0;
}

static uint64_t prov_row_key_hash(const prov_batch_t *b, const prov_row_t *r, int kind)
{
    switch (kind) {
    case PROV_IDX_MAC: return prov_mix(r->mac);
    case PROV_IDX_SERIAL: return prov_hash_str(b->arena + r->serial);
    default: return prov_hash_str(b->arena + r->label);
    }
}

static int prov_row_key_eq(const prov_batch_t *b, const prov_row_t *r1, const prov_row_t *r2,
                           int kind)
{
    switch (kind) {
    case PROV_IDX_MAC: return r1->mac == r2->mac;
    case PROV_IDX_SERIAL: return strcmp(b->arena + r1->serial, b->arena + r2->serial) == 0;
    default: return strcmp(b->arena + r1->label, b->arena + r2->label) == 0;
    }
}

/* Returns the row already indexed under row i's key, or i after adding it.
 * The index never fills (capacity is twice the row count or more). */
static size_t prov_idx_add(prov_batch_t *b, prov_idx_t *x, size_t i, int kind)
{
    const prov_row_t *r = &b->rows[i];
    size_t s = (size_t)prov_row_key_hash(b, r, kind) & x->mask;
    while (x->slot[s] != 0) {
        size_t j = x->slot[s] - 1;
        if (prov_row_key_eq(b, &b->rows[j], r, kind))
            return j;
        s = (s + 1) & x->mask;
    }
    x->slot[s] = (uint32_t)(i + 1);
    return i;
}

/* ---- parsing ----------------------------------------------------------- */

static uint64_t prov_mac_value(const char id[CMN_DEVICE_ID_LEN])
{
    uint64_t v = 0;
    for (int i = 0; i < CMN_DEVICE_ID_LEN; i++) {
        char c = id[i];
        v = v << 4 | (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    return v;
}

void prov_row_device_id(const prov_row_t *r, char out[CMN_DEVICE_ID_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < CMN_DEVICE_ID_LEN; i++)
        out[i] = digits[(r->mac >> (4 * (CMN_DEVICE_ID_LEN - 1 - i))) & 15];
    out[CMN_DEVICE_ID_LEN] = '\0';
}

/* Finds the next line: [*start, *end) without the line end; returns 0 at
 * the end of the text. */
static int prov_next_line(const prov_batch_t *b, size_t *pos, size_t *start, size_t *end)
{
    if (*pos >= b->text_len)
        return 0;
    *start = *pos;
    const char *nl = memchr(b->text + *pos, '\n', b->text_len - *pos);
    size_t e = nl ? (size_t)(nl - b->text) : b->text_len;
    *pos = nl ? e + 1 : b->text_len;
    if (e > *start && b->text[e - 1] == '\r')
        e--;
    *end = e;
    return 1;
}

static int prov_blank_line(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t')
            return 0;
    return 1;
}

/* Checks the duplicate indexes for row i (whose fields are valid). */
static void prov_check_dups(prov_batch_t *b, size_t i)
{
    prov_row_t *r = &b->rows[i];
    char id[CMN_DEVICE_ID_LEN + 1];
    if (r->mac != 0) {
        size_t j = prov_idx_add(b, &b->idx_mac, i, PROV_IDX_MAC);
        if (j != i) {
            prov_row_device_id(r, id);
            prov_batch_reject(b, i, "mac %s: the same device is also on line %u", id,
                              b->rows[j].line);
            if (!(b->rows[j].flags & PROV_F_DUP_MAC)) {
                b->rows[j].flags |= PROV_F_DUP_MAC;
                prov_batch_reject(b, j, "mac %s: the same device is also on line %u", id,
                                  r->line);
            }
        }
    }
    if (r->serial != 0) {
        size_t j = prov_idx_add(b, &b->idx_serial, i, PROV_IDX_SERIAL);
        if (j != i) {
            const char *s = b->arena + r->serial;
            prov_batch_reject(b, i, "serial '%s': also on line %u", s, b->rows[j].line);
            if (!(b->rows[j].flags & PROV_F_DUP_SERIAL)) {
                b->rows[j].flags |= PROV_F_DUP_SERIAL;
                prov_batch_reject(b, j, "serial '%s': also on line %u", s, r->line);
            }
        }
    }
    if (r->label_explicit) {
        size_t j = prov_idx_add(b, &b->idx_label, i, PROV_IDX_LABEL);
        if (j != i) {
            const char *s = b->arena + r->label;
            prov_batch_reject(b, i, "name '%s': also on line %u", s, b->rows[j].line);
            if (!(b->rows[j].flags & PROV_F_DUP_NAME)) {
                b->rows[j].flags |= PROV_F_DUP_NAME;
                prov_batch_reject(b, j, "name '%s': also on line %u", s, r->line);
            }
        }
    }
}

/* The generation of row i of a public file (text; NULL: the file has no
 * generation column, generation 0), which must be that of every other
 * line. Returns 1 when it is good, else 0 (row rejected). */
static int prov_parse_generation(prov_batch_t *b, size_t i, const char *text)
{
    prov_row_t *r = &b->rows[i];
    unsigned long g = 0;
    if (text != NULL) {
        char *end;
        g = strtoul(text, &end, 10);
        if (text[0] < '0' || text[0] > '9' || *end != '\0' || g > CMN_GENERATION_MAX ||
            (text[0] == '0' && text[1] != '\0')) {
            prov_batch_reject(b, i, "generation '%.20s': a number from 0 to %u", text,
                              CMN_GENERATION_MAX);
            return 0;
        }
    }
    if (b->generation_line == 0) {
        b->generation = (uint32_t)g;
        b->generation_line = r->line;
    } else if (g != b->generation) {
        prov_batch_reject(b, i, "generation %lu: line %u has %lu; one file holds one "
                          "generation", g, b->generation_line, (unsigned long)b->generation);
        return 0;
    }
    r->generation = (uint32_t)g;
    return 1;
}

/* The key id and zone of row i of a public file, which must be those of
 * every other line. Returns 1 when both are good, else 0 (row rejected). */
static int prov_parse_public(prov_batch_t *b, size_t i, const char *kid, const char *zone)
{
    prov_row_t *r = &b->rows[i];
    char err[512], canon[PROV_ZONE_MAX + 1];
    int ok = 1;

    if (!cmn_kid_valid(kid, strlen(kid))) {
        prov_batch_reject(b, i, "kid '%.40s': 1 to %d characters of [a-z0-9]", kid, CMN_KID_MAX);
        ok = 0;
    } else if (b->kid[0] == '\0') {
        snprintf(b->kid, sizeof b->kid, "%s", kid);
        b->kid_line = r->line;
    } else if (strcmp(kid, b->kid) != 0) {
        prov_batch_reject(b, i, "kid '%s': line %u has '%s'; one file holds one key id", kid,
                          b->kid_line, b->kid);
        ok = 0;
    }
    if (prov_zone_check(zone, canon, err, sizeof err) != 0) {
        prov_batch_reject(b, i, "%s", err);
        ok = 0;
    } else if (b->zone[0] == '\0') {
        snprintf(b->zone, sizeof b->zone, "%s", canon);
        b->zone_line = r->line;
    } else if (strcmp(canon, b->zone) != 0) {
        prov_batch_reject(b, i, "zone '%s': line %u has '%s'; one file holds one zone", canon,
                          b->zone_line, b->zone);
        ok = 0;
    }
    return ok;
}

/* The explicit name of row i, when given. Returns -1 when out of memory. */
static int prov_parse_name(prov_batch_t *b, size_t i, const char *name)
{
    prov_row_t *r = &b->rows[i];
    char err[512], label[PROV_LABEL_MAX + 1];

    if (prov_label_check(name, label, err, sizeof err) != 0) {
        prov_batch_reject(b, i, "name: %s", err);
    } else if (strlen(label) + 1 + strlen(b->zone) > PROV_FQDN_MAX) {
        prov_batch_reject(b, i, "name '%s': %s.%s is longer than %d characters", label, label,
                          b->zone, PROV_FQDN_MAX);
    } else {
        if (prov_arena_add(b, label, &r->label) != 0)
            return -1;
        r->label_explicit = 1;
    }
    return 0;
}

/* Validates the fields of row i. */
static int prov_parse_fields(prov_batch_t *b, size_t i, char **f, size_t nf,
                             const prov_csv_header_t *h)
{
    prov_row_t *r = &b->rows[i];
    char err[512], id[CMN_DEVICE_ID_LEN + 1];

    if (nf != h->nfields) {
        prov_batch_reject(b, i, "line: %zu field%s, but the header names %zu columns", nf,
                          nf == 1 ? "" : "s", h->nfields);
        return 0;
    }
    const char *mac = f[h->col[PROV_COL_MAC]];
    int mrc = cmn_mac_canon(mac, strlen(mac), id);
    if (mac[0] == '\0')
        prov_batch_reject(b, i, "mac: empty");
    else if (mrc != CMN_MAC_OK)
        prov_batch_reject(b, i, "mac '%.40s': %s", mac, cmn_mac_explain(mrc));
    else
        r->mac = prov_mac_value(id);

    const char *serial = f[h->col[PROV_COL_SERIAL]];
    if (serial[0] == '\0')
        prov_batch_reject(b, i, "serial: empty");
    else if (prov_serial_check(serial, err, sizeof err) != 0)
        prov_batch_reject(b, i, "%s", err);
    else if (prov_arena_add(b, serial, &r->serial) != 0)
        return -1;

    const char *model = f[h->col[PROV_COL_MODEL]];
    if (model[0] == '\0')
        prov_batch_reject(b, i, "model: empty");
    else if (prov_model_check(model, err, sizeof err) != 0)
        prov_batch_reject(b, i, "%s", err);
    else if (prov_arena_add(b, model, &r->model) != 0)
        return -1;

    int public_ok = !b->public_file ||
                    prov_parse_public(b, i, f[h->col[PROV_COL_KID]], f[h->col[PROV_COL_ZONE]]);
    if (b->public_file) {
        int gc = h->col[PROV_COL_GENERATION];
        public_ok &= prov_parse_generation(b, i, gc >= 0 ? f[gc] : NULL);
    }
    const char *name = h->col[PROV_COL_NAME] >= 0 ? f[h->col[PROV_COL_NAME]] : "";
    if (name[0] == '\0' && b->public_file) {
        prov_batch_reject(b, i, "name: empty (a public file names every device)");
        public_ok = 0;
    } else if (name[0] != '\0' && prov_parse_name(b, i, name) != 0) {
        return -1;
    }
    prov_check_dups(b, i);
    if (r->mac != 0 && r->serial != 0 && r->model != 0 && public_ok &&
        (name[0] == '\0' || r->label_explicit))
        r->flags |= PROV_ROW_F_VALID;
    return 0;
}

/* What prov_batch_parse works with: the field buffer and the header. */
typedef struct prov_parse {
    size_t pos, nlines, line;
    char *scratch;
    size_t scratch_len;
    char *f[PROV_CSV_MAX_FIELDS];
    prov_csv_header_t h;
} prov_parse_t;

/* Checks the input is text, skips a byte order mark, counts the lines and
 * allocates the rows, the indexes and the field buffer. */
static int prov_parse_prepare(prov_batch_t *b, prov_parse_t *p, char *err, size_t errlen)
{
    size_t start = 0, end = 0, maxlen = 0;

    if (memchr(b->text, '\0', b->text_len) != NULL) {
        snprintf(err, errlen, "the input holds a NUL byte: not a CSV text file");
        return -1;
    }
    /* A UTF-8 byte order mark, as some spreadsheet programs write. */
    if (b->text_len >= 3 && memcmp(b->text, "\xef\xbb\xbf", 3) == 0)
        p->pos = 3;
    for (size_t pos = p->pos; prov_next_line(b, &pos, &start, &end);) {
        p->nlines++;
        if (end - start > maxlen)
            maxlen = end - start;
    }
    if (p->nlines > UINT32_MAX / 2) {
        snprintf(err, errlen, "too many lines in one batch; split it");
        return -1;
    }
    p->scratch_len = maxlen + PROV_CSV_MAX_FIELDS + 1;
    p->scratch = malloc(p->scratch_len);
    b->rows = malloc((p->nlines ? p->nlines : 1) * sizeof *b->rows);
    if (p->scratch == NULL || b->rows == NULL || prov_idx_init(&b->idx_mac, p->nlines) != 0 ||
        prov_idx_init(&b->idx_serial, p->nlines) != 0 ||
        prov_idx_init(&b->idx_label, p->nlines) != 0) {
        snprintf(err, errlen, "out of memory for %zu lines", p->nlines);
        return -1;
    }
    b->cap_rows = p->nlines ? p->nlines : 1;
    return 0;
}

/* The header: the first line that is not blank. */
static int prov_parse_header(prov_batch_t *b, prov_parse_t *p, char *err, size_t errlen)
{
    size_t start = 0, end = 0, nf = 0;
    const char *why = NULL;

    for (;;) {
        if (!prov_next_line(b, &p->pos, &start, &end)) {
            snprintf(err, errlen, "the input is empty: expected a header line such as "
                     "'mac,serial,model,name' and one line per device");
            return -1;
        }
        p->line++;
        if (!prov_blank_line(b->text + start, end - start))
            break;
    }
    if (prov_csv_split(b->text + start, end - start, p->scratch, p->scratch_len, p->f,
                       PROV_CSV_MAX_FIELDS, &nf, &why) != 0) {
        snprintf(err, errlen, "line %zu (header): %s", p->line, why);
        return -1;
    }
    if (prov_csv_header(p->f, nf, b->public_file ? PROV_CSV_PUBLIC : PROV_CSV_INPUT, &p->h, err,
                        errlen) != 0) {
        char tmp[512];
        snprintf(tmp, sizeof tmp, "line %zu: %s", p->line, err);
        snprintf(err, errlen, "%s", tmp);
        return -1;
    }
    return 0;
}

/* The device lines. */
static int prov_parse_rows(prov_batch_t *b, prov_parse_t *p, char *err, size_t errlen)
{
    size_t start = 0, end = 0, nf = 0;
    const char *why = NULL;

    while (prov_next_line(b, &p->pos, &start, &end)) {
        p->line++;
        if (prov_blank_line(b->text + start, end - start))
            continue;
        size_t i = b->nrows++;
        prov_row_t *r = &b->rows[i];
        memset(r, 0, sizeof *r);
        r->line = (uint32_t)p->line;
        r->raw_off = (uint32_t)start;
        r->raw_len = (uint32_t)(end - start);
        r->state = PROV_ROW_NEW;
        r->generation = b->generation;
        if (prov_csv_split(b->text + start, end - start, p->scratch, p->scratch_len, p->f,
                           PROV_CSV_MAX_FIELDS, &nf, &why) != 0)
            prov_batch_reject(b, i, "line: %s", why);
        else if (prov_parse_fields(b, i, p->f, nf, &p->h) != 0) {
            snprintf(err, errlen, "out of memory at line %zu", p->line);
            return -1;
        }
        if ((b->nrows & 0xffff) == 0)
            prov_progress(b, "validated", b->nrows, p->nlines);
    }
    if (b->nrows == 0) {
        snprintf(err, errlen, "the input has a header line but no device lines");
        return -1;
    }
    prov_progress(b, "validated", b->nrows, b->nrows);
    return 0;
}

int prov_batch_parse(prov_batch_t *b, char *err, size_t errlen)
{
    prov_parse_t p;
    memset(&p, 0, sizeof p);
    int rc = prov_parse_prepare(b, &p, err, errlen) == 0 &&
                     prov_parse_header(b, &p, err, errlen) == 0 &&
                     prov_parse_rows(b, &p, err, errlen) == 0
                 ? 0
                 : -1;
    free(p.scratch);
    prov_idx_free(&b->idx_mac);
    prov_idx_free(&b->idx_serial);
    return rc;
}

/* ---- labels ------------------------------------------------------------ */

static int prov_draw_label(prov_batch_t *b, size_t i, const char *prefix)
{
    char label[PROV_LABEL_MAX + 1];
    for (int attempt = 0; attempt < 16; attempt++) {
        if (prov_label_random(prefix, label) != 0 ||
            prov_arena_add(b, label, &b->rows[i].label) != 0)
            return -1;
        if (prov_idx_add(b, &b->idx_label, i, PROV_IDX_LABEL) == i)
            return 0;
    }
    return -1;
}

int prov_batch_labels(prov_batch_t *b, const char *prefix, char *err, size_t errlen)
{
    char label[PROV_LABEL_MAX + 1], chk[PROV_LABEL_MAX + 1];
    if (prov_label_random(prefix, label) != 0 || prov_label_check(label, chk, err, errlen) != 0 ||
        strcmp(label, chk) != 0 || strlen(label) + 1 + strlen(b->zone) > PROV_FQDN_MAX) {
        snprintf(err, errlen, "--label-prefix '%.40s' does not give valid hostname labels "
                 "(lowercase letters, digits and '-', at most 50 characters)", prefix);
        return -1;
    }
    for (size_t i = 0; i < b->nrows; i++) {
        if (b->rows[i].label_explicit || b->rows[i].state == PROV_ROW_BAD)
            continue;
        if (prov_draw_label(b, i, prefix) != 0) {
            snprintf(err, errlen, "could not draw a unique random label (out of memory or "
                     "random generator failure)");
            return -1;
        }
        if ((i & 0xffff) == 0xffff)
            prov_progress(b, "labelled", i + 1, b->nrows);
    }
    return 0;
}

int prov_batch_relabel(prov_batch_t *b, size_t i, const char *prefix)
{
    if (b->idx_label.slot == NULL || b->rows[i].label_explicit)
        return -1;
    return prov_draw_label(b, i, prefix);
}

/* ---- the database's view ------------------------------------------------ */

static int prov_streq(const char *a, const char *b2)
{
    return a != NULL && b2 != NULL && strcmp(a, b2) == 0;
}

void prov_batch_existing(prov_batch_t *b, size_t i, const char *kid, const prov_existing_t *e)
{
    prov_row_t *r = &b->rows[i];
    char id[CMN_DEVICE_ID_LEN + 1];
    const char *serial = b->arena + r->serial, *model = b->arena + r->model;
    int bad = 0;

    prov_row_device_id(r, id);
    if (!prov_streq(e->status, "active")) {
        prov_batch_reject(b, i, "mac %s: the device is registered but %s; a batch does not "
                          "re-activate it", id, e->status);
        bad = 1;
    }
    if (!prov_streq(e->kid, kid)) {
        prov_batch_reject(b, i, "mac %s: already registered under key id '%s', not '%s' (run "
                          "the batch with --kid %s to write its flashing output again)",
                          id, e->kid, kid, e->kid);
        bad = 1;
    }
    if (!prov_streq(e->serial, serial)) {
        if (e->serial == NULL)
            prov_batch_reject(b, i, "mac %s: already registered without a serial, not as "
                              "serial '%s'", id, serial);
        else
            prov_batch_reject(b, i, "mac %s: already registered under serial '%s', not '%s'",
                              id, e->serial, serial);
        bad = 1;
    }
    if (!prov_streq(e->model, model)) {
        prov_batch_reject(b, i, "mac %s: already registered as model '%s', not '%s'", id,
                          e->model ? e->model : "(none)", model);
        bad = 1;
    }
    unsigned long g = e->generation ? strtoul(e->generation, NULL, 10) : 0;
    if (b->public_file && g != r->generation) {
        /* flashed with another generation's secret than it is registered at */
        prov_batch_reject(b, i, "mac %s: already registered at generation %lu, not %lu", id, g,
                          (unsigned long)r->generation);
        bad = 1;
    }
    if (e->label == NULL) {
        prov_batch_reject(b, i, "mac %s: already registered, but without a name in zone %s",
                          id, b->zone);
        bad = 1;
    } else if (r->label_explicit && strcmp(e->label, b->arena + r->label) != 0) {
        prov_batch_reject(b, i, "name '%s': the device %s already has the name %s.%s",
                          b->arena + r->label, id, e->label, b->zone);
        bad = 1;
    }
    if (bad || r->state != PROV_ROW_NEW)
        return;
    if (!r->label_explicit && prov_arena_add(b, e->label, &r->label) != 0) {
        prov_batch_reject(b, i, "mac %s: out of memory", id);
        return;
    }
    r->generation = (uint32_t)g;    /* its credentials are of its generation */
    r->state = PROV_ROW_SAME;
}

/* ---- access ------------------------------------------------------------ */

const char *prov_batch_zone(const prov_batch_t *b)
{
    return b->zone;
}

const char *prov_batch_kid(const prov_batch_t *b)
{
    return b->kid;
}

size_t prov_batch_count(const prov_batch_t *b)
{
    return b->nrows;
}

size_t prov_batch_count_state(const prov_batch_t *b, int state)
{
    size_t n = 0;
    for (size_t i = 0; i < b->nrows; i++)
        n += b->rows[i].state == state;
    return n;
}

prov_row_t *prov_batch_row(prov_batch_t *b, size_t i)
{
    return &b->rows[i];
}

const prov_row_t *prov_batch_row_c(const prov_batch_t *b, size_t i)
{
    return &b->rows[i];
}

const char *prov_batch_str(const prov_batch_t *b, uint32_t off)
{
    return b->arena + off;
}

const char *prov_batch_raw(const prov_batch_t *b, size_t i, size_t *len)
{
    *len = b->rows[i].raw_len;
    return b->text + b->rows[i].raw_off;
}

size_t prov_batch_nerrors(const prov_batch_t *b)
{
    return b->nerrs;
}

size_t prov_batch_error_row(const prov_batch_t *b, size_t k)
{
    return b->errs[k].row;
}

const char *prov_batch_error_text(const prov_batch_t *b, size_t k)
{
    return b->errs[k].text;
}

static int prov_err_cmp(const void *x, const void *y)
{
    const prov_err_t *a = x, *c = y;
    if (a->row != c->row)
        return a->row < c->row ? -1 : 1;
    return a->seq < c->seq ? -1 : a->seq > c->seq;
}

void prov_batch_sort_errors(prov_batch_t *b)
{
    if (b->nerrs > 1)
        qsort(b->errs, b->nerrs, sizeof *b->errs, prov_err_cmp);
}
