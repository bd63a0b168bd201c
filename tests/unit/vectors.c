/* vectors: reader for the protocol test vectors (see vectors.h). */
#include "vectors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VECTORS_DEFAULT_PATH "docs/vectors/protocol-vectors.txt"

struct vectors_field {
    char *key;
    char *value;
};

struct vectors_rec {
    struct vectors_field *fields;
    size_t nfields;
    int line;
};

struct vectors {
    vectors_rec_t *recs;
    size_t nrecs;
};

static void vectors_die(const char *what, const char *detail, int line)
{
    fprintf(stderr, "vectors: %s%s%s (line %d)\n", what, detail ? ": " : "",
            detail ? detail : "", line);
    exit(2);
}

static void *vectors_grow(void *p, size_t n, size_t size)
{
    void *q = realloc(p, n * size);
    if (q == NULL)
        vectors_die("out of memory", NULL, 0);
    return q;
}

vectors_t *vectors_load(const char *path)
{
    if (path == NULL)
        path = getenv("DDNS_VECTORS");
    if (path == NULL)
        path = VECTORS_DEFAULT_PATH;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        vectors_die("cannot open vectors file", path, 0);
    vectors_t *v = calloc(1, sizeof *v);
    if (v == NULL)
        vectors_die("out of memory", NULL, 0);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0;
    vectors_rec_t *cur = NULL;
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (line[0] == '#')
            continue;
        if (n == 0) {
            cur = NULL;
            continue;
        }
        char *eq = strstr(line, " =");
        if (eq == NULL)
            vectors_die("line without ' = '", line, lineno);
        *eq = '\0';
        char *value = eq + 2;
        if (*value == ' ')
            value++;
        if (cur == NULL) {
            if (strcmp(line, "type") != 0)
                vectors_die("record does not start with 'type'", line, lineno);
            v->recs = vectors_grow(v->recs, v->nrecs + 1, sizeof *v->recs);
            cur = &v->recs[v->nrecs++];
            memset(cur, 0, sizeof *cur);
            cur->line = lineno;
        }
        cur->fields = vectors_grow(cur->fields, cur->nfields + 1, sizeof *cur->fields);
        cur->fields[cur->nfields].key = strdup(line);
        cur->fields[cur->nfields].value = strdup(value);
        if (!cur->fields[cur->nfields].key || !cur->fields[cur->nfields].value)
            vectors_die("out of memory", NULL, lineno);
        cur->nfields++;
    }
    free(line);
    fclose(f);
    if (v->nrecs == 0)
        vectors_die("no records in", path, 0);
    return v;
}

void vectors_free(vectors_t *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < v->nrecs; i++) {
        for (size_t j = 0; j < v->recs[i].nfields; j++) {
            free(v->recs[i].fields[j].key);
            free(v->recs[i].fields[j].value);
        }
        free(v->recs[i].fields);
    }
    free(v->recs);
    free(v);
}

const char *vectors_get(const vectors_rec_t *rec, const char *key)
{
    for (size_t i = 0; i < rec->nfields; i++)
        if (strcmp(rec->fields[i].key, key) == 0)
            return rec->fields[i].value;
    return NULL;
}

const char *vectors_need(const vectors_rec_t *rec, const char *key)
{
    const char *s = vectors_get(rec, key);
    if (s == NULL)
        vectors_die("record lacks key", key, rec->line);
    return s;
}

const vectors_rec_t *vectors_next(const vectors_t *v, const vectors_rec_t *prev,
                                  const char *type)
{
    size_t i = prev ? (size_t)(prev - v->recs) + 1 : 0;
    for (; i < v->nrecs; i++)
        if (strcmp(vectors_need(&v->recs[i], "type"), type) == 0)
            return &v->recs[i];
    return NULL;
}

size_t vectors_count(const vectors_t *v, const char *type)
{
    size_t n = 0;
    for (const vectors_rec_t *r = vectors_next(v, NULL, type); r; r = vectors_next(v, r, type))
        n++;
    return n;
}

static int vectors_nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

unsigned char *vectors_hex(const vectors_rec_t *rec, const char *key, size_t *len)
{
    const char *s = vectors_need(rec, key);
    size_t n = strlen(s);
    if (n % 2 != 0)
        vectors_die("odd hex length in", key, rec->line);
    unsigned char *out = malloc(n / 2 + 1);
    if (out == NULL)
        vectors_die("out of memory", NULL, rec->line);
    for (size_t i = 0; i < n / 2; i++) {
        int hi = vectors_nibble(s[2 * i]), lo = vectors_nibble(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            vectors_die("bad hex in", key, rec->line);
        out[i] = (unsigned char)(hi * 16 + lo);
    }
    out[n / 2] = 0;
    *len = n / 2;
    return out;
}
