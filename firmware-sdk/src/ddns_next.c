/* ddns_next: what the firmware does after an attempt, the address learnt
 * from the answers and the clock offset learnt from a badtime answer.
 *
 * The rules follow the usual terms of dynamic DNS services: update when an
 * address changes and otherwise only as a periodic keep-alive, never more
 * than one update a minute, back off on errors, obey a server's rate limit,
 * wait for another address when the gateway refuses this one, and stop on
 * an authentication refusal until a person acts. A random part
 * keeps devices that fail together (a server outage) from retrying
 * together. The address the gateway recorded (or, moved, sees) is learnt,
 * so that the next request can name it as peer. */
#include "ddns_internal.h"

#include <string.h>

/* Learns the address of an answer with one address when it fits (1 to
 * DDNS_IPV6_MAX bytes: an empty one, which no parsed answer has, is not
 * an address). */
DDNS__NOINLINE static bool learn(ddns_state_t *st, const ddns_response_t *r)
{
    if (r->naddrs != 1u || r->addr[0].len - 1u >= DDNS_IPV6_MAX)
        return false;
    memcpy(st->peer, r->addr[0].ptr, r->addr[0].len);
    st->peer_len = (uint8_t)r->addr[0].len;
    return true;
}

ddns_err_t ddns_clock_correct(ddns_state_t *st, const ddns_response_t *r, uint64_t device_now)
{
    if (st == NULL || r == NULL)
        return DDNS_E_NULL;
    if (r->result != DDNS_RESULT_BADTIME || r->server_time > DDNS_TS_MAX ||
        device_now > DDNS_TS_MAX)
        return DDNS_E_RESP_DATA;
    st->clock_offset = (int64_t)r->server_time - (int64_t)device_now;
    st->last_ts = 0;
    return DDNS_OK;
}

ddns_next_t ddns_next(ddns_state_t *st, const ddns_options_t *opt, const ddns_response_t *r,
                      uint64_t device_now, uint32_t random, uint32_t *delay)
{
    unsigned res = r != NULL ? (unsigned)r->result : 0u;
    ddns_next_t next = DDNS_NEXT_RETRY;
    uint32_t base, n;

    if (st == NULL || opt == NULL || delay == NULL)
        return DDNS_NEXT_STOP;
    *delay = 0;
    /* badrequest, badauth, disabled, notfound, badagent: a person must act
     * (badagent: a firmware update) */
    if ((1u << res) & ((1u << DDNS_RESULT_BADREQUEST) | (1u << DDNS_RESULT_BADAUTH) |
                       (1u << DDNS_RESULT_DISABLED) | (1u << DDNS_RESULT_NOTFOUND) |
                       (1u << DDNS_RESULT_BADAGENT)))
        st->stopped = 1;
    /* badaddr: the gateway answered, but refuses the address; sending it
     * again cannot help: update when it changes, else at the keep-alive */
    if (res - DDNS_RESULT_GOOD <= DDNS_RESULT_BADADDR - DDNS_RESULT_GOOD) {
        /* good, nochg with one address: it is the next peer */
        if (res != DDNS_RESULT_BADADDR)
            (void)learn(st, r);
        st->failures = 0;
        st->stopped = 0;
        next = DDNS_NEXT_IDLE;
        base = opt->keepalive;
    } else if (st->stopped) {
        return DDNS_NEXT_STOP;
    } else {
        /* backoff_first, doubled per further failure in a row up to
         * backoff_max */
        n = ++st->failures;
        base = opt->backoff_first;
        while (--n > 0 && base < opt->backoff_max)
            base <<= 1;
        if (base > opt->backoff_max)
            base = opt->backoff_max;
        if (res == DDNS_RESULT_RATELIMIT)
            base = r->retry_after < opt->min_interval     ? opt->min_interval
                   : r->retry_after > opt->retry_after_max ? opt->retry_after_max
                                                           : r->retry_after;
        else if (res == DDNS_RESULT_BADTIME &&
                 ddns_clock_correct(st, r, device_now) == DDNS_OK && st->failures == 1u)
            base = opt->badtime_retry;
        /* moved: sign again at once with the address learnt, once in a
         * row; an address that does not fit is no valid answer */
        else if (res == DDNS_RESULT_MOVED && learn(st, r) && st->failures == 1u)
            base = 0;
    }
    /* base plus a random part of up to half of it (base below 2^20) */
    *delay = base + (((random & 0xfffu) * base) >> 13);
    return next;
}
