/* ld_work: requests and answers of the workloads (see ld_work.h). */
#include "ld_work.h"

#include "ddns_http.h"
#include "ddns_sha256.h"

#include <stdio.h>
#include <string.h>

#define LD_USER_AGENT "ddns-load/" DDNS_SDK_VERSION

static const char *const result_names[LD_R_COUNT] = {
    [LD_R_GOOD] = "good",         [LD_R_NOCHG] = "nochg",
    [LD_R_BADREQUEST] = "badrequest", [LD_R_BADAUTH] = "badauth",
    [LD_R_BADTIME] = "badtime",   [LD_R_DISABLED] = "disabled",
    [LD_R_NOTFOUND] = "notfound", [LD_R_REPLAY] = "replay",
    [LD_R_RATELIMIT] = "ratelimit", [LD_R_911] = "911", [LD_R_BADADDR] = "badaddr",
    [LD_R_MOVED] = "moved",
    [LD_R_NOHOST] = "nohost",     [LD_R_NOTFQDN] = "notfqdn",
    [LD_R_NUMHOST] = "numhost",   [LD_R_ABUSE] = "abuse",
    [LD_R_BADAGENT] = "badagent", [LD_R_DNSERR] = "dnserr",
    [LD_R_HELLO] = "hello",
};

const char *ld_result_name(ld_result_t r)
{
    return (unsigned)r < LD_R_COUNT ? result_names[r] : "?";
}

int ld_result_ok(ld_result_t r)
{
    return r == LD_R_GOOD || r == LD_R_NOCHG || r == LD_R_HELLO;
}

static ld_result_t from_sdk(ddns_result_t r)
{
    switch (r) {
    case DDNS_RESULT_GOOD: return LD_R_GOOD;
    case DDNS_RESULT_NOCHG: return LD_R_NOCHG;
    case DDNS_RESULT_BADREQUEST: return LD_R_BADREQUEST;
    case DDNS_RESULT_BADAUTH: return LD_R_BADAUTH;
    case DDNS_RESULT_BADTIME: return LD_R_BADTIME;
    case DDNS_RESULT_DISABLED: return LD_R_DISABLED;
    case DDNS_RESULT_NOTFOUND: return LD_R_NOTFOUND;
    case DDNS_RESULT_REPLAY: return LD_R_REPLAY;
    case DDNS_RESULT_RATELIMIT: return LD_R_RATELIMIT;
    case DDNS_RESULT_SERVERERROR: return LD_R_911;
    case DDNS_RESULT_BADAGENT: return LD_R_BADAGENT;
    case DDNS_RESULT_BADADDR: return LD_R_BADADDR;
    case DDNS_RESULT_MOVED: return LD_R_MOVED;
    case DDNS_RESULT_NONE: break;
    }
    return LD_R_COUNT;
}

/* dyndns2 answers: the first word of the body names the result. */
static ld_result_t dyndns2_token(ddns_span_t body)
{
    size_t n = 0;
    while (n < body.len && body.ptr[n] != ' ' && body.ptr[n] != '\n' && body.ptr[n] != '\r')
        n++;
    for (unsigned r = 0; r < LD_R_HELLO; r++) {
        if (strlen(result_names[r]) == n && memcmp(result_names[r], body.ptr, n) == 0)
            return (ld_result_t)r;
    }
    return LD_R_COUNT;
}

void ld_work_parse(ld_workload_t wl, const uint8_t *raw, size_t len, ld_answer_t *a)
{
    ddns_http_response_t http;
    ddns_response_t resp;
    ddns_err_t err = ddns_http_response_parse(ddns_span(raw, len), &http);

    memset(a, 0, sizeof *a);
    a->result = LD_R_COUNT;
    if (err == DDNS_E_HTTP_INCOMPLETE) {
        a->kind = LD_ANS_INCOMPLETE;
        return;
    }
    if (err != DDNS_OK) {
        a->kind = LD_ANS_GARBAGE;
        return;
    }
    a->status = http.status;
    a->total_len = http.total_len;
    a->kind = LD_ANS_INVALID;
    switch (wl) {
    case LD_WL_NOCHG:
    case LD_WL_CHANGE:
    case LD_WL_REPLAY:
        if (ddns_response_parse(http.status, http.body, &resp) == DDNS_OK)
            a->result = from_sdk(resp.result);
        break;
    case LD_WL_DYNDNS2:
    case LD_WL_DYNDNS2_CHANGE:
        a->result = dyndns2_token(http.body);
        break;
    case LD_WL_HELLO:
        if (http.status == 200)
            a->result = LD_R_HELLO;
        break;
    }
    if (a->result != LD_R_COUNT)
        a->kind = LD_ANS_VALID;
}

static void format_v4(uint32_t a, char out[16])
{
    snprintf(out, 16, "%u.%u.%u.%u", (unsigned)(a >> 24), (unsigned)(a >> 16) & 255u,
             (unsigned)(a >> 8) & 255u, (unsigned)a & 255u);
}

void ld_addr_nochg(uint32_t index, char out[16])
{
    if (index < (1u << 17))
        format_v4((198u << 24 | 18u << 16) + index, out);
    else
        format_v4((10u << 24) + ((index - (1u << 17)) & 0xffffffu), out);
}

void ld_addr_change(uint32_t base, uint32_t index, uint64_t n, char out[16])
{
    /* Consecutive changes of one device are consecutive addresses of the
     * 2^22 of 100.64.0.0/10; devices start far apart. */
    uint64_t off = ((uint64_t)base + (uint64_t)index * 2654435761u + n) & 0x3fffffu;
    format_v4((100u << 24 | 64u << 16) + (uint32_t)off, out);
}

int ld_work_build(const ld_work_t *w, ld_device_t *d, uint64_t ts,
                  const uint8_t nonce[DDNS_NONCE_LEN], uint8_t *out, size_t *len)
{
    char addr[16];
    int n;

    switch (w->wl) {
    case LD_WL_NOCHG:
    case LD_WL_CHANGE: {
        ddns_request_t req;
        memset(&req, 0, sizeof req);
        if (w->wl == LD_WL_NOCHG)
            ld_addr_nochg(d->index, addr);
        else
            ld_addr_change(w->change_base, d->index, d->changes++, addr);
        req.host = ddns_span(w->host, strlen(w->host));
        req.user_agent = DDNS_SPAN_LITERAL(LD_USER_AGENT);
        req.device_id = ddns_span(d->device_id, DDNS_DEVICE_ID_LEN);
        req.kid = ddns_span(d->kid, strlen(d->kid));
        req.ipv4 = ddns_span(addr, strlen(addr));
        req.ts = ts;
        memcpy(req.nonce, nonce, DDNS_NONCE_LEN);
        return ddns_request_build(&req, d->secret, out, LD_REQUEST_MAX, len) == DDNS_OK ? 0
                                                                                         : -1;
    }
    case LD_WL_DYNDNS2:
    case LD_WL_DYNDNS2_CHANGE:
        if (w->wl == LD_WL_DYNDNS2)
            ld_addr_nochg(d->index, addr);
        else
            ld_addr_change(w->change_base, d->index, d->changes++, addr);
        n = snprintf((char *)out, LD_REQUEST_MAX,
                     "GET /nic/update?hostname=%s&myip=%s HTTP/1.1\r\nHost: %s\r\n"
                     "Authorization: %s\r\nUser-Agent: " LD_USER_AGENT "\r\n\r\n",
                     d->fqdn != NULL ? d->fqdn : "", addr, w->host, d->basic);
        break;
    case LD_WL_REPLAY:
        if (w->replay_len > LD_REQUEST_MAX)
            return -1;
        memcpy(out, w->replay, w->replay_len);
        *len = w->replay_len;
        return 0;
    case LD_WL_HELLO:
        n = snprintf((char *)out, LD_REQUEST_MAX,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: " LD_USER_AGENT "\r\n\r\n",
                     w->path, w->host);
        break;
    default:
        return -1;
    }
    if (n < 0 || n >= (int)LD_REQUEST_MAX)
        return -1;
    *len = (size_t)n;
    return 0;
}
