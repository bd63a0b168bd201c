/* fuzz_proxy: libFuzzer target for the PROXY protocol header parser.
 *
 * Input: the first bytes a load balancer (or anyone) sends on a connection
 * of a PROXY listener, as an exact heap copy so that the sanitizers catch
 * any read past its end. Every prefix of the input is parsed too, the way
 * bytes arrive over TCP. Checks: a complete header never claims more bytes
 * than it was given, its address is a valid IPv4 or IPv6 socket address,
 * an error always says why, a prefix of an input that parsed is never
 * judged bad or complete with another length (the verdict does not depend
 * on how the bytes were split), and "more" is only asked for below the
 * 1024-byte bound. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "gw_proxy.h"

static int parse_copy(const uint8_t *data, size_t n, size_t *used, gw_proxy_hdr_t *h)
{
    uint8_t *copy = malloc(n ? n : 1);
    if (copy == NULL)
        abort();
    memcpy(copy, data, n);
    int rc = gw_proxy_parse(copy, n, used, h);
    free(copy);
    return rc;
}

static void check(int rc, size_t n, size_t used, const gw_proxy_hdr_t *h)
{
    switch (rc) {
    case GW_PROXY_OK:
        if (used == 0 || used > n || used > GW_PROXY_MAX || (h->version != 1 && h->version != 2))
            abort();
        if (!h->local && !((h->src.ss_family == AF_INET && h->srclen == 16) ||
                           (h->src.ss_family == AF_INET6 && h->srclen == 28)))
            abort();
        break;
    case GW_PROXY_BAD:
        if (h->why == NULL || h->why[0] == '\0')
            abort();
        break;
    case GW_PROXY_MORE:
        if (n >= GW_PROXY_MAX)
            abort();
        break;
    case GW_PROXY_NONE:
        break;
    default:
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_proxy_hdr_t h;
    size_t used = 0;
    int rc = parse_copy(data, size, &used, &h);
    check(rc, size, used, &h);
    size_t full_used = used;
    for (size_t k = 0; k < size && k < 2 * GW_PROXY_MAX; k++) {
        size_t u = 0;
        gw_proxy_hdr_t p;
        int prc = parse_copy(data, k, &u, &p);
        check(prc, k, u, &p);
        /* A complete header is complete in every longer input too. */
        if (prc == GW_PROXY_OK && (rc != GW_PROXY_OK || u != full_used))
            abort();
        /* Before the header is complete, the parser asks for more or has
         * already given its final verdict. */
        if (rc == GW_PROXY_OK && k < full_used && prc != GW_PROXY_MORE)
            abort();
    }
    return 0;
}
