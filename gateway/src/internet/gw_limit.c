/* gw_limit: per-source connection and authentication limits (see gw_limit.h). */
#include "gw_limit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <openssl/rand.h>

#include "gw_clock.h"
#include "gw_err.h"
#include "gw_log.h"

#define GW_LIMIT_BUCKETS 4096
/* Entries looked at from the old end of the list for one to evict. */
#define GW_LIMIT_EVICT_SCAN 64

struct gw_src {
    struct gw_src *next;            /* in its bucket */
    TAILQ_ENTRY(gw_src) lru;        /* in the list by last activity, oldest first */
    unsigned char key[16];
    int conns;
    int fails;              /* failures in the current window */
    int64_t window_start;   /* monotonic seconds */
    int64_t blocked_until;  /* monotonic seconds; 0: not blocked */
    int unflushed;          /* failures not yet taken by gw_limit_take_failures */
};

struct gw_limit {
    pthread_mutex_t mu;
    gw_limit_conf_t conf;
    const char *what;
    uint64_t seed[2];
    struct gw_src *b[GW_LIMIT_BUCKETS];
    TAILQ_HEAD(gw_srcq, gw_src) lru;
    size_t nsrc;
    size_t max_sources;
    size_t nconns;
    size_t sweep;           /* next bucket to tidy */
    int taking;             /* gw_limit_take_failures() was called */
    int64_t full_warned;
};

static gw_limit_t *gw_lim;      /* the device listeners' table */

/* IPv4 (also IPv4-mapped IPv6) as ::ffff:a.b.c.d; IPv6 as its /64. */
static int gw_limit_key(const struct sockaddr *sa, unsigned char key[16])
{
    memset(key, 0, 16);
    if (sa == NULL)
        return -1;
    if (sa->sa_family == AF_INET) {
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a))
            memcpy(key, a, 16);
        else
            memcpy(key, a, 8);
        return 0;
    }
    return -1;
}

static size_t gw_limit_hash(const struct gw_limit *l, const unsigned char key[16])
{
    uint64_t a, b;
    memcpy(&a, key, 8);
    memcpy(&b, key + 8, 8);
    uint64_t h = (a ^ l->seed[0]) * 0x9e3779b97f4a7c15ULL;
    h ^= (b ^ l->seed[1]) + (h << 6) + (h >> 2);
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 29;
    return (size_t)(h % GW_LIMIT_BUCKETS);
}

static int gw_src_idle(const struct gw_src *s, const gw_limit_conf_t *c, int64_t now)
{
    return s->conns == 0 && s->blocked_until <= now && s->unflushed == 0 &&
           (s->fails == 0 || now - s->window_start >= c->auth_fail_window);
}

/* Takes s (found at *pp of its bucket) out of the table and frees it. */
static void gw_limit_drop(struct gw_limit *l, struct gw_src **pp, struct gw_src *s)
{
    *pp = s->next;
    TAILQ_REMOVE(&l->lru, s, lru);
    free(s);
    l->nsrc--;
}

/* Drops idle entries of one bucket per call: the table tidies itself. */
static void gw_limit_tidy(struct gw_limit *l, int64_t now)
{
    struct gw_src **pp = &l->b[l->sweep];
    l->sweep = (l->sweep + 1) % GW_LIMIT_BUCKETS;
    while (*pp != NULL) {
        struct gw_src *s = *pp;
        if (gw_src_idle(s, &l->conf, now))
            gw_limit_drop(l, pp, s);
        else
            pp = &s->next;
    }
}

/* Makes room for one entry: evicts the least recently seen entry without
 * an open connection. Returns 0, or -1 when the oldest entries all have
 * connections (the table then grows: they are bounded by the connections). */
static int gw_limit_evict(struct gw_limit *l, int64_t now)
{
    struct gw_src *s = TAILQ_FIRST(&l->lru);
    for (int i = 0; s != NULL && i < GW_LIMIT_EVICT_SCAN; i++, s = TAILQ_NEXT(s, lru)) {
        if (s->conns > 0)
            continue;
        struct gw_src **pp = &l->b[gw_limit_hash(l, s->key)];
        while (*pp != s)
            pp = &(*pp)->next;
        gw_limit_drop(l, pp, s);
        if (now - l->full_warned >= 60) {
            l->full_warned = now;
            gw_warn("%s source table full (%zu sources): the least recently seen are "
                    "forgotten", l->what, l->max_sources);
        }
        return 0;
    }
    return -1;
}

/* The entry of key (created when create is set), now the most recently
 * seen; NULL if absent or out of memory. Called with the mutex held. */
static struct gw_src *gw_limit_find(struct gw_limit *l, const unsigned char key[16], int create,
                                    int64_t now)
{
    size_t h = gw_limit_hash(l, key);
    for (struct gw_src *s = l->b[h]; s != NULL; s = s->next)
        if (memcmp(s->key, key, 16) == 0) {
            TAILQ_REMOVE(&l->lru, s, lru);
            TAILQ_INSERT_TAIL(&l->lru, s, lru);
            return s;
        }
    if (!create)
        return NULL;
    if (l->nsrc >= l->max_sources)
        (void)gw_limit_evict(l, now);
    struct gw_src *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    memcpy(s->key, key, 16);
    s->next = l->b[h];
    l->b[h] = s;
    TAILQ_INSERT_TAIL(&l->lru, s, lru);
    l->nsrc++;
    return s;
}

gw_limit_t *gw_limit_new(const gw_limit_conf_t *conf, size_t max_sources, const char *what)
{
    struct gw_limit *l = calloc(1, sizeof *l);
    if (l == NULL)
        return NULL;
    if (pthread_mutex_init(&l->mu, NULL) != 0) {
        free(l);
        return NULL;
    }
    if (RAND_bytes((unsigned char *)l->seed, sizeof l->seed) != 1)
        l->seed[0] = (uint64_t)time(NULL) * 0x2545F4914F6CDD1DULL;
    TAILQ_INIT(&l->lru);
    l->conf = *conf;
    l->what = what;
    l->max_sources = max_sources > 0 ? max_sources : GW_LIMIT_MAX_SOURCES;
    l->full_warned = -1000;
    return l;
}

void gw_limit_free(gw_limit_t *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < GW_LIMIT_BUCKETS; i++) {
        struct gw_src *s = l->b[i];
        while (s != NULL) {
            struct gw_src *n = s->next;
            free(s);
            s = n;
        }
    }
    pthread_mutex_destroy(&l->mu);
    free(l);
}

void gw_limit_configure(gw_limit_t *l, const gw_limit_conf_t *conf)
{
    if (l == NULL)
        return;
    pthread_mutex_lock(&l->mu);
    l->conf = *conf;
    pthread_mutex_unlock(&l->mu);
}

gw_limit_t *gw_limit_device(void)
{
    return gw_lim;
}

int gw_limit_init(const gw_limit_conf_t *conf)
{
    if (gw_lim != NULL) {
        gw_limit_configure(gw_lim, conf);
        return GW_OK;
    }
    gw_lim = gw_limit_new(conf, GW_LIMIT_MAX_SOURCES, "device");
    return gw_lim != NULL ? GW_OK : GW_ENOMEM;
}

void gw_limit_shutdown(void)
{
    gw_limit_t *l = gw_lim;
    gw_lim = NULL;
    gw_limit_free(l);
}

int gw_limit_open_in(gw_limit_t *l, const struct sockaddr *sa)
{
    unsigned char key[16];
    int rc = GW_LIMIT_OK;
    if (l == NULL)
        return GW_LIMIT_OK;
    int haskey = gw_limit_key(sa, key) == 0;
    pthread_mutex_lock(&l->mu);
    int64_t now = gw_clock_s();
    gw_limit_tidy(l, now);
    if (l->conf.max_connections > 0 && l->nconns >= (size_t)l->conf.max_connections) {
        rc = GW_LIMIT_TOTAL;
        goto out;
    }
    struct gw_src *s = haskey ? gw_limit_find(l, key, 1, now) : NULL;
    if (s != NULL && l->conf.max_connections_per_source > 0 &&
        s->conns >= l->conf.max_connections_per_source) {
        rc = GW_LIMIT_SOURCE;
        goto out;
    }
    if (s != NULL)
        s->conns++;
    l->nconns++;
out:
    pthread_mutex_unlock(&l->mu);
    return rc;
}

void gw_limit_close_in(gw_limit_t *l, const struct sockaddr *sa)
{
    unsigned char key[16];
    if (l == NULL)
        return;
    int haskey = gw_limit_key(sa, key) == 0;
    pthread_mutex_lock(&l->mu);
    struct gw_src *s = haskey ? gw_limit_find(l, key, 0, 0) : NULL;
    if (s != NULL && s->conns > 0)
        s->conns--;
    if (l->nconns > 0)
        l->nconns--;
    pthread_mutex_unlock(&l->mu);
}

size_t gw_limit_connections_in(gw_limit_t *l)
{
    if (l == NULL)
        return 0;
    pthread_mutex_lock(&l->mu);
    size_t n = l->nconns;
    pthread_mutex_unlock(&l->mu);
    return n;
}

size_t gw_limit_sources_in(gw_limit_t *l)
{
    if (l == NULL)
        return 0;
    pthread_mutex_lock(&l->mu);
    size_t n = l->nsrc;
    pthread_mutex_unlock(&l->mu);
    return n;
}

enum { GW_FAIL_LISTED = 1, GW_FAIL_LIMITED = 2 };

/* One failure: among the failing sources (GW_FAIL_LISTED), towards the
 * block (GW_FAIL_LIMITED), or both. */
static void gw_limit_fail(gw_limit_t *l, const struct sockaddr *sa, int how)
{
    unsigned char key[16];
    if (l == NULL || gw_limit_key(sa, key) != 0)
        return;
    pthread_mutex_lock(&l->mu);
    int taking = (how & GW_FAIL_LISTED) && l->taking;
    int limiting = (how & GW_FAIL_LIMITED) && l->conf.auth_fail_limit > 0;
    if (!limiting && !taking)
        goto out;
    int64_t now = gw_clock_s();
    struct gw_src *s = gw_limit_find(l, key, 1, now);
    if (s == NULL)
        goto out;
    if (taking && s->unflushed < INT_MAX)
        s->unflushed++;
    if (!limiting)
        goto out;
    if (s->fails == 0 || now - s->window_start >= l->conf.auth_fail_window) {
        s->fails = 0;
        s->window_start = now;
    }
    if (++s->fails >= l->conf.auth_fail_limit && s->blocked_until <= now) {
        s->blocked_until = now + l->conf.auth_block_time;
        s->fails = 0;
        char text[64];
        gw_limit_source_text(sa, text, sizeof text);
        gw_warn("%s: source %s blocked for %d s after %d failed authentications within %d s",
                l->what, text, l->conf.auth_block_time, l->conf.auth_fail_limit,
                l->conf.auth_fail_window);
    }
out:
    pthread_mutex_unlock(&l->mu);
}

void gw_limit_failed_in(gw_limit_t *l, const struct sockaddr *sa)
{
    gw_limit_fail(l, sa, GW_FAIL_LISTED | GW_FAIL_LIMITED);
}

int gw_limit_blocked_in(gw_limit_t *l, const struct sockaddr *sa)
{
    unsigned char key[16];
    int left = 0;
    if (l == NULL || gw_limit_key(sa, key) != 0)
        return 0;
    pthread_mutex_lock(&l->mu);
    int64_t now = gw_clock_s();
    struct gw_src *s = gw_limit_find(l, key, 0, now);
    if (s != NULL && s->blocked_until > now)
        left = (int)(s->blocked_until - now);
    pthread_mutex_unlock(&l->mu);
    return left;
}

/* ---- the device listeners' table ------------------------------------------- */

int gw_limit_conn_open(const struct sockaddr *sa)
{
    return gw_limit_open_in(gw_lim, sa);
}

void gw_limit_conn_close(const struct sockaddr *sa)
{
    gw_limit_close_in(gw_lim, sa);
}

size_t gw_limit_connections(void)
{
    return gw_limit_connections_in(gw_lim);
}

void gw_limit_auth_failed(const struct sockaddr *sa)
{
    gw_limit_fail(gw_lim, sa, GW_FAIL_LISTED | GW_FAIL_LIMITED);
}

void gw_limit_abuse(const struct sockaddr *sa)
{
    gw_limit_fail(gw_lim, sa, GW_FAIL_LIMITED);
}

void gw_limit_failure_listed(const struct sockaddr *sa)
{
    gw_limit_fail(gw_lim, sa, GW_FAIL_LISTED);
}

int gw_limit_auth_blocked(const struct sockaddr *sa)
{
    return gw_limit_blocked_in(gw_lim, sa);
}

static void gw_limit_key_text(const unsigned char key[16], char *out, size_t outlen)
{
    char a[INET6_ADDRSTRLEN];
    if (key[10] == 0xff && key[11] == 0xff && memcmp(key, "\0\0\0\0\0\0\0\0\0\0", 10) == 0) {
        inet_ntop(AF_INET, key + 12, a, sizeof a);
        snprintf(out, outlen, "%s", a);
    } else {
        inet_ntop(AF_INET6, key, a, sizeof a);
        snprintf(out, outlen, "%s/64", a);
    }
}

void gw_limit_source_text(const struct sockaddr *sa, char *out, size_t outlen)
{
    unsigned char key[16];
    if (gw_limit_key(sa, key) != 0) {
        snprintf(out, outlen, "-");
        return;
    }
    gw_limit_key_text(key, out, outlen);
}

size_t gw_limit_take_failures(gw_limit_fail_t *out, size_t max)
{
    struct gw_limit *l = gw_lim;
    size_t n = 0;
    if (l == NULL)
        return 0;
    pthread_mutex_lock(&l->mu);
    l->taking = 1;
    for (size_t b = 0; b < GW_LIMIT_BUCKETS && n < max; b++)
        for (struct gw_src *s = l->b[b]; s != NULL && n < max; s = s->next)
            if (s->unflushed > 0) {
                gw_limit_key_text(s->key, out[n].source, sizeof out[n].source);
                out[n].failures = s->unflushed;
                s->unflushed = 0;
                n++;
            }
    pthread_mutex_unlock(&l->mu);
    return n;
}
