/* prov_out: the flashing output of a batch, and other files written whole.
 *
 * Owns the three output formats (JSON lines, CSV, the binary flash record of
 * prov_record) and writing them either to one file, to a directory of
 * per-device files, or to standard output. Files and directories are
 * written under a temporary name next to the target (mode 0600, directories
 * 0700), synced, and only put in place by prov_out_commit(), which never
 * replaces an existing file: a reader sees the whole output or none.
 * prov_out_discard() removes everything written so far. */
#ifndef PROV_OUT_H
#define PROV_OUT_H

#include <stddef.h>
#include <stdint.h>

#include "prov_cred.h"

enum prov_fmt {
    PROV_FMT_JSONL = 0, /* one JSON object per line, as 'issue' prints */
    PROV_FMT_CSV,       /* header line, then one line per device */
    PROV_FMT_RECORD,    /* PROV_RECORD_SIZE bytes per device */
    PROV_FMT_RAW,       /* bytes as given (reject files) */
};

/* "jsonl", "csv" or "record"; -1 for anything else. */
int prov_fmt_parse(const char *s);
const char *prov_fmt_name(int fmt);

/* The CSV output's header line (with its LF). */
#define PROV_OUT_CSV_HEADER "device_id,kid,secret,password,fqdn,serial,model\n"

/* Formats one device in fmt into buf (a JSON line or CSV line with its LF,
 * or a binary record). Returns 0 and the length in *len, or -1 with the
 * reason in err. The caller wipes buf. */
#define PROV_OUT_MAX 1024
int prov_out_format(int fmt, const prov_cred_t *c, const char *serial, const char *model,
                    char buf[PROV_OUT_MAX], size_t *len, char *err, size_t errlen)
    __attribute__((warn_unused_result));

typedef struct prov_out prov_out_t;

/* Opens an output: path "-" is standard output (not with per_device);
 * otherwise path must not exist yet. per_device: path is a directory that
 * receives one file per device, named after its device id with the suffix
 * of the format (.json, .csv, .bin). */
prov_out_t *prov_out_open(int fmt, const char *path, int per_device, char *err, size_t errlen);

/* Writes one device. */
int prov_out_write(prov_out_t *o, const prov_cred_t *c, const char *serial, const char *model,
                   char *err, size_t errlen) __attribute__((warn_unused_result));

/* Writes bytes as they are (PROV_FMT_RAW outputs). */
int prov_out_write_raw(prov_out_t *o, const void *data, size_t len, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Flushes and syncs everything written; the output is still invisible
 * under its final name (standard output: flushed). */
int prov_out_finish(prov_out_t *o, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Puts the finished output in place under its final name. Fails, keeping
 * nothing, when that name has appeared in the meantime. */
int prov_out_commit(prov_out_t *o, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Removes whatever was written (no effect once committed or on standard
 * output). */
void prov_out_discard(prov_out_t *o);

/* Frees o; an output neither committed nor discarded is discarded. */
void prov_out_free(prov_out_t *o);

/* The number of devices written. */
size_t prov_out_count(const prov_out_t *o);

#endif
