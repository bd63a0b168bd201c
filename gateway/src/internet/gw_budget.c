/* gw_budget: per-device memory before the database (see gw_budget.h). */
#include "gw_budget.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <openssl/rand.h>

#include "cmn_mac.h"
#include "gw_err.h"
#include "gw_log.h"

#define GW_BUDGET_STRIPES 256
/* Tokens are counted in thousandths, so that rates below one per second
 * refill exactly enough. */
#define GW_BUDGET_MILLI 1000

struct gw_budget_entry {
    char device[CMN_DEVICE_ID_LEN];     /* all zero: a free way */
    uint32_t generation;                /* of last_ts and disabled_until */
    int64_t last_ts;                    /* newest timestamp known used; -1: none */
    int64_t tokens;                     /* thousandths of a request */
    int64_t refilled_ms;                /* when tokens was last brought up to date */
    int64_t disabled_until_ms;          /* 0: not known disabled */
    int64_t used_ms;                    /* last looked at, for the choice of a victim */
};

struct gw_budget {
    pthread_mutex_t mu[GW_BUDGET_STRIPES];
    _Atomic int rate;
    _Atomic int burst;
    _Atomic unsigned long forget_gen;   /* raised by gw_budget_forget_disabled */
    uint64_t seed[2];
    size_t nsets;                       /* a power of two */
    struct gw_budget_entry *e;          /* nsets * GW_BUDGET_WAYS, mmap'd */
    size_t bytes;
    unsigned long *set_gen;             /* per set: forget_gen it has seen */
    size_t set_gen_bytes;
};

static struct gw_budget *gw_bud;
static _Atomic unsigned long long gw_bud_answers[4];

static uint64_t gw_budget_hash(const struct gw_budget *b, const char *device)
{
    uint64_t h = b->seed[0] ^ 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < CMN_DEVICE_ID_LEN; i++) {
        h ^= (unsigned char)device[i];
        h *= 0x100000001b3ULL;
        h ^= h >> 29;
    }
    h ^= b->seed[1];
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 31;
    return h;
}

static void *gw_budget_map(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

int gw_budget_init(const gw_budget_conf_t *conf)
{
    if (gw_bud != NULL) {
        atomic_store(&gw_bud->rate, conf->rate);
        atomic_store(&gw_bud->burst, conf->burst);
        return GW_OK;
    }
    struct gw_budget *b = calloc(1, sizeof *b);
    if (b == NULL)
        return GW_ENOMEM;
    size_t sets = 1;
    while (sets * GW_BUDGET_WAYS < conf->entries && sets < ((size_t)1 << 28))
        sets <<= 1;
    b->nsets = sets;
    b->bytes = sets * GW_BUDGET_WAYS * sizeof *b->e;
    b->set_gen_bytes = sets * sizeof *b->set_gen;
    b->e = gw_budget_map(b->bytes);
    b->set_gen = gw_budget_map(b->set_gen_bytes);
    if (b->e == NULL || b->set_gen == NULL || RAND_bytes((unsigned char *)b->seed, sizeof b->seed) != 1) {
        if (b->e != NULL)
            munmap(b->e, b->bytes);
        if (b->set_gen != NULL)
            munmap(b->set_gen, b->set_gen_bytes);
        free(b);
        return GW_ENOMEM;
    }
    for (size_t i = 0; i < GW_BUDGET_STRIPES; i++)
        pthread_mutex_init(&b->mu[i], NULL);
    atomic_init(&b->rate, conf->rate);
    atomic_init(&b->burst, conf->burst);
    atomic_init(&b->forget_gen, 0);
    gw_bud = b;
    return GW_OK;
}

void gw_budget_shutdown(void)
{
    struct gw_budget *b = gw_bud;
    if (b == NULL)
        return;
    gw_bud = NULL;
    for (size_t i = 0; i < GW_BUDGET_STRIPES; i++)
        pthread_mutex_destroy(&b->mu[i]);
    munmap(b->e, b->bytes);
    munmap(b->set_gen, b->set_gen_bytes);
    free(b);
}

/* The entry of device, locked (*mu to unlock), made when absent (then the
 * least recently used way of its set gives its place). */
static struct gw_budget_entry *gw_budget_find(struct gw_budget *b, const char *device,
                                              int64_t now_ms, pthread_mutex_t **mu)
{
    size_t set = (size_t)gw_budget_hash(b, device) & (b->nsets - 1);
    *mu = &b->mu[set % GW_BUDGET_STRIPES];
    pthread_mutex_lock(*mu);
    struct gw_budget_entry *ways = &b->e[set * GW_BUDGET_WAYS], *victim = &ways[0];
    unsigned long fg = atomic_load(&b->forget_gen);
    if (b->set_gen[set] != fg) {
        /* a status changed since this set was last looked at */
        for (size_t w = 0; w < GW_BUDGET_WAYS; w++)
            ways[w].disabled_until_ms = 0;
        b->set_gen[set] = fg;
    }
    for (size_t w = 0; w < GW_BUDGET_WAYS; w++) {
        if (memcmp(ways[w].device, device, CMN_DEVICE_ID_LEN) == 0) {
            ways[w].used_ms = now_ms;
            return &ways[w];
        }
        if (ways[w].used_ms < victim->used_ms)
            victim = &ways[w];
    }
    memcpy(victim->device, device, CMN_DEVICE_ID_LEN);
    victim->generation = 0;
    victim->last_ts = -1;
    victim->tokens = (int64_t)atomic_load(&b->burst) * GW_BUDGET_MILLI;
    victim->refilled_ms = now_ms;
    victim->disabled_until_ms = 0;
    victim->used_ms = now_ms;
    return victim;
}

/* Device ids are exactly CMN_DEVICE_ID_LEN characters once verified. */
static int gw_budget_usable(const char *device)
{
    return gw_bud != NULL && device != NULL && strlen(device) == CMN_DEVICE_ID_LEN;
}

static int gw_budget_answer(int verdict)
{
    atomic_fetch_add_explicit(&gw_bud_answers[verdict], 1, memory_order_relaxed);
    return verdict;
}

int gw_budget_check(const char *device, uint32_t generation, int64_t ts, int64_t now_ms,
                    int *retry_after)
{
    struct gw_budget *b = gw_bud;
    pthread_mutex_t *mu;
    int verdict = GW_BUDGET_ASK;
    *retry_after = 0;
    if (!gw_budget_usable(device))
        return GW_BUDGET_ASK;
    struct gw_budget_entry *en = gw_budget_find(b, device, now_ms, &mu);
    int same = en->generation == generation;
    if (same && en->disabled_until_ms > now_ms) {
        verdict = GW_BUDGET_DISABLED;
        goto out;
    }
    if (same && ts >= 0 && ts <= en->last_ts) {
        verdict = GW_BUDGET_REPLAY;
        goto out;
    }
    int rate = atomic_load(&b->rate), burst = atomic_load(&b->burst);
    if (rate <= 0)
        goto out;
    /* rate per minute: rate thousandths of a request per 60 ms */
    int64_t full = (int64_t)burst * GW_BUDGET_MILLI;
    int64_t earned = (now_ms - en->refilled_ms) * rate / 60;
    if (earned > 0) {
        en->tokens = en->tokens + earned > full ? full : en->tokens + earned;
        en->refilled_ms = now_ms;
    }
    if (en->tokens > full)
        en->tokens = full;  /* the burst was lowered by a reload */
    if (en->tokens >= GW_BUDGET_MILLI) {
        en->tokens -= GW_BUDGET_MILLI;
        goto out;
    }
    /* milliseconds until one whole request is earned, rounded up to s */
    int64_t wait_ms = ((GW_BUDGET_MILLI - en->tokens) * 60 + rate - 1) / rate;
    *retry_after = (int)((wait_ms + 999) / 1000);
    verdict = GW_BUDGET_RATELIMIT;
out:
    pthread_mutex_unlock(mu);
    return verdict == GW_BUDGET_ASK ? verdict : gw_budget_answer(verdict);
}

void gw_budget_accepted(const char *device, uint32_t generation, int64_t ts, int64_t now_ms)
{
    pthread_mutex_t *mu;
    if (!gw_budget_usable(device) || ts < 0)
        return;
    struct gw_budget_entry *en = gw_budget_find(gw_bud, device, now_ms, &mu);
    if (en->generation != generation) {
        /* what was known belongs to another secret (a reissue) */
        en->generation = generation;
        en->last_ts = -1;
        en->disabled_until_ms = 0;
    }
    if (ts > en->last_ts)
        en->last_ts = ts;
    pthread_mutex_unlock(mu);
}

void gw_budget_disabled(const char *device, uint32_t generation, int64_t now_ms)
{
    pthread_mutex_t *mu;
    if (!gw_budget_usable(device))
        return;
    struct gw_budget_entry *en = gw_budget_find(gw_bud, device, now_ms, &mu);
    if (en->generation != generation) {
        en->generation = generation;
        en->last_ts = -1;
    }
    en->disabled_until_ms = now_ms + (int64_t)GW_BUDGET_DISABLED_TTL * 1000;
    pthread_mutex_unlock(mu);
}

void gw_budget_forget_disabled(void)
{
    if (gw_bud != NULL)
        atomic_fetch_add(&gw_bud->forget_gen, 1);
}

unsigned long long gw_budget_answers(int verdict)
{
    if (verdict <= GW_BUDGET_ASK || verdict > GW_BUDGET_DISABLED)
        return 0;
    return atomic_load_explicit(&gw_bud_answers[verdict], memory_order_relaxed);
}
