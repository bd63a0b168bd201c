/* gw_policy: firmware policy on the User-Agent (see gw_policy.h). */
#include "gw_policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw_err.h"

struct gw_rule {
    char model[GW_POLICY_MODEL_MAX + 1];
    int blocked;
    int signed_only;
    int address_required;
    char minimum[GW_POLICY_VERSION_MAX + 1];    /* "" when none */
};

struct gw_policy {
    struct gw_rule *rules;
    size_t n, cap;
};

gw_policy_t *gw_policy_new(void)
{
    return calloc(1, sizeof(gw_policy_t));
}

void gw_policy_free(gw_policy_t *p)
{
    if (p == NULL)
        return;
    free(p->rules);
    free(p);
}

size_t gw_policy_count(const gw_policy_t *p)
{
    size_t k = 0;
    for (size_t i = 0; i < p->n; i++)
        k += (size_t)(p->rules[i].blocked != 0) + (size_t)(p->rules[i].signed_only != 0) +
             (size_t)(p->rules[i].address_required != 0) +
             (size_t)(p->rules[i].minimum[0] != '\0');
    return k;
}

static int gw_model_valid(const char *m, size_t len)
{
    if (len == 0 || len > GW_POLICY_MODEL_MAX || m[0] == ' ' || m[len - 1] == ' ')
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)m[i];
        if (c < 0x20 || c > 0x7e || c == ',' || c == '/')
            return 0;
    }
    return 1;
}

int gw_version_valid(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > GW_POLICY_VERSION_MAX || v[0] < '0' || v[0] > '9')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '.' || c == '+' || c == '_' || c == '~' || c == '-'))
            return 0;
    }
    return 1;
}

/* The leading number of the component at *s (capped), moving *s past the
 * component and its '.'. */
static unsigned long long gw_version_part(const char **s)
{
    unsigned long long x = 0;
    const char *p = *s;
    while (*p >= '0' && *p <= '9') {
        if (x < 1000000000000ULL)
            x = x * 10 + (unsigned long long)(*p - '0');
        p++;
    }
    while (*p != '\0' && *p != '.')
        p++;
    if (*p == '.')
        p++;
    *s = p;
    return x;
}

int gw_version_compare(const char *a, const char *b)
{
    while (*a != '\0' || *b != '\0') {
        unsigned long long x = gw_version_part(&a), y = gw_version_part(&b);
        if (x != y)
            return x < y ? -1 : 1;
    }
    return 0;
}

static struct gw_rule *gw_rule_find(const gw_policy_t *p, const char *model, size_t len)
{
    for (size_t i = 0; i < p->n; i++)
        if (strlen(p->rules[i].model) == len && strncasecmp(p->rules[i].model, model, len) == 0)
            return &p->rules[i];
    return NULL;
}

static struct gw_rule *gw_rule_get(gw_policy_t *p, const char *model, size_t len, int *err)
{
    struct gw_rule *r = gw_rule_find(p, model, len);
    *err = GW_OK;
    if (r != NULL)
        return r;
    if (p->n >= GW_POLICY_RULES_MAX) {
        *err = GW_EINVAL;
        return NULL;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        struct gw_rule *grown = realloc(p->rules, cap * sizeof *grown);
        if (grown == NULL) {
            *err = GW_ENOMEM;
            return NULL;
        }
        p->rules = grown;
        p->cap = cap;
    }
    r = &p->rules[p->n++];
    memset(r, 0, sizeof *r);
    memcpy(r->model, model, len);
    return r;
}

/* What the items of a configured list are; the flags first. */
enum gw_list_kind {
    GW_LIST_BLOCKED,
    GW_LIST_SIGNED_ONLY,
    GW_LIST_ADDRESS_REQUIRED,
    GW_LIST_MINIMUMS
};

/* Sets a flag (kind) of model's rule. */
static int gw_policy_flag(gw_policy_t *p, const char *model, enum gw_list_kind kind)
{
    int err;
    size_t len = strlen(model);
    if (!gw_model_valid(model, len))
        return GW_EINVAL;
    struct gw_rule *r = gw_rule_get(p, model, len, &err);
    if (r != NULL)
        *(kind == GW_LIST_SIGNED_ONLY        ? &r->signed_only
          : kind == GW_LIST_ADDRESS_REQUIRED ? &r->address_required
                                             : &r->blocked) = 1;
    return err;
}

int gw_policy_block(gw_policy_t *p, const char *model)
{
    return gw_policy_flag(p, model, GW_LIST_BLOCKED);
}

int gw_policy_signed_only(gw_policy_t *p, const char *model)
{
    return gw_policy_flag(p, model, GW_LIST_SIGNED_ONLY);
}

int gw_policy_address_required(gw_policy_t *p, const char *model)
{
    return gw_policy_flag(p, model, GW_LIST_ADDRESS_REQUIRED);
}

int gw_policy_set_minimum(gw_policy_t *p, const char *model, const char *version)
{
    int err;
    size_t len = strlen(model);
    if (!gw_model_valid(model, len) || !gw_version_valid(version))
        return GW_EINVAL;
    struct gw_rule *r = gw_rule_get(p, model, len, &err);
    if (r != NULL)
        snprintf(r->minimum, sizeof r->minimum, "%s", version);
    return err;
}

/* Adds every comma-separated, trimmed item of list as a rule of kind. */
static int gw_policy_each(gw_policy_t *p, const char *list, enum gw_list_kind kind, char *err,
                          size_t errlen)
{
    int minimums = kind == GW_LIST_MINIMUMS;
    char item[GW_POLICY_MODEL_MAX + GW_POLICY_VERSION_MAX + 8];
    const char *s = list ? list : "";
    while (*s != '\0') {
        size_t len = strcspn(s, ",");
        const char *b = s, *e = s + len;
        while (b < e && (*b == ' ' || *b == '\t'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        size_t il = (size_t)(e - b);
        if (il == 0) {
            snprintf(err, errlen, "empty item in the list");
            return GW_EINVAL;
        }
        if (il >= sizeof item) {
            snprintf(err, errlen, "'%.40s...' is too long", b);
            return GW_EINVAL;
        }
        memcpy(item, b, il);
        item[il] = '\0';
        int rc;
        if (minimums) {
            char *slash = strrchr(item, '/');
            if (slash == NULL) {
                snprintf(err, errlen, "'%s' is not MODEL/VERSION", item);
                return GW_EINVAL;
            }
            *slash = '\0';
            rc = gw_policy_set_minimum(p, item, slash + 1);
            *slash = '/';
        } else {
            rc = gw_policy_flag(p, item, kind);
        }
        if (rc == GW_ENOMEM) {
            snprintf(err, errlen, "out of memory");
            return rc;
        }
        if (rc != GW_OK) {
            if (p->n >= GW_POLICY_RULES_MAX)
                snprintf(err, errlen, "more than %d models", GW_POLICY_RULES_MAX);
            else if (minimums)
                snprintf(err, errlen, "'%s': the model must be 1 to %d printable characters "
                         "without ',' or '/', the version a digit followed by "
                         "[0-9A-Za-z.+_~-] (at most %d)", item, GW_POLICY_MODEL_MAX,
                         GW_POLICY_VERSION_MAX);
            else
                snprintf(err, errlen, "'%s' is not a model name (1 to %d printable "
                         "characters without ',' or '/')", item, GW_POLICY_MODEL_MAX);
            return GW_EINVAL;
        }
        s += len;
        if (*s == ',')
            s++;
        if (*s == '\0' && s > list && s[-1] == ',') {
            snprintf(err, errlen, "empty item in the list");
            return GW_EINVAL;
        }
    }
    return GW_OK;
}

int gw_policy_load_blocked(gw_policy_t *p, const char *list, char *err, size_t errlen)
{
    return gw_policy_each(p, list, GW_LIST_BLOCKED, err, errlen);
}

int gw_policy_load_minimums(gw_policy_t *p, const char *list, char *err, size_t errlen)
{
    return gw_policy_each(p, list, GW_LIST_MINIMUMS, err, errlen);
}

int gw_policy_load_signed_only(gw_policy_t *p, const char *list, char *err, size_t errlen)
{
    return gw_policy_each(p, list, GW_LIST_SIGNED_ONLY, err, errlen);
}

int gw_policy_load_address_required(gw_policy_t *p, const char *list, char *err,
                                    size_t errlen)
{
    return gw_policy_each(p, list, GW_LIST_ADDRESS_REQUIRED, err, errlen);
}

/* Copies [b, e) trimmed of blanks into out (size cap + 1); 0 or -1. */
static int gw_take(const char *b, const char *e, char *out, size_t cap)
{
    while (b < e && *b == ' ')
        b++;
    while (e > b && e[-1] == ' ')
        e--;
    size_t n = (size_t)(e - b);
    if (n == 0 || n > cap)
        return -1;
    memcpy(out, b, n);
    out[n] = '\0';
    return 0;
}

int gw_agent_parse(const char *ua, gw_agent_t *agent)
{
    gw_agent_t a;
    memset(&a, 0, sizeof a);
    memset(agent, 0, sizeof *agent);
    if (ua == NULL)
        return -1;
    for (const char *c = ua; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
            return -1;

    /* dyndns2: "Company - Device - Version" */
    const char *d1 = strstr(ua, " - ");
    const char *d2 = d1 ? strstr(d1 + 3, " - ") : NULL;
    if (d1 != NULL && d2 != NULL && strstr(d2 + 3, " - ") == NULL) {
        char company[GW_POLICY_MODEL_MAX + 1], device[GW_POLICY_MODEL_MAX + 1];
        const char *vb = d2 + 3, *ve = vb + strlen(vb);
        while (vb < ve && *vb == ' ')
            vb++;
        if (gw_take(ua, d1, company, GW_POLICY_MODEL_MAX) != 0 ||
            gw_take(d1 + 3, d2, device, GW_POLICY_MODEL_MAX) != 0 || vb == ve)
            return -1;
        /* A version too long to read still names the model: the rules
         * apply to it (empty: not a valid version, so below any minimum). */
        if (gw_take(vb, ve, a.version, GW_POLICY_VERSION_MAX) != 0)
            a.version[0] = '\0';
        int n = snprintf(a.model, sizeof a.model, "%s-%s", company, device);
        if (n < 0 || (size_t)n >= sizeof a.model || !gw_model_valid(a.model, (size_t)n))
            return -1;
        *agent = a;
        return 0;
    }
    /* "Product/Version ..." */
    size_t wl = strcspn(ua, " \t");
    const char *slash = memchr(ua, '/', wl);
    if (slash == NULL || slash == ua)
        return -1;
    size_t ml = (size_t)(slash - ua), vl = wl - ml - 1;
    if (ml > GW_POLICY_MODEL_MAX || vl == 0 || !gw_model_valid(ua, ml))
        return -1;
    memcpy(a.model, ua, ml);
    /* as above: an overlong version leaves the version empty, not the model */
    if (vl <= GW_POLICY_VERSION_MAX)
        memcpy(a.version, slash + 1, vl);
    *agent = a;
    return 0;
}

gw_policy_verdict_t gw_policy_check(const gw_policy_t *p, const char *user_agent,
                                    gw_agent_t *agent)
{
    gw_agent_t a;
    int named = gw_agent_parse(user_agent, &a) == 0;
    if (agent != NULL)
        *agent = a;
    if (!named || p == NULL)
        return GW_POLICY_ALLOW;
    const struct gw_rule *r = gw_rule_find(p, a.model, strlen(a.model));
    if (r == NULL)
        return GW_POLICY_ALLOW;
    if (r->blocked)
        return GW_POLICY_BLOCKED;
    if (r->minimum[0] != '\0' &&
        (!gw_version_valid(a.version) || gw_version_compare(a.version, r->minimum) < 0))
        return GW_POLICY_TOO_OLD;
    return GW_POLICY_ALLOW;
}

gw_policy_verdict_t gw_policy_check_dyndns2(const gw_policy_t *p, const char *user_agent,
                                            gw_agent_t *agent)
{
    gw_agent_t a;
    gw_policy_verdict_t v = gw_policy_check(p, user_agent, &a);
    if (agent != NULL)
        *agent = a;
    if (v != GW_POLICY_ALLOW || p == NULL || a.model[0] == '\0')
        return v;
    const struct gw_rule *r = gw_rule_find(p, a.model, strlen(a.model));
    return r != NULL && r->signed_only ? GW_POLICY_SIGNED_ONLY : GW_POLICY_ALLOW;
}

int gw_policy_needs_address(const gw_policy_t *p, const gw_agent_t *agent)
{
    if (p == NULL || agent == NULL || agent->model[0] == '\0')
        return 0;
    const struct gw_rule *r = gw_rule_find(p, agent->model, strlen(agent->model));
    return r != NULL && r->address_required;
}

const char *gw_policy_verdict_name(gw_policy_verdict_t v)
{
    switch (v) {
    case GW_POLICY_ALLOW: return "allow";
    case GW_POLICY_BLOCKED: return "blocked";
    case GW_POLICY_TOO_OLD: return "too-old";
    case GW_POLICY_SIGNED_ONLY: return "signed-only";
    }
    return "?";
}

void gw_agent_printable(const char *user_agent, char *out, size_t outlen)
{
    size_t o = 0;
    if (outlen == 0)
        return;
    for (const char *c = user_agent ? user_agent : ""; *c && o + 1 < outlen; c++)
        out[o++] = (*c >= 0x20 && *c < 0x7f) ? *c : '?';
    out[o] = '\0';
}
