/* prov_out: flashing output files (see prov_out.h). */
#include "prov_out.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmn_io.h"
#include "prov_csv.h"
#include "prov_record.h"

#define PROV_OUT_BUF (1u << 20)

struct prov_out {
    int fmt;
    int per_device;
    int to_stdout;
    int fd;          /* the temporary file, the temporary directory, or 1 */
    int committed;
    char *path;      /* final name */
    char *tmp;       /* temporary name */
    unsigned char *buf;
    size_t used;
    size_t count;
};

int prov_fmt_parse(const char *s)
{
    if (strcmp(s, "jsonl") == 0 || strcmp(s, "json") == 0)
        return PROV_FMT_JSONL;
    if (strcmp(s, "csv") == 0)
        return PROV_FMT_CSV;
    if (strcmp(s, "record") == 0 || strcmp(s, "bin") == 0)
        return PROV_FMT_RECORD;
    return -1;
}

const char *prov_fmt_name(int fmt)
{
    switch (fmt) {
    case PROV_FMT_JSONL: return "jsonl";
    case PROV_FMT_CSV: return "csv";
    case PROV_FMT_RECORD: return "record";
    default: return "raw";
    }
}

static const char *prov_fmt_suffix(int fmt)
{
    switch (fmt) {
    case PROV_FMT_JSONL: return ".json";
    case PROV_FMT_CSV: return ".csv";
    default: return ".bin";
    }
}

/* ---- formatting -------------------------------------------------------- */

typedef struct prov_buf {
    char *p;
    size_t len, cap;
    int overflow;
} prov_buf_t;

static void prov_put(prov_buf_t *b, const char *s, size_t n)
{
    if (b->overflow || b->len + n > b->cap) {
        b->overflow = 1;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void prov_puts(prov_buf_t *b, const char *s)
{
    prov_put(b, s, strlen(s));
}

/* A JSON string with the escapes of RFC 8259 (the validated fields never
 * need them, but nothing relies on that). */
static void prov_put_json_str(prov_buf_t *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    prov_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            prov_put(b, e, 2);
        } else if (c < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            prov_put(b, e, 6);
        } else {
            prov_put(b, (const char *)&c, 1);
        }
    }
    prov_put(b, "\"", 1);
}

static void prov_put_json_member(prov_buf_t *b, const char *name, const char *value, int first)
{
    if (!first)
        prov_put(b, ",", 1);
    prov_put_json_str(b, name);
    prov_put(b, ":", 1);
    prov_put_json_str(b, value);
}

static void prov_put_csv(prov_buf_t *b, const char *s, int first)
{
    size_t n = 0;
    if (!first)
        prov_put(b, ",", 1);
    if (b->overflow || prov_csv_field(s, b->p + b->len, b->cap - b->len, &n) != 0) {
        b->overflow = 1;
        return;
    }
    b->len += n;
}

int prov_out_format(int fmt, const prov_cred_t *c, const char *serial, const char *model,
                    char buf[PROV_OUT_MAX], size_t *len, char *err, size_t errlen)
{
    char fqdn[PROV_LABEL_MAX + 1 + PROV_ZONE_MAX + 1] = "", gen[32];
    prov_buf_t b = {buf, 0, PROV_OUT_MAX, 0};

    if (c->label[0] != '\0')
        snprintf(fqdn, sizeof fqdn, "%s.%s", c->label, c->zone);
    switch (fmt) {
    case PROV_FMT_JSONL:
        /* The members and their order are those of prov_cred_json(). */
        prov_put(&b, "{", 1);
        prov_put_json_member(&b, "device_id", c->device_id, 1);
        prov_put_json_member(&b, "kid", c->keyref, 0);
        snprintf(gen, sizeof gen, ",\"generation\":%lu", (unsigned long)c->generation);
        prov_puts(&b, gen);
        prov_put_json_member(&b, "secret", c->secret_b64, 0);
        prov_put_json_member(&b, "password", c->password, 0);
        if (fqdn[0] != '\0')
            prov_put_json_member(&b, "fqdn", fqdn, 0);
        if (serial != NULL)
            prov_put_json_member(&b, "serial", serial, 0);
        if (model != NULL)
            prov_put_json_member(&b, "model", model, 0);
        prov_puts(&b, "}\n");
        break;
    case PROV_FMT_CSV:
        prov_put_csv(&b, c->device_id, 1);
        prov_put_csv(&b, c->keyref, 0);
        prov_put_csv(&b, c->secret_b64, 0);
        prov_put_csv(&b, c->password, 0);
        prov_put_csv(&b, fqdn, 0);
        prov_put_csv(&b, serial ? serial : "", 0);
        prov_put_csv(&b, model ? model : "", 0);
        prov_put(&b, "\n", 1);
        break;
    case PROV_FMT_RECORD:
        if (prov_record_encode(c, serial, model, (uint8_t *)buf, err, errlen) != 0)
            return -1;
        *len = PROV_RECORD_SIZE;
        return 0;
    default:
        snprintf(err, errlen, "unknown output format");
        return -1;
    }
    if (b.overflow) {
        snprintf(err, errlen, "output line for %s longer than %d bytes", c->device_id,
                 PROV_OUT_MAX);
        return -1;
    }
    *len = b.len;
    return 0;
}

/* ---- files ------------------------------------------------------------- */

static int prov_flush(prov_out_t *o, char *err, size_t errlen)
{
    if (o->used == 0)
        return 0;
    int rc = cmn_write_all(o->fd, o->buf, o->used);
    cmn_wipe(o->buf, o->used);
    o->used = 0;
    if (rc != 0) {
        snprintf(err, errlen, "%s: write error: %s", o->to_stdout ? "standard output" : o->path,
                 strerror(errno));
        return -1;
    }
    return 0;
}

/* Syncs the directory holding path, so that a rename in it is durable. */
static void prov_sync_parent(const char *path)
{
    char *copy = strdup(path);
    if (copy == NULL)
        return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(copy);
}

prov_out_t *prov_out_open(int fmt, const char *path, int per_device, char *err, size_t errlen)
{
    struct stat st;
    prov_out_t *o = calloc(1, sizeof *o);
    if (o == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    o->fmt = fmt;
    o->per_device = per_device;
    o->fd = -1;
    o->to_stdout = strcmp(path, "-") == 0;
    if (o->to_stdout && per_device) {
        snprintf(err, errlen, "a directory of per-device files needs a name, not '-'");
        goto fail;
    }
    o->path = strdup(path);
    o->buf = per_device ? NULL : malloc(PROV_OUT_BUF);
    if (o->path == NULL || (!per_device && o->buf == NULL)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (o->to_stdout) {
        o->fd = STDOUT_FILENO;
        return o;
    }
    if (lstat(path, &st) == 0) {
        snprintf(err, errlen, "%s: already exists; output is never written over an existing "
                 "file or directory", path);
        goto fail;
    }
    if (errno != ENOENT) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    size_t tl = strlen(path) + sizeof ".tmp-XXXXXX";
    o->tmp = malloc(tl);
    if (o->tmp == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    snprintf(o->tmp, tl, "%s.tmp-XXXXXX", path);
    if (per_device) {
        if (mkdtemp(o->tmp) == NULL) {
            snprintf(err, errlen, "%s: cannot create a directory next to it: %s", path,
                     strerror(errno));
            goto fail;
        }
        o->fd = open(o->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } else {
        o->fd = mkostemp(o->tmp, O_CLOEXEC); /* mode 0600 */
    }
    if (o->fd < 0) {
        snprintf(err, errlen, "%s: cannot create a file next to it: %s", path, strerror(errno));
        if (per_device)
            rmdir(o->tmp);
        goto fail;
    }
    return o;
fail:
    free(o->tmp);
    o->tmp = NULL;
    prov_out_free(o);
    return NULL;
}

static int prov_out_device_file(prov_out_t *o, const char *device_id, const void *data,
                                size_t len, char *err, size_t errlen)
{
    char name[64];
    int rc = -1;
    snprintf(name, sizeof name, "%s%s", device_id, prov_fmt_suffix(o->fmt));
    int fd = openat(o->fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s/%s: cannot create: %s", o->path, name, strerror(errno));
        return -1;
    }
    if ((o->fmt == PROV_FMT_CSV &&
         cmn_write_all(fd, PROV_OUT_CSV_HEADER, strlen(PROV_OUT_CSV_HEADER)) != 0) ||
        cmn_write_all(fd, data, len) != 0) {
        snprintf(err, errlen, "%s/%s: write error: %s", o->path, name, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (close(fd) != 0 && rc == 0) {
        snprintf(err, errlen, "%s/%s: write error: %s", o->path, name, strerror(errno));
        rc = -1;
    }
    return rc;
}

int prov_out_write_raw(prov_out_t *o, const void *data, size_t len, char *err, size_t errlen)
{
    if (o->per_device) {
        snprintf(err, errlen, "raw data cannot go to a directory");
        return -1;
    }
    while (len > 0) {
        size_t room = PROV_OUT_BUF - o->used;
        size_t n = len < room ? len : room;
        memcpy(o->buf + o->used, data, n);
        o->used += n;
        data = (const unsigned char *)data + n;
        len -= n;
        if (o->used == PROV_OUT_BUF && prov_flush(o, err, errlen) != 0)
            return -1;
    }
    return 0;
}

int prov_out_write(prov_out_t *o, const prov_cred_t *c, const char *serial, const char *model,
                   char *err, size_t errlen)
{
    char line[PROV_OUT_MAX];
    size_t len = 0;
    int rc = -1;

    if (prov_out_format(o->fmt, c, serial, model, line, &len, err, errlen) != 0)
        goto out;
    if (o->per_device) {
        rc = prov_out_device_file(o, c->device_id, line, len, err, errlen);
    } else {
        if (o->count == 0 && o->fmt == PROV_FMT_CSV &&
            prov_out_write_raw(o, PROV_OUT_CSV_HEADER, strlen(PROV_OUT_CSV_HEADER), err,
                               errlen) != 0)
            goto out;
        rc = prov_out_write_raw(o, line, len, err, errlen);
    }
    if (rc == 0)
        o->count++;
out:
    cmn_wipe(line, sizeof line);
    return rc;
}

int prov_out_finish(prov_out_t *o, char *err, size_t errlen)
{
    if (!o->per_device && o->count == 0 && o->fmt == PROV_FMT_CSV &&
        prov_out_write_raw(o, PROV_OUT_CSV_HEADER, strlen(PROV_OUT_CSV_HEADER), err, errlen) != 0)
        return -1;
    if (!o->per_device && prov_flush(o, err, errlen) != 0)
        return -1;
    if (o->to_stdout)
        return 0;
    if (o->per_device ? syncfs(o->fd) != 0 || fsync(o->fd) != 0 : fsync(o->fd) != 0) {
        snprintf(err, errlen, "%s: cannot sync to disk: %s", o->path, strerror(errno));
        return -1;
    }
    return 0;
}

int prov_out_commit(prov_out_t *o, char *err, size_t errlen)
{
    if (o->to_stdout || o->committed)
        return 0;
    if (renameat2(AT_FDCWD, o->tmp, AT_FDCWD, o->path, RENAME_NOREPLACE) != 0) {
        int e = errno;
        if (e == EINVAL || e == ENOSYS) {
            /* A file system without RENAME_NOREPLACE: link() never replaces
             * a file; a directory is renamed after checking the name. */
            struct stat st;
            if (o->per_device ? (lstat(o->path, &st) == 0 || rename(o->tmp, o->path) != 0)
                              : (link(o->tmp, o->path) != 0 || unlink(o->tmp) != 0))
                e = errno ? errno : EEXIST;
            else
                e = 0;
        }
        if (e != 0) {
            snprintf(err, errlen, "%s: cannot put the output in place: %s", o->path,
                     strerror(e));
            return -1;
        }
    }
    o->committed = 1;
    prov_sync_parent(o->path);
    return 0;
}

void prov_out_discard(prov_out_t *o)
{
    if (o == NULL || o->to_stdout || o->committed || o->tmp == NULL)
        return;
    if (o->per_device && o->fd >= 0) {
        int dfd = dup(o->fd);
        DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
        struct dirent *de;
        if (d != NULL) {
            rewinddir(d);
            while ((de = readdir(d)) != NULL)
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                    (void)unlinkat(o->fd, de->d_name, 0);
            closedir(d);
        } else if (dfd >= 0) {
            close(dfd);
        }
        (void)rmdir(o->tmp);
    } else {
        (void)unlink(o->tmp);
    }
    free(o->tmp);
    o->tmp = NULL;
}

void prov_out_free(prov_out_t *o)
{
    if (o == NULL)
        return;
    prov_out_discard(o);
    if (o->fd >= 0 && !o->to_stdout)
        close(o->fd);
    if (o->buf != NULL) {
        cmn_wipe(o->buf, PROV_OUT_BUF);
        free(o->buf);
    }
    free(o->tmp);
    free(o->path);
    free(o);
}

size_t prov_out_count(const prov_out_t *o)
{
    return o->count;
}
