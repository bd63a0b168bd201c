/* vectors: reader for docs/vectors/protocol-vectors.txt, shared by the unit
 * tests of the SDK, the gateway and the provisioning tool.
 *
 * The file is a list of records separated by blank lines; each line is
 * "key = value". vectors_load() reads them all; records are then walked with
 * vectors_next() filtered by type, and fields read with vectors_get(). */
#ifndef DDNS_TEST_VECTORS_H
#define DDNS_TEST_VECTORS_H

#include <stddef.h>

typedef struct vectors vectors_t;
typedef struct vectors_rec vectors_rec_t;

/* Loads the file at path (NULL: $DDNS_VECTORS, else the path relative to the
 * repository root used by the Makefile). Exits the process with a message on
 * error: a test without its vectors must not pass. */
vectors_t *vectors_load(const char *path);
void vectors_free(vectors_t *v);

/* Next record of the given type after prev (NULL: from the start). */
const vectors_rec_t *vectors_next(const vectors_t *v, const vectors_rec_t *prev,
                                  const char *type);
/* Number of records of the given type. */
size_t vectors_count(const vectors_t *v, const char *type);

/* Value of key in rec, or NULL when absent. */
const char *vectors_get(const vectors_rec_t *rec, const char *key);
/* Like vectors_get but exits with a message when the key is absent. */
const char *vectors_need(const vectors_rec_t *rec, const char *key);
/* Decodes the hex value of key into a malloc'd buffer (caller frees);
 * *len receives its length. Exits on a missing key or bad hex. */
unsigned char *vectors_hex(const vectors_rec_t *rec, const char *key, size_t *len);

#endif
