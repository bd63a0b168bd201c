/* prov_cred: one device's credentials (see prov_cred.h). */
#include "prov_cred.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/rand.h>

int prov_cred_regenerate(prov_cred_t *c, const cmn_master_key_t *key, uint32_t generation,
                         char *err, size_t errlen)
{
    snprintf(c->kid, sizeof c->kid, "%s", key->kid);
    c->generation = generation;
    if (cmn_keyref_format(c->kid, generation, c->keyref, sizeof c->keyref) < 0 ||
        cmn_derive_secret(key, c->kid, strlen(c->kid), c->device_id, strlen(c->device_id),
                          generation, c->secret) != 0 ||
        cmn_b64url_encode(c->secret, CMN_SECRET_LEN, c->secret_b64, sizeof c->secret_b64) !=
            CMN_SECRET_B64_LEN ||
        cmn_password_format(c->kid, generation, c->secret, c->password, sizeof c->password) != 0) {
        snprintf(err, errlen, "secret derivation failed (generation %lu)",
                 (unsigned long)generation);
        cmn_wipe(c->secret, sizeof c->secret);
        cmn_wipe(c->secret_b64, sizeof c->secret_b64);
        cmn_wipe(c->password, sizeof c->password);
        return -1;
    }
    return 0;
}

int prov_cred_derive(prov_cred_t *c, const char *mac, const cmn_master_key_t *key,
                     uint32_t generation, char *err, size_t errlen)
{
    int rc = cmn_mac_canon(mac, strlen(mac), c->device_id);
    if (rc != CMN_MAC_OK) {
        snprintf(err, errlen, "MAC '%.40s': %s", mac, cmn_mac_explain(rc));
        return -1;
    }
    if (prov_cred_regenerate(c, key, generation, err, errlen) != 0) {
        prov_cred_wipe(c);
        return -1;
    }
    return 0;
}

/* One DNS label: [a-z0-9-], 1-63, no hyphen at either end; lowercased. */
static int prov_one_label(const char *in, size_t len, char *out, const char **why)
{
    if (len == 0) {
        *why = "empty label";
        return -1;
    }
    if (len > PROV_LABEL_MAX) {
        *why = "label longer than 63 characters";
        return -1;
    }
    if (in[0] == '-' || in[len - 1] == '-') {
        *why = "label starts or ends with '-'";
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (!(isascii(ch) && (isalnum(ch) || ch == '-'))) {
            *why = "only letters, digits and '-' are allowed";
            return -1;
        }
        out[i] = (char)tolower(ch);
    }
    return 0;
}

const char *prov_reserved_labels(void)
{
    const char *v = getenv(PROV_RESERVED_ENV);
    return v != NULL ? v : CMN_LABEL_RESERVED_DEFAULT;
}

int prov_label_check(const char *in, char out[PROV_LABEL_MAX + 1], char *err, size_t errlen)
{
    const char *why = NULL;
    char pat[CMN_LABEL_PATTERN_MAX + 1], lerr[200];
    size_t len = strlen(in);
    if (prov_one_label(in, len, out, &why) != 0) {
        snprintf(err, errlen, "hostname label '%.70s': %s", in, why);
        return -1;
    }
    out[len] = '\0';
    if (cmn_label_list_check(prov_reserved_labels(), lerr, sizeof lerr) != 0) {
        snprintf(err, errlen, "%s: %s", PROV_RESERVED_ENV, lerr);
        return -1;
    }
    if (cmn_label_reserved(prov_reserved_labels(), out, pat, sizeof pat)) {
        snprintf(err, errlen, "hostname label '%s' is reserved for the zone's own hosts "
                 "(pattern '%s' of the reserved labels, %s)", out, pat, PROV_RESERVED_ENV);
        return -1;
    }
    return 0;
}

int prov_zone_check(const char *in, char out[PROV_ZONE_MAX + 1], char *err, size_t errlen)
{
    size_t len = strlen(in);
    const char *why = NULL;
    if (len > 0 && in[len - 1] == '.')
        len--;
    if (len == 0 || len > PROV_ZONE_MAX) {
        snprintf(err, errlen, "zone '%.70s': must be 1 to 253 characters", in);
        return -1;
    }
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || in[i] == '.') {
            if (prov_one_label(in + start, i - start, out + start, &why) != 0) {
                snprintf(err, errlen, "zone '%.70s': %s", in, why);
                return -1;
            }
            if (i < len)
                out[i] = '.';
            start = i + 1;
        }
    }
    out[len] = '\0';
    return 0;
}

int prov_serial_check(const char *in, char *err, size_t errlen)
{
    size_t len = strlen(in);
    if (len == 0 || len > PROV_SERIAL_MAX) {
        snprintf(err, errlen, "serial '%.70s': must be 1 to %d characters", in, PROV_SERIAL_MAX);
        return -1;
    }
    if (!isascii((unsigned char)in[0]) || !isalnum((unsigned char)in[0])) {
        snprintf(err, errlen, "serial '%.70s': must start with a letter or digit", in);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (!(isascii(ch) && (isalnum(ch) || (ch != 0 && strchr("._:/+#-", ch) != NULL)))) {
            if (ch == ' ')
                snprintf(err, errlen, "serial '%.70s': character %zu is a blank; serials use "
                         "letters, digits and . _ : / + # -", in, i + 1);
            else if (ch < 0x20 || ch > 0x7e)
                snprintf(err, errlen, "serial '%.70s': character %zu is not printable ASCII; "
                         "serials use letters, digits and . _ : / + # -", in, i + 1);
            else
                snprintf(err, errlen, "serial '%.70s': character %zu ('%c') is not allowed; "
                         "serials use letters, digits and . _ : / + # -", in, i + 1, ch);
            return -1;
        }
    }
    return 0;
}

int prov_model_check(const char *in, char *err, size_t errlen)
{
    size_t len = strlen(in);
    if (len == 0 || len > PROV_MODEL_MAX) {
        snprintf(err, errlen, "model '%.70s': must be 1 to %d characters", in, PROV_MODEL_MAX);
        return -1;
    }
    if (in[0] == ' ' || in[len - 1] == ' ') {
        snprintf(err, errlen, "model '%.70s': starts or ends with a blank", in);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (ch < 0x20 || ch > 0x7e || ch == '"' || ch == '\\') {
            snprintf(err, errlen, "model '%.70s': character %zu is not allowed (printable "
                     "ASCII other than '\"' and '\\')", in, i + 1);
            return -1;
        }
    }
    return 0;
}

int prov_label_random(const char *prefix, char out[PROV_LABEL_MAX + 1])
{
    static const char alpha[] = "abcdefghijklmnopqrstuvwxyz234567";
    unsigned char rnd[13];
    size_t pl = strlen(prefix);
    if (pl + sizeof rnd > PROV_LABEL_MAX || RAND_bytes(rnd, sizeof rnd) != 1)
        return -1;
    /* a label the reserved patterns refuse is drawn again */
    for (int attempt = 0; attempt < PROV_LABEL_DRAWS; attempt++) {
        for (size_t i = 0; i < pl; i++)
            out[i] = (char)tolower((unsigned char)prefix[i]);
        for (size_t i = 0; i < sizeof rnd; i++)
            out[pl + i] = alpha[rnd[i] & 31];
        out[pl + sizeof rnd] = '\0';
        if (!cmn_label_reserved(prov_reserved_labels(), out, NULL, 0))
            return 0;
        if (RAND_bytes(rnd, sizeof rnd) != 1)
            return -1;
    }
    return -1;
}

char *prov_cred_json(const prov_cred_t *c, const char *serial, const char *model)
{
    char fqdn[PROV_LABEL_MAX + 1 + PROV_ZONE_MAX + 1];
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:s}", "device_id", c->device_id,
                          "kid", c->keyref, "generation", (json_int_t)c->generation,
                          "secret", c->secret_b64, "password", c->password);
    if (o == NULL)
        return NULL;
    if (c->label[0] != '\0') {
        snprintf(fqdn, sizeof fqdn, "%s.%s", c->label, c->zone);
        json_object_set_new(o, "fqdn", json_string(fqdn));
    }
    if (serial != NULL)
        json_object_set_new(o, "serial", json_string(serial));
    if (model != NULL)
        json_object_set_new(o, "model", json_string(model));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

void prov_cred_wipe(prov_cred_t *c)
{
    cmn_wipe(c, sizeof *c);
}
