/* gw_policy: the firmware policy, decided on the User-Agent header.
 *
 * Owns the User-Agent forms that name a device's model and firmware version
 * (docs/PROTOCOL.md section 11), the ordering of version numbers, and the
 * rules: models that are blocked, models that only speak the signed
 * protocol (refused on /nic/update), models whose signed requests must name
 * their address (docs/PROTOCOL.md section 4.2: an address-less request is
 * answered "moved"), and the oldest firmware version accepted per model.
 * The rules come from the configuration file ([firmware] blocked_models,
 * signed_only_models, address_required_models, minimum_versions) and from the
 * operators' policy in the database (gw_policydb), both through
 * gw_policy_block(), gw_policy_signed_only() and gw_policy_set_minimum().
 * gw_policy_check() is the decision both update endpoints use (native: 403
 * badagent, dyndns2: badagent), gw_policy_check_dyndns2() adds the
 * signed-only rule for /nic/update. The object is read-only once built.
 * Pure functions, no I/O. */
#ifndef GW_POLICY_H
#define GW_POLICY_H

#include <stddef.h>

#define GW_POLICY_MODEL_MAX 64
#define GW_POLICY_VERSION_MAX 32
#define GW_POLICY_RULES_MAX 1024

typedef struct gw_policy gw_policy_t;

/* What a User-Agent says about the device. */
typedef struct gw_agent {
    char model[GW_POLICY_MODEL_MAX + 1];     /* "" when no form matched */
    char version[GW_POLICY_VERSION_MAX + 1];
} gw_agent_t;

typedef enum gw_policy_verdict {
    GW_POLICY_ALLOW = 0,
    GW_POLICY_BLOCKED,  /* the model is blocked */
    GW_POLICY_TOO_OLD,  /* older than the model's minimum, or no readable version */
    GW_POLICY_SIGNED_ONLY, /* the model speaks the signed protocol only (dyndns2) */
} gw_policy_verdict_t;

/* An empty policy (allows everything). NULL when out of memory. */
gw_policy_t *gw_policy_new(void);
void gw_policy_free(gw_policy_t *p);

/* Adds one rule. model: 1 to GW_POLICY_MODEL_MAX printable characters
 * without ',' and '/', compared without regard to case; version: a valid
 * version (gw_version_valid). A second rule for the same model replaces the
 * first. Return GW_OK, GW_EINVAL (bad model or version, or more than
 * GW_POLICY_RULES_MAX rules) or GW_ENOMEM. */
int gw_policy_block(gw_policy_t *p, const char *model) __attribute__((warn_unused_result));
int gw_policy_set_minimum(gw_policy_t *p, const char *model, const char *version)
    __attribute__((warn_unused_result));
int gw_policy_signed_only(gw_policy_t *p, const char *model) __attribute__((warn_unused_result));
int gw_policy_address_required(gw_policy_t *p, const char *model)
    __attribute__((warn_unused_result));

/* The configuration forms: "Model, Model" and "Model/Version, Model/Version"
 * (blanks around items ignored; an empty or NULL list adds nothing).
 * Return GW_OK, or GW_EINVAL with the offending item and reason in err. */
int gw_policy_load_blocked(gw_policy_t *p, const char *list, char *err, size_t errlen)
    __attribute__((warn_unused_result));
int gw_policy_load_minimums(gw_policy_t *p, const char *list, char *err, size_t errlen)
    __attribute__((warn_unused_result));
int gw_policy_load_signed_only(gw_policy_t *p, const char *list, char *err, size_t errlen)
    __attribute__((warn_unused_result));
int gw_policy_load_address_required(gw_policy_t *p, const char *list, char *err,
                                    size_t errlen) __attribute__((warn_unused_result));

/* Number of rules (blocked, signed-only, address-required and minimum). */
size_t gw_policy_count(const gw_policy_t *p);

/* Reads the model and version of a User-Agent value (NULL: no header):
 *   "Vendor-Model/1.2.3 (comment)"    product/version, the first word
 *   "Vendor - Model - 1.2.3"          dyndns2 "Company - Device - Version",
 *                                     model "Vendor-Model"
 * A version longer than GW_POLICY_VERSION_MAX leaves agent->version empty
 * (not a valid version) but still names the model, so that the model's
 * rules apply. Returns 0 when a form matched, -1 otherwise (agent emptied). */
int gw_agent_parse(const char *user_agent, gw_agent_t *agent);

/* 1 when v is a version: a digit first, then [0-9A-Za-z.+_~-], at most
 * GW_POLICY_VERSION_MAX characters. */
int gw_version_valid(const char *v);

/* Compares two valid versions: dot-separated components, each compared by
 * its leading decimal number (a missing component counts as 0, a suffix
 * such as "-beta" is ignored): "1.10" > "1.9", "2.1" == "2.1.0". */
int gw_version_compare(const char *a, const char *b);

/* The decision for one request. A User-Agent that names no model is
 * allowed (the policy manages firmware, it does not authenticate). agent,
 * when not NULL, receives what the header said. */
gw_policy_verdict_t gw_policy_check(const gw_policy_t *p, const char *user_agent,
                                    gw_agent_t *agent);

/* The decision for one /nic/update request: gw_policy_check(), and a model
 * that speaks the signed protocol only is GW_POLICY_SIGNED_ONLY. */
gw_policy_verdict_t gw_policy_check_dyndns2(const gw_policy_t *p, const char *user_agent,
                                            gw_agent_t *agent);

/* The User-Agent as recorded for the admin API: at most outlen - 1
 * characters, every byte outside printable ASCII replaced by '?' (NULL:
 * ""). */
void gw_agent_printable(const char *user_agent, char *out, size_t outlen);

/* 1 when the model agent names (from gw_policy_check) must name its address
 * in signed requests. */
int gw_policy_needs_address(const gw_policy_t *p, const gw_agent_t *agent);

const char *gw_policy_verdict_name(gw_policy_verdict_t v);

#endif
