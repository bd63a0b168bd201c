/* fuzz_dyndns: libFuzzer target for the parsers of the dyndns2 endpoint
 * and of the User-Agent.
 *
 * The input, as an exact NUL-terminated heap copy (so the sanitizers catch
 * any read past its end), is parsed as a /nic/update query string
 * (gw_dyn_parse_query), as an Authorization value (gw_dyn_parse_basic, also
 * with "Basic " and the input's base64 in front of it), as a myip value and
 * as a User-Agent (gw_agent_parse, gw_policy_check and
 * gw_policy_check_dyndns2 against a fixed policy). Checks: what the parsers
 * accept is well-formed (every host kept is an FQDN in canonical form that
 * parses again to itself, addresses are canonical, the device id is
 * canonical, the key id valid and the generation in range), a refusal
 * leaves nothing behind, and the policy only refuses the models it holds. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "gw_dynparse.h"
#include "gw_policy.h"

static gw_policy_t *policy;
static gw_dyn_query_t q;

static void check_addr(const char *text, int family)
{
    unsigned char bin[16];
    char again[INET6_ADDRSTRLEN];
    if (text[0] == '\0')
        return;
    if (inet_pton(family, text, bin) != 1 || inet_ntop(family, bin, again, sizeof again) == NULL ||
        strcmp(again, text) != 0)
        abort();
}

static void check_query(const char *s)
{
    char again[GW_DYN_FQDN_MAX + 1];
    if (gw_dyn_parse_query(s, &q) != 0) {
        if (q.field[0] == '\0')
            abort();
        return;
    }
    if (q.field[0] != '\0' || (q.nhosts > 0 && !q.have_hostname))
        abort();
    for (size_t i = 0; i < q.nhosts && i < GW_DYN_HOSTS_MAX; i++) {
        const char *h = q.host[i];
        if (h[0] == '\0')
            continue;
        if (!gw_dyn_fqdn(h, strlen(h), again) || strcmp(again, h) != 0)
            abort();
        for (const char *c = h; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                abort();
    }
    check_addr(q.ipv4, AF_INET);
    check_addr(q.ipv6, AF_INET6);
    if (q.offline != 0 && q.offline != 1)
        abort();
}

static void check_basic(const char *s)
{
    gw_dyn_cred_t c;
    static const uint8_t zero[sizeof c] = {0};
    if (gw_dyn_parse_basic(s, &c) != 0) {
        if (memcmp(&c, zero, sizeof c) != 0)
            abort();
        return;
    }
    if (cmn_device_id_check(c.device_id, strlen(c.device_id)) != CMN_MAC_OK ||
        !cmn_kid_valid(c.kid, strlen(c.kid)) || c.generation > CMN_GENERATION_MAX)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (policy == NULL) {
        char err[200];
        policy = gw_policy_new();
        if (policy == NULL ||
            gw_policy_load_blocked(policy, "AcmeCam-X1, Acme-Cam X2", err, sizeof err) != 0 ||
            gw_policy_load_minimums(policy, "AcmeCam-X3/2.1.0", err, sizeof err) != 0 ||
            gw_policy_load_signed_only(policy, "AcmeCam-S1", err, sizeof err) != 0)
            abort();
    }
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    check_query(s);
    check_basic(s);

    /* the input as the user:password of a Basic header */
    if (size <= 200) {
        char *auth = malloc(6 + 4 * ((size + 2) / 3) + 1);
        if (auth != NULL) {
            memcpy(auth, "Basic ", 6);
            EVP_EncodeBlock((unsigned char *)auth + 6, data, (int)size);
            check_basic(auth);
            free(auth);
        }
    }

    char v4[INET_ADDRSTRLEN], v6[INET6_ADDRSTRLEN];
    if (gw_dyn_parse_myip(s, v4, v6) == 0) {
        check_addr(v4, AF_INET);
        check_addr(v6, AF_INET6);
    }

    gw_agent_t a;
    if (gw_agent_parse(s, &a) == 0) {
        /* the version is empty when it was too long to read */
        if (a.model[0] == '\0' || (a.version[0] == '\0' && strlen(s) <= GW_POLICY_VERSION_MAX))
            abort();
    } else if (a.model[0] != '\0' || a.version[0] != '\0') {
        abort();
    }
    gw_policy_verdict_t v = gw_policy_check(policy, s, &a);
    if (v != GW_POLICY_ALLOW && strcasecmp(a.model, "AcmeCam-X1") != 0 &&
        strcasecmp(a.model, "Acme-Cam X2") != 0 && strcasecmp(a.model, "AcmeCam-X3") != 0)
        abort();
    gw_policy_verdict_t vd = gw_policy_check_dyndns2(policy, s, &a);
    if (vd != v && !(v == GW_POLICY_ALLOW && vd == GW_POLICY_SIGNED_ONLY &&
                     strcasecmp(a.model, "AcmeCam-S1") == 0))
        abort();
    if (gw_version_valid(a.version))
        (void)gw_version_compare(a.version, "2.1.0");
    free(s);
    return 0;
}
