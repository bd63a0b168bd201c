/* gw_metrics: counters and histograms (see gw_metrics.h). */
#include "gw_metrics.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include <event2/buffer.h>

/* Route labels; the last one counts everything else. */
static const char *const gw_m_endpoints[] = {
    "/v1/update", "/nic/update", "/checkip", "/healthz", "other",
};
#define GW_M_NEP (sizeof gw_m_endpoints / sizeof gw_m_endpoints[0])

/* Answer tokens of docs/PROTOCOL.md and of dyndns2; the last is "other". */
static const char *const gw_m_results[] = {
    "good", "nochg", "badrequest", "badauth", "badtime", "disabled", "replay",
    "ratelimit", "911", "notfound", "ok", "nohost", "notfqdn", "numhost", "abuse",
    "badagent", "dnserr", "badaddr", "moved", "other",
};
#define GW_M_NRES (sizeof gw_m_results / sizeof gw_m_results[0])

/* Latency histogram bounds in seconds (Prometheus "le"). */
static const double gw_m_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                     0.25, 0.5, 1, 2.5, 5, 10};
#define GW_M_NB (sizeof gw_m_bounds / sizeof gw_m_bounds[0])

static const struct {
    const char *name, *help;
} gw_m_counter_info[GW_M_NCOUNTERS] = {
    [GW_M_CONN_ACCEPTED] = {"ddns_connections_accepted_total",
                            "Connections accepted within the connection limits."},
    [GW_M_CONN_REFUSED_TOTAL] = {"ddns_connections_refused_total{reason=\"max_connections\"}",
                                 NULL},
    [GW_M_CONN_REFUSED_SOURCE] = {"ddns_connections_refused_total{reason=\"per_source\"}", NULL},
    [GW_M_PROXY_REFUSED] = {"ddns_connections_refused_total{reason=\"proxy_header\"}", NULL},
    [GW_M_HEADER_TIMEOUT] = {"ddns_connections_refused_total{reason=\"header_timeout\"}", NULL},
    [GW_M_AUTH_FAILURES] = {"ddns_auth_failures_total",
                            "Requests answered badauth (wrong signature, key or device)."},
    [GW_M_RATELIMITED] = {"ddns_ratelimited_total",
                          "Requests answered ratelimit (failed-authentication limiter)."},
    [GW_M_PUBLISH_OK] = {"ddns_publish_batches_total{result=\"ok\"}", NULL},
    [GW_M_PUBLISH_FAILED] = {"ddns_publish_batches_total{result=\"failed\"}", NULL},
    [GW_M_PUBLISH_CHANGES] = {"ddns_publish_changes_total",
                              "Outbox rows published to the DNS primaries."},
    [GW_M_TLS_RELOADS] = {"ddns_reloads_total{result=\"ok\"}", NULL},
    [GW_M_TLS_RELOAD_FAILURES] = {"ddns_reloads_total{result=\"failed\"}", NULL},
    [GW_M_NOCHG_UNWRITTEN] = {"ddns_nochg_unwritten_total",
                              "nochg answers that wrote nothing to the database (polls "
                              "whose signed addresses the names already held)."},
    [GW_M_SEEN_WRITTEN] = {"ddns_seen_written_total",
                           "Devices whose last seen time was written later, in batches "
                           "([database] seen_interval)."},
    [GW_M_SEEN_FAILED] = {"ddns_seen_batches_failed_total",
                          "Batches of last seen times the database refused (kept for the "
                          "next interval)."},
    [GW_M_QUIET_HITS] = {"ddns_quiet_hits_total",
                         "nochg answers given from memory after a barrier, without a read "
                         "of the device's rows ([database] quiet_cache)."},
    [GW_M_QUIET_BARRIERS] = {"ddns_quiet_barriers_total",
                             "Barrier statements: reads of the devices changed since the "
                             "previous one, each shared by the polls that waited for it."},
    [GW_M_QUIET_DROPPED] = {"ddns_quiet_dropped_total",
                            "Answers in memory dropped because their device changed."},
    [GW_M_QUIET_FLUSHES] = {"ddns_quiet_flushes_total",
                            "Times every answer in memory was dropped (the first barrier, a "
                            "provisioning batch, a barrier older than the change log)."},
};

static _Atomic uint64_t gw_m_counters_here[GW_M_NCOUNTERS];
/* The event counters: this process's own, or after gw_metrics_share() a
 * region shared with the processes forked since. */
static _Atomic uint64_t *gw_m_counters = gw_m_counters_here;
static _Atomic uint64_t gw_m_requests[GW_M_NEP][GW_M_NRES];
static _Atomic uint64_t gw_m_buckets[GW_M_NEP][GW_M_NB];  /* not cumulative */
static _Atomic uint64_t gw_m_count[GW_M_NEP];
static _Atomic uint64_t gw_m_sum_us[GW_M_NEP];

int gw_metrics_share(void)
{
    if (gw_m_counters != gw_m_counters_here)
        return 0;
    void *p = mmap(NULL, sizeof gw_m_counters_here, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    _Atomic uint64_t *shared = p;
    for (size_t i = 0; i < GW_M_NCOUNTERS; i++)
        atomic_init(&shared[i], atomic_load(&gw_m_counters_here[i]));
    gw_m_counters = shared;
    return 0;
}

void gw_metrics_inc(enum gw_counter c)
{
    atomic_fetch_add_explicit(&gw_m_counters[c], 1, memory_order_relaxed);
}

void gw_metrics_add(enum gw_counter c, unsigned long n)
{
    atomic_fetch_add_explicit(&gw_m_counters[c], n, memory_order_relaxed);
}

unsigned long long gw_metrics_get(enum gw_counter c)
{
    return atomic_load_explicit(&gw_m_counters[c], memory_order_relaxed);
}

static size_t gw_m_index(const char *const *names, size_t n, const char *s)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (strcmp(names[i], s) == 0)
            return i;
    return n - 1;
}

void gw_metrics_request(const char *path, const char *result, double seconds)
{
    size_t e = gw_m_index(gw_m_endpoints, GW_M_NEP, path);
    size_t r = gw_m_index(gw_m_results, GW_M_NRES, result);
    atomic_fetch_add_explicit(&gw_m_requests[e][r], 1, memory_order_relaxed);
    size_t b = 0;
    while (b < GW_M_NB && seconds > gw_m_bounds[b])
        b++;
    if (b < GW_M_NB)
        atomic_fetch_add_explicit(&gw_m_buckets[e][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&gw_m_count[e], 1, memory_order_relaxed);
    uint64_t us = seconds > 0 ? (uint64_t)(seconds * 1e6) : 0;
    atomic_fetch_add_explicit(&gw_m_sum_us[e], us, memory_order_relaxed);
}

void gw_metrics_update_totals(unsigned long long *updates, unsigned long long *errors)
{
    uint64_t all = 0, bad = 0;
    for (size_t e = 0; e < 2; e++)      /* "/v1/update", "/nic/update" */
        for (size_t r = 0; r < GW_M_NRES; r++) {
            uint64_t v = atomic_load_explicit(&gw_m_requests[e][r], memory_order_relaxed);
            all += v;
            if (r > 1)                  /* neither "good" nor "nochg" */
                bad += v;
        }
    *updates = all;
    *errors = bad;
}

void gw_metrics_render(struct evbuffer *out)
{
    evbuffer_add_printf(out, "# HELP ddns_requests_total HTTP requests answered, by endpoint "
                             "and result token.\n# TYPE ddns_requests_total counter\n");
    for (size_t e = 0; e < GW_M_NEP; e++)
        for (size_t r = 0; r < GW_M_NRES; r++) {
            uint64_t v = atomic_load_explicit(&gw_m_requests[e][r], memory_order_relaxed);
            if (v > 0)
                evbuffer_add_printf(out,
                                    "ddns_requests_total{endpoint=\"%s\",result=\"%s\"} %llu\n",
                                    gw_m_endpoints[e], gw_m_results[r], (unsigned long long)v);
        }
    evbuffer_add_printf(out, "# HELP ddns_request_duration_seconds Time from a complete "
                             "request to its answer, by endpoint.\n"
                             "# TYPE ddns_request_duration_seconds histogram\n");
    for (size_t e = 0; e < GW_M_NEP; e++) {
        uint64_t cum = 0;
        uint64_t count = atomic_load_explicit(&gw_m_count[e], memory_order_relaxed);
        for (size_t b = 0; b < GW_M_NB; b++) {
            cum += atomic_load_explicit(&gw_m_buckets[e][b], memory_order_relaxed);
            evbuffer_add_printf(out,
                                "ddns_request_duration_seconds_bucket{endpoint=\"%s\",le=\"%g\"} "
                                "%llu\n", gw_m_endpoints[e], gw_m_bounds[b],
                                (unsigned long long)cum);
        }
        /* +Inf is the count: read it after the buckets so that it is never
         * smaller than the last bucket even while other threads count. */
        if (count < cum)
            count = cum;
        evbuffer_add_printf(out,
                            "ddns_request_duration_seconds_bucket{endpoint=\"%s\",le=\"+Inf\"} "
                            "%llu\n", gw_m_endpoints[e], (unsigned long long)count);
        evbuffer_add_printf(out, "ddns_request_duration_seconds_sum{endpoint=\"%s\"} %.6f\n",
                            gw_m_endpoints[e],
                            (double)atomic_load_explicit(&gw_m_sum_us[e],
                                                         memory_order_relaxed) / 1e6);
        evbuffer_add_printf(out, "ddns_request_duration_seconds_count{endpoint=\"%s\"} %llu\n",
                            gw_m_endpoints[e], (unsigned long long)count);
    }
    const char *last_family = "";
    size_t last_len = 0;
    for (int c = 0; c < GW_M_NCOUNTERS; c++) {
        const char *name = gw_m_counter_info[c].name;
        size_t fl = strcspn(name, "{");
        if (last_len != fl || strncmp(last_family, name, fl) != 0) {
            static const char *const family_help[] = {
                "ddns_connections_refused_total", "Connections closed at once, by reason.",
                "ddns_publish_batches_total", "RFC 2136 UPDATE batches sent, by result.",
                "ddns_reloads_total", "Configuration reloads on SIGHUP, by result.",
            };
            const char *help = gw_m_counter_info[c].help;
            for (size_t i = 0; help == NULL && i < 6; i += 2)
                if (strlen(family_help[i]) == fl && strncmp(family_help[i], name, fl) == 0)
                    help = family_help[i + 1];
            evbuffer_add_printf(out, "# HELP %.*s %s\n# TYPE %.*s counter\n", (int)fl, name,
                                help ? help : "", (int)fl, name);
            last_family = name;
            last_len = fl;
        }
        evbuffer_add_printf(out, "%s %llu\n", name, gw_metrics_get((enum gw_counter)c));
    }
}
