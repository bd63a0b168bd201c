/* cmn_p11: master keys in a PKCS#11 token (see cmn_p11.h). */
#include "cmn_p11.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <p11-kit/pkcs11.h>

#include "cmn_key.h"
#include "cmn_mac.h"
#include "cmn_secmem.h"
#include "cmn_text.h"

const char *cmn_p11_rv_name(unsigned long rv, char buf[24])
{
    static const struct { unsigned long rv; const char *name; } names[] = {
        {CKR_OK, "CKR_OK"},
        {CKR_HOST_MEMORY, "CKR_HOST_MEMORY"},
        {CKR_SLOT_ID_INVALID, "CKR_SLOT_ID_INVALID"},
        {CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"},
        {CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED"},
        {CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD"},
        {CKR_ATTRIBUTE_READ_ONLY, "CKR_ATTRIBUTE_READ_ONLY"},
        {CKR_ATTRIBUTE_SENSITIVE, "CKR_ATTRIBUTE_SENSITIVE"},
        {CKR_ATTRIBUTE_TYPE_INVALID, "CKR_ATTRIBUTE_TYPE_INVALID"},
        {CKR_ATTRIBUTE_VALUE_INVALID, "CKR_ATTRIBUTE_VALUE_INVALID"},
        {CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"},
        {CKR_DEVICE_MEMORY, "CKR_DEVICE_MEMORY"},
        {CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED"},
        {CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID"},
        {CKR_KEY_SIZE_RANGE, "CKR_KEY_SIZE_RANGE"},
        {CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT"},
        {CKR_KEY_FUNCTION_NOT_PERMITTED, "CKR_KEY_FUNCTION_NOT_PERMITTED"},
        {CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"},
        {CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID"},
        {CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE"},
        {CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT"},
        {CKR_PIN_INVALID, "CKR_PIN_INVALID"},
        {CKR_PIN_LEN_RANGE, "CKR_PIN_LEN_RANGE"},
        {CKR_PIN_EXPIRED, "CKR_PIN_EXPIRED"},
        {CKR_PIN_LOCKED, "CKR_PIN_LOCKED"},
        {CKR_SESSION_CLOSED, "CKR_SESSION_CLOSED"},
        {CKR_SESSION_COUNT, "CKR_SESSION_COUNT"},
        {CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID"},
        {CKR_SESSION_READ_ONLY, "CKR_SESSION_READ_ONLY"},
        {CKR_TEMPLATE_INCOMPLETE, "CKR_TEMPLATE_INCOMPLETE"},
        {CKR_TEMPLATE_INCONSISTENT, "CKR_TEMPLATE_INCONSISTENT"},
        {CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT"},
        {CKR_TOKEN_NOT_RECOGNIZED, "CKR_TOKEN_NOT_RECOGNIZED"},
        {CKR_TOKEN_WRITE_PROTECTED, "CKR_TOKEN_WRITE_PROTECTED"},
        {CKR_USER_ALREADY_LOGGED_IN, "CKR_USER_ALREADY_LOGGED_IN"},
        {CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN"},
        {CKR_USER_PIN_NOT_INITIALIZED, "CKR_USER_PIN_NOT_INITIALIZED"},
        {CKR_USER_TYPE_INVALID, "CKR_USER_TYPE_INVALID"},
        {CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED"},
        {CKR_CRYPTOKI_ALREADY_INITIALIZED, "CKR_CRYPTOKI_ALREADY_INITIALIZED"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].rv == rv)
            return names[i].name;
    snprintf(buf, 24, "CKR 0x%lx", rv);
    return buf;
}

/* ---- the URI (RFC 7512) ---------------------------------------------------- */

/* The attributes understood, with their field and its size. */
enum { CMN_P11_IN_PATH, CMN_P11_IN_QUERY };
typedef struct cmn_p11_attr {
    const char *name;
    int where;
    size_t offset, size;  /* size 0: handled specially */
} cmn_p11_attr_t;

#define CMN_P11_URI_FIELD(f) offsetof(cmn_p11_uri_t, f), sizeof(((cmn_p11_uri_t *)0)->f)
static const cmn_p11_attr_t cmn_p11_attrs[] = {
    {"token", CMN_P11_IN_PATH, CMN_P11_URI_FIELD(token)},
    {"manufacturer", CMN_P11_IN_PATH, CMN_P11_URI_FIELD(manufacturer)},
    {"model", CMN_P11_IN_PATH, CMN_P11_URI_FIELD(model)},
    {"serial", CMN_P11_IN_PATH, CMN_P11_URI_FIELD(serial)},
    {"slot-description", CMN_P11_IN_PATH, CMN_P11_URI_FIELD(slot_description)},
    {"object", CMN_P11_IN_PATH, CMN_P11_URI_FIELD(object)},
    {"slot-id", CMN_P11_IN_PATH, 0, 0},
    {"type", CMN_P11_IN_PATH, 0, 0},
    {"module-path", CMN_P11_IN_QUERY, CMN_P11_URI_FIELD(module_path)},
    {"pin-source", CMN_P11_IN_QUERY, CMN_P11_URI_FIELD(pin_source)},
    {"pin-value", CMN_P11_IN_QUERY, CMN_P11_URI_FIELD(pin_value)},
};
#define CMN_P11_NATTRS (sizeof cmn_p11_attrs / sizeof cmn_p11_attrs[0])
#define CMN_P11_KNOWN "token, manufacturer, model, serial, slot-id, slot-description, " \
                      "object, type; after '?': module-path, pin-source, pin-value"

/* Percent-decodes in[0..len) into out (size outsize, NUL-terminated).
 * Returns the length, -1 for a bad escape or a byte that is not printable
 * ASCII once decoded, -2 when it does not fit. */
static long cmn_p11_decode(const char *in, size_t len, char *out, size_t outsize)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)in[i];
        if (c == '%') {
            int hi = i + 2 < len ? cmn_hexval(in[i + 1]) : -1;
            int lo = i + 2 < len ? cmn_hexval(in[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -1;
            c = hi << 4 | lo;
            i += 2;
        }
        if (c < 0x20 || c > 0x7e)
            return -1;
        if (o + 1 >= outsize)
            return -2;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return (long)o;
}

/* One "name=value" attribute of the path (where CMN_P11_IN_PATH) or of
 * the query into u; seen marks the attributes already given. */
static int cmn_p11_uri_attr(const char *a, size_t len, int where, cmn_p11_uri_t *u,
                            unsigned *seen, char *err, size_t errlen)
{
    const char *eq = memchr(a, '=', len);
    const char *part = where == CMN_P11_IN_PATH ? "path" : "query";
    if (len == 0) {
        cmn_errf(err, errlen, "an empty attribute in the %s (a doubled '%c')", part,
                    where == CMN_P11_IN_PATH ? ';' : '&');
        return -1;
    }
    size_t nl = eq ? (size_t)(eq - a) : len;
    if (eq == NULL) {
        cmn_errf(err, errlen, "attribute '%.*s' has no '=value'", (int)(nl > 40 ? 40 : nl),
                    a);
        return -1;
    }
    const cmn_p11_attr_t *at = NULL;
    size_t idx = 0;
    for (size_t i = 0; i < CMN_P11_NATTRS; i++)
        if (strlen(cmn_p11_attrs[i].name) == nl && memcmp(cmn_p11_attrs[i].name, a, nl) == 0) {
            at = &cmn_p11_attrs[i];
            idx = i;
        }
    if (at == NULL) {
        char name[48];
        if (cmn_p11_decode(a, nl > 40 ? 40 : nl, name, sizeof name) < 0)
            snprintf(name, sizeof name, "?");
        if (strcmp(name, "module-name") == 0)
            cmn_errf(err, errlen, "module-name is not supported: name the module's file "
                        "with module-path=/path/to/module.so");
        else
            cmn_errf(err, errlen, "unknown attribute '%s' (known: %s)", name, CMN_P11_KNOWN);
        return -1;
    }
    if (at->where != where) {
        cmn_errf(err, errlen, "'%s' belongs in the %s (%s)", at->name,
                    at->where == CMN_P11_IN_PATH ? "path, before '?'" : "query, after '?'",
                    at->where == CMN_P11_IN_PATH ? "pkcs11:token=...;object=..."
                                                 : "pkcs11:...?module-path=...&pin-source=...");
        return -1;
    }
    if (*seen & (1u << idx)) {
        cmn_errf(err, errlen, "attribute '%s' is given twice", at->name);
        return -1;
    }
    *seen |= 1u << idx;
    const char *val = eq + 1;
    size_t vl = len - nl - 1;
    char buf[4096];
    long n = cmn_p11_decode(val, vl, at->size ? (char *)u + at->offset : buf,
                            at->size ? at->size : sizeof buf);
    int rc = -1;
    if (n == -1) {
        cmn_errf(err, errlen, "'%s': bad %%-escape or a character that is not printable "
                    "ASCII", at->name);
        goto out;
    }
    if (n == -2) {
        cmn_errf(err, errlen, "'%s': longer than %zu characters", at->name,
                    (at->size ? at->size : sizeof buf) - 1);
        goto out;
    }
    if (n == 0) {
        cmn_errf(err, errlen, "'%s' is empty", at->name);
        goto out;
    }
    if (strcmp(at->name, "slot-id") == 0) {
        char *end;
        errno = 0;
        long long id = strtoll(buf, &end, 10);
        if (*end != '\0' || errno != 0 || id < 0 || buf[0] < '0' || buf[0] > '9') {
            cmn_errf(err, errlen, "'slot-id': '%.40s' is not a slot number", buf);
            goto out;
        }
        u->slot_id = id;
    } else if (strcmp(at->name, "type") == 0) {
        if (strcmp(buf, "secret-key") != 0) {
            cmn_errf(err, errlen, "'type': master keys are secret keys (type=secret-key), "
                        "not '%.40s'", buf);
            goto out;
        }
    } else if (strcmp(at->name, "module-path") == 0 && u->module_path[0] != '/') {
        cmn_errf(err, errlen, "'module-path': '%s' is not an absolute path", u->module_path);
        goto out;
    } else if (strcmp(at->name, "pin-value") == 0) {
        u->has_pin_value = 1;
    } else if (strcmp(at->name, "pin-source") == 0) {
        if (strncmp(u->pin_source, "file:", 5) == 0) {
            memmove(u->pin_source, u->pin_source + 5, strlen(u->pin_source + 5) + 1);
            /* file:///path and file:/path */
            if (strncmp(u->pin_source, "//", 2) == 0)
                memmove(u->pin_source, u->pin_source + 2, strlen(u->pin_source + 2) + 1);
        }
        if (u->pin_source[0] == '|') {
            cmn_errf(err, errlen, "'pin-source': running a program for the PIN is not "
                        "supported: name a file");
            goto out;
        }
        if (u->pin_source[0] == '\0') {
            cmn_errf(err, errlen, "'pin-source' names no file");
            goto out;
        }
    }
    rc = 0;
out:
    cmn_wipe(buf, sizeof buf);
    return rc;
}

int cmn_p11_uri_parse(const char *text, cmn_p11_uri_t *u, char *err, size_t errlen)
{
    unsigned seen = 0;
    memset(u, 0, sizeof *u);
    u->slot_id = -1;
    if (strncasecmp(text, "pkcs11:", 7) != 0) {
        cmn_errf(err, errlen, "not a PKCS#11 URI: it must start with 'pkcs11:' (RFC 7512), "
                    "e.g. pkcs11:token=ddns?module-path=/usr/lib/softhsm/libsofthsm2.so"
                    "&pin-source=/etc/ddns/token.pin");
        goto fail;
    }
    const char *path = text + 7;
    const char *q = strchr(path, '?');
    size_t pl = q ? (size_t)(q - path) : strlen(path);
    if (memchr(path, '#', strlen(path)) != NULL) {
        cmn_errf(err, errlen, "a PKCS#11 URI has no '#' fragment");
        goto fail;
    }
    for (const char *p = path, *end = path + pl; pl > 0 && p <= end;) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *stop = semi ? semi : end;
        if (cmn_p11_uri_attr(p, (size_t)(stop - p), CMN_P11_IN_PATH, u, &seen, err, errlen) != 0)
            goto fail;
        p = stop + 1;
    }
    if (q != NULL) {
        const char *end = q + 1 + strlen(q + 1);
        for (const char *p = q + 1; p <= end;) {
            const char *amp = memchr(p, '&', (size_t)(end - p));
            const char *stop = amp ? amp : end;
            if (cmn_p11_uri_attr(p, (size_t)(stop - p), CMN_P11_IN_QUERY, u, &seen, err,
                                 errlen) != 0)
                goto fail;
            p = stop + 1;
        }
    }
    if (u->module_path[0] == '\0') {
        cmn_errf(err, errlen, "no module-path: name the PKCS#11 module to load, e.g. "
                    "?module-path=/usr/lib/softhsm/libsofthsm2.so");
        goto fail;
    }
    if (u->has_pin_value && u->pin_source[0] != '\0') {
        cmn_errf(err, errlen, "pin-source and pin-value exclude each other");
        goto fail;
    }
    return 0;
fail:
    cmn_p11_uri_clear(u);
    u->slot_id = -1;
    return -1;
}

void cmn_p11_uri_clear(cmn_p11_uri_t *u)
{
    cmn_wipe(u, sizeof *u);
}

/* ---- the PIN ---------------------------------------------------------------- */

/* The PIN of u into pin (NUL-terminated): pin-value, or the first line of
 * the pin-source file, which must be a regular file that neither group nor
 * others may access. Returns 1 with a PIN, 0 without one, -1 with err. */
static int cmn_p11_pin(const cmn_p11_uri_t *u, char pin[CMN_P11_PIN_MAX + 1], char *err,
                       size_t errlen)
{
    char buf[4096], why[512];
    int rc = -1;

    if (u->has_pin_value) {
        snprintf(pin, CMN_P11_PIN_MAX + 1, "%s", u->pin_value);
        return 1;
    }
    if (u->pin_source[0] == '\0')
        return 0;
    if (cmn_secret_file_read(u->pin_source, "PIN file", buf, sizeof buf, why, sizeof why) != 0) {
        cmn_errf(err, errlen, "pin-source %s", why);
        return -1;
    }
    size_t len = strcspn(buf, "\r\n");
    if (len == 0 || len > CMN_P11_PIN_MAX) {
        cmn_errf(err, errlen, "pin-source %s: %s", u->pin_source,
                 len == 0 ? "the file is empty: it must hold the PIN on its first line"
                          : "the first line is longer than a PIN can be");
        goto out;
    }
    memcpy(pin, buf, len);
    pin[len] = '\0';
    rc = 1;
out:
    cmn_wipe(buf, sizeof buf);
    return rc;
}

/* ---- modules ---------------------------------------------------------------- */

/* A module loaded into this process, shared by every token opened on it.
 * pid: the process that initialised it; a forked child initialises it
 * again before its first use. */
typedef struct cmn_p11_module {
    struct cmn_p11_module *next;
    char path[4096];
    void *dl;
    CK_FUNCTION_LIST_PTR f;
    int refs;
    int finalize;                 /* we initialised it, so we finalize it */
    pid_t pid;
    /* The slots this process logged in to, with the SHA-256 of the PIN that
     * did it: while logged in, a token answers C_Login without looking at
     * the PIN, so a PIN given again (a reload) is compared with this. */
    struct { CK_SLOT_ID slot; unsigned char pin_sha[32]; } logins[8];
    size_t nlogins;
} cmn_p11_module_t;

static pthread_mutex_t cmn_p11_modules_lock = PTHREAD_MUTEX_INITIALIZER;
static cmn_p11_module_t *cmn_p11_modules;

static CK_RV cmn_p11_initialize(CK_FUNCTION_LIST_PTR f, int *finalize)
{
    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof args);
    args.flags = CKF_OS_LOCKING_OK;
    CK_RV rv = f->C_Initialize(&args);
    *finalize = rv == CKR_OK;
    return rv == CKR_CRYPTOKI_ALREADY_INITIALIZED ? CKR_OK : rv;
}

static cmn_p11_module_t *cmn_p11_module_get(const char *path, char *err, size_t errlen)
{
    cmn_p11_module_t *m;
    char rvb[24];
    CK_RV rv;

    pthread_mutex_lock(&cmn_p11_modules_lock);
    for (m = cmn_p11_modules; m != NULL; m = m->next)
        if (strcmp(m->path, path) == 0)
            break;
    if (m != NULL) {
        if (m->pid != getpid()) {
            /* a forked child: PKCS#11 wants C_Initialize again before use.
             * The tokens it inherited are the parent's (and wiped:
             * cmn_secmem), so the child counts its own users from here. */
            m->refs = 0;
            rv = cmn_p11_initialize(m->f, &m->finalize);
            if (rv != CKR_OK) {
                cmn_errf(err, errlen, "PKCS#11 module %s: C_Initialize in the child "
                            "process failed: %s", path, cmn_p11_rv_name(rv, rvb));
                m = NULL;
                goto out;
            }
            m->pid = getpid();
        }
        m->refs++;
        goto out;
    }
    m = calloc(1, sizeof *m);
    if (m == NULL) {
        cmn_errf(err, errlen, "out of memory");
        goto out;
    }
    snprintf(m->path, sizeof m->path, "%s", path);
    m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (m->dl == NULL) {
        const char *why = dlerror();
        cmn_errf(err, errlen, "cannot load the PKCS#11 module %s: %s", path,
                    why ? why : "dlopen failed");
        goto fail;
    }
    CK_C_GetFunctionList get;
    *(void **)&get = dlsym(m->dl, "C_GetFunctionList");
    if (get == NULL || get(&m->f) != CKR_OK || m->f == NULL) {
        cmn_errf(err, errlen, "%s is not a PKCS#11 module (no C_GetFunctionList)", path);
        goto fail;
    }
    rv = cmn_p11_initialize(m->f, &m->finalize);
    if (rv != CKR_OK) {
        cmn_errf(err, errlen, "PKCS#11 module %s: C_Initialize failed: %s%s", path,
                    cmn_p11_rv_name(rv, rvb),
                    rv == CKR_GENERAL_ERROR ? " (for SoftHSM: is SOFTHSM2_CONF's file and its "
                    "directories.tokendir readable?)" : "");
        goto fail;
    }
    m->pid = getpid();
    m->refs = 1;
    m->next = cmn_p11_modules;
    cmn_p11_modules = m;
    goto out;
fail:
    if (m->dl != NULL)
        dlclose(m->dl);
    free(m);
    m = NULL;
out:
    pthread_mutex_unlock(&cmn_p11_modules_lock);
    return m;
}

static void cmn_p11_module_put(cmn_p11_module_t *m)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&cmn_p11_modules_lock);
    if (--m->refs == 0) {
        for (cmn_p11_module_t **pp = &cmn_p11_modules; *pp != NULL; pp = &(*pp)->next)
            if (*pp == m) {
                *pp = m->next;
                break;
            }
        if (m->finalize && m->pid == getpid())
            (void)m->f->C_Finalize(NULL);
        dlclose(m->dl);
        free(m);
    }
    pthread_mutex_unlock(&cmn_p11_modules_lock);
}

/* ---- tokens and sessions ------------------------------------------------------ */

struct cmn_p11_token {
    cmn_p11_module_t *mod;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE anchor;     /* keeps the login; finds, generates, holds the stand-in */
    int rw;
    pid_t pid;                    /* the process whose sessions these are */
    char label[33];
    cmn_p11_uri_t uri;
    pthread_mutex_t lock;         /* guards the pool */
    CK_SESSION_HANDLE *pool;      /* sessions free for one operation */
    size_t npool, cap;
};

/* Field f of n bytes, blank-padded as in CK_TOKEN_INFO, without its
 * padding into out. */
static void cmn_p11_unpad(const unsigned char *f, size_t n, char *out)
{
    while (n > 0 && (f[n - 1] == ' ' || f[n - 1] == '\0'))
        n--;
    memcpy(out, f, n);
    out[n] = '\0';
}

/* 1 when want is empty or equals the padded field f of n bytes. */
static int cmn_p11_field_match(const char *want, const unsigned char *f, size_t n)
{
    char have[65];
    if (want[0] == '\0')
        return 1;
    cmn_p11_unpad(f, n < 64 ? n : 64, have);
    return strcmp(want, have) == 0;
}

/* Finds the one slot whose token the URI selects. 0 or -1 with err. */
static int cmn_p11_find_slot(cmn_p11_token_t *t, const cmn_p11_uri_t *u, char *err,
                             size_t errlen)
{
    CK_FUNCTION_LIST_PTR f = t->mod->f;
    CK_ULONG n = 0;
    CK_SLOT_ID *slots = NULL;
    char present[512] = "", rvb[24];
    size_t plen = 0;
    int matches = 0, rc = -1;
    CK_RV rv = f->C_GetSlotList(CK_TRUE, NULL, &n);

    if (rv == CKR_OK && n > 0) {
        slots = calloc(n, sizeof *slots);
        if (slots == NULL) {
            cmn_errf(err, errlen, "out of memory");
            return -1;
        }
        rv = f->C_GetSlotList(CK_TRUE, slots, &n);
    }
    if (rv != CKR_OK) {
        cmn_errf(err, errlen, "PKCS#11 module %s: C_GetSlotList failed: %s", u->module_path,
                    cmn_p11_rv_name(rv, rvb));
        goto out;
    }
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        CK_SLOT_INFO si;
        char label[33];
        if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK ||
            f->C_GetSlotInfo(slots[i], &si) != CKR_OK)
            continue;
        cmn_p11_unpad(ti.label, sizeof ti.label, label);
        if (plen < sizeof present - 1)
            plen += (size_t)snprintf(present + plen, sizeof present - plen, "%s'%s' (slot %lu)",
                                     plen ? ", " : "", label, (unsigned long)slots[i]);
        if (!cmn_p11_field_match(u->token, ti.label, sizeof ti.label) ||
            !cmn_p11_field_match(u->manufacturer, ti.manufacturerID, sizeof ti.manufacturerID) ||
            !cmn_p11_field_match(u->model, ti.model, sizeof ti.model) ||
            !cmn_p11_field_match(u->serial, ti.serialNumber, sizeof ti.serialNumber) ||
            !cmn_p11_field_match(u->slot_description, si.slotDescription,
                                 sizeof si.slotDescription) ||
            (u->slot_id >= 0 && (unsigned long long)u->slot_id != slots[i]))
            continue;
        if (matches++ == 0) {
            t->slot = slots[i];
            memcpy(t->label, label, sizeof t->label);
        }
    }
    if (matches == 0) {
        if (u->token[0] != '\0')
            cmn_errf(err, errlen, "no token labelled '%s' in PKCS#11 module %s (%s%s)",
                        u->token, u->module_path, n ? "tokens present: " : "no token present",
                        present);
        else
            cmn_errf(err, errlen, "no token matches the URI in PKCS#11 module %s (%s%s)",
                        u->module_path, n ? "tokens present: " : "no token present", present);
        goto out;
    }
    if (matches > 1) {
        cmn_errf(err, errlen, "%d tokens match the URI in PKCS#11 module %s (%s): name one "
                    "with token=, serial= or slot-id=", matches, u->module_path, present);
        goto out;
    }
    rc = 0;
out:
    free(slots);
    return rc;
}

/* Records the PIN of a login (fresh), or compares a PIN given while this
 * process is logged in already with the one that logged in. 0 or -1 with
 * err. */
static int cmn_p11_login_seen(cmn_p11_token_t *t, const char *pin, int fresh, char *err,
                              size_t errlen)
{
    cmn_p11_module_t *m = t->mod;
    unsigned char sha[32];
    int rc = 0;
    SHA256((const unsigned char *)pin, strlen(pin), sha);
    pthread_mutex_lock(&cmn_p11_modules_lock);
    size_t i = 0;
    while (i < m->nlogins && m->logins[i].slot != t->slot)
        i++;
    if (fresh && i == m->nlogins && i < sizeof m->logins / sizeof m->logins[0])
        m->nlogins++;
    if (i < m->nlogins) {
        if (fresh) {
            m->logins[i].slot = t->slot;
            memcpy(m->logins[i].pin_sha, sha, sizeof sha);
        } else if (CRYPTO_memcmp(m->logins[i].pin_sha, sha, sizeof sha) != 0) {
            cmn_errf(err, errlen, "token '%s': this PIN from %s differs from the one this "
                        "process logged in with, and cannot be checked while it is logged in "
                        "(CKR_USER_ALREADY_LOGGED_IN): restart to use another PIN", t->label,
                        t->uri.has_pin_value ? "pin-value" : t->uri.pin_source);
            rc = -1;
        }
    }
    pthread_mutex_unlock(&cmn_p11_modules_lock);
    cmn_wipe(sha, sizeof sha);
    return rc;
}

/* Logs in when the token needs it or a PIN is given. 0 or -1 with err. */
static int cmn_p11_login(cmn_p11_token_t *t, char *err, size_t errlen)
{
    CK_FUNCTION_LIST_PTR f = t->mod->f;
    CK_TOKEN_INFO ti;
    char pin[CMN_P11_PIN_MAX + 1], rvb[24];
    int rc = -1;
    CK_RV rv = f->C_GetTokenInfo(t->slot, &ti);
    if (rv != CKR_OK) {
        cmn_errf(err, errlen, "token '%s': C_GetTokenInfo failed: %s", t->label,
                    cmn_p11_rv_name(rv, rvb));
        return -1;
    }
    int have = cmn_p11_pin(&t->uri, pin, err, errlen);
    if (have < 0)
        goto out;
    if (have == 0) {
        if (ti.flags & CKF_LOGIN_REQUIRED) {
            cmn_errf(err, errlen, "token '%s' needs a PIN: add pin-source=FILE (a file of "
                        "mode 0600 holding the PIN) to the URI", t->label);
            goto out;
        }
        rc = 0;
        goto out;
    }
    rv = f->C_Login(t->anchor, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
    if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) {
        rc = cmn_p11_login_seen(t, pin, rv == CKR_OK, err, errlen);
    } else if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE) {
        cmn_errf(err, errlen, "token '%s' refused the PIN from %s (%s)", t->label,
                    t->uri.has_pin_value ? "pin-value" : t->uri.pin_source,
                    cmn_p11_rv_name(rv, rvb));
    } else if (rv == CKR_PIN_LOCKED) {
        cmn_errf(err, errlen, "token '%s': the user PIN is locked (CKR_PIN_LOCKED): the "
                    "security officer must unlock it", t->label);
    } else {
        cmn_errf(err, errlen, "token '%s': C_Login failed: %s", t->label,
                    cmn_p11_rv_name(rv, rvb));
    }
out:
    cmn_wipe(pin, sizeof pin);
    return rc;
}

cmn_p11_token_t *cmn_p11_open(const cmn_p11_uri_t *u, int rw, char *err, size_t errlen)
{
    char rvb[24];
    /* in cmn_secmem: the copy of the URI may hold the PIN */
    cmn_p11_token_t *t = cmn_secmem_alloc(sizeof *t, NULL);
    if (t == NULL) {
        cmn_errf(err, errlen, "out of memory");
        return NULL;
    }
    t->uri = *u;
    t->rw = rw;
    t->pid = getpid();
    t->anchor = CK_INVALID_HANDLE;
    pthread_mutex_init(&t->lock, NULL);
    t->mod = cmn_p11_module_get(u->module_path, err, errlen);
    if (t->mod == NULL || cmn_p11_find_slot(t, u, err, errlen) != 0)
        goto fail;
    CK_RV rv = t->mod->f->C_OpenSession(t->slot, CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0),
                                        NULL, NULL, &t->anchor);
    if (rv != CKR_OK) {
        t->anchor = CK_INVALID_HANDLE;
        cmn_errf(err, errlen, "token '%s': C_OpenSession failed: %s", t->label,
                    cmn_p11_rv_name(rv, rvb));
        goto fail;
    }
    if (cmn_p11_login(t, err, errlen) != 0)
        goto fail;
    return t;
fail:
    cmn_p11_close(t);
    return NULL;
}

void cmn_p11_close(cmn_p11_token_t *t)
{
    if (t == NULL)
        return;
    if (t->mod != NULL && t->pid == getpid()) {
        for (size_t i = 0; i < t->npool; i++)
            (void)t->mod->f->C_CloseSession(t->pool[i]);
        if (t->anchor != CK_INVALID_HANDLE)
            (void)t->mod->f->C_CloseSession(t->anchor);
    }
    free(t->pool);
    cmn_p11_module_put(t->mod);
    pthread_mutex_destroy(&t->lock);
    cmn_secmem_free(t, sizeof *t);
}

const char *cmn_p11_token_label(const cmn_p11_token_t *t)
{
    return t->label;
}

const cmn_p11_uri_t *cmn_p11_token_uri(const cmn_p11_token_t *t)
{
    return &t->uri;
}

/* A session for one operation: a free one of the pool, else a new one
 * (logged in already: login is per token and application). */
static CK_SESSION_HANDLE cmn_p11_take(cmn_p11_token_t *t)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    pthread_mutex_lock(&t->lock);
    if (t->npool > 0)
        s = t->pool[--t->npool];
    pthread_mutex_unlock(&t->lock);
    if (s == CK_INVALID_HANDLE &&
        t->mod->f->C_OpenSession(t->slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK)
        s = CK_INVALID_HANDLE;
    return s;
}

/* Gives a session back to the pool (or closes it when the pool cannot
 * grow). */
static void cmn_p11_give(cmn_p11_token_t *t, CK_SESSION_HANDLE s)
{
    int kept = 0;
    pthread_mutex_lock(&t->lock);
    if (t->npool == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 4;
        CK_SESSION_HANDLE *p = realloc(t->pool, cap * sizeof *p);
        if (p != NULL) {
            t->pool = p;
            t->cap = cap;
        }
    }
    if (t->npool < t->cap) {
        t->pool[t->npool++] = s;
        kept = 1;
    }
    pthread_mutex_unlock(&t->lock);
    if (!kept)
        (void)t->mod->f->C_CloseSession(s);
}

int cmn_p11_hmac(cmn_p11_token_t *t, unsigned long handle, const void *msg, size_t len,
                 uint8_t out[32])
{
    CK_MECHANISM mech = {CKM_SHA256_HMAC, NULL, 0};
    CK_ULONG outlen = 32;
    CK_SESSION_HANDLE s = cmn_p11_take(t);
    if (s == CK_INVALID_HANDLE)
        return -1;
    CK_RV rv = t->mod->f->C_SignInit(s, &mech, handle);
    if (rv == CKR_OK)
        rv = t->mod->f->C_Sign(s, (CK_BYTE_PTR)msg, len, out, &outlen);
    if (rv == CKR_OK && outlen == 32) {
        cmn_p11_give(t, s);
        return 0;
    }
    /* A session whose operation failed is not trusted again. */
    (void)t->mod->f->C_CloseSession(s);
    cmn_wipe(out, 32);
    return -1;
}

/* ---- objects ------------------------------------------------------------------ */

/* Reads one attribute of fixed size into v; 1, 0 when the token has none
 * (or will not tell), -1 on a session error. */
static int cmn_p11_attr_get(cmn_p11_token_t *t, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type,
                            void *v, CK_ULONG size, CK_ULONG *got)
{
    CK_ATTRIBUTE a = {type, v, size};
    CK_RV rv = t->mod->f->C_GetAttributeValue(t->anchor, h, &a, 1);
    if (rv == CKR_OK && a.ulValueLen != (CK_ULONG)-1) {
        if (got != NULL)
            *got = a.ulValueLen;
        return 1;
    }
    if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE ||
        rv == CKR_BUFFER_TOO_SMALL)
        return 0;
    return -1;
}

static int cmn_p11_bool(cmn_p11_token_t *t, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type)
{
    CK_BBOOL b = CK_FALSE;
    return cmn_p11_attr_get(t, h, type, &b, sizeof b, NULL) == 1 ? b == CK_TRUE : -1;
}

/* 1 when s[0..n) is an ISO 8601 UTC time as keygen writes it. */
static int cmn_p11_is_time(const char *s, size_t n)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
    if (n != sizeof shape - 1)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
            return 0;
    return 1;
}

/* The attributes of one key object into k. */
static void cmn_p11_describe(cmn_p11_token_t *t, CK_OBJECT_HANDLE h, cmn_p11_key_t *k)
{
    CK_KEY_TYPE kt = 0;
    CK_ULONG got = 0, vlen = 0;
    char id[64];
    CK_DATE date;

    memset(k, 0, sizeof *k);
    k->handle = h;
    CK_ATTRIBUTE la = {CKA_LABEL, NULL, 0};
    if (t->mod->f->C_GetAttributeValue(t->anchor, h, &la, 1) == CKR_OK &&
        la.ulValueLen != (CK_ULONG)-1) {
        char buf[CMN_P11_LABEL_MAX + 1];
        if (la.ulValueLen > CMN_P11_LABEL_MAX) {
            k->label_too_long = 1;
        } else if (cmn_p11_attr_get(t, h, CKA_LABEL, buf, la.ulValueLen, &got) == 1) {
            memcpy(k->label, buf, got);
            k->label[got] = '\0';
        }
    }
    k->generic = cmn_p11_attr_get(t, h, CKA_KEY_TYPE, &kt, sizeof kt, NULL) == 1 &&
                 kt == CKK_GENERIC_SECRET;
    k->value_len = cmn_p11_attr_get(t, h, CKA_VALUE_LEN, &vlen, sizeof vlen, NULL) == 1
                       ? (long)vlen : -1;
    k->sensitive = cmn_p11_bool(t, h, CKA_SENSITIVE);
    k->extractable = cmn_p11_bool(t, h, CKA_EXTRACTABLE);
    k->sign = cmn_p11_bool(t, h, CKA_SIGN);
    k->local = cmn_p11_bool(t, h, CKA_LOCAL);
    if (cmn_p11_attr_get(t, h, CKA_ID, id, sizeof id, &got) == 1 && cmn_p11_is_time(id, got)) {
        memcpy(k->created, id, got);
        k->created[got] = '\0';
    } else if (cmn_p11_attr_get(t, h, CKA_START_DATE, &date, sizeof date, &got) == 1 &&
               got == sizeof date) {
        char d[9];
        memcpy(d, date.year, 4);
        memcpy(d + 4, date.month, 2);
        memcpy(d + 6, date.day, 2);
        d[8] = '\0';
        if (strspn(d, "0123456789") == 8)
            snprintf(k->created, sizeof k->created, "%.4s-%.2s-%.2sT00:00:00Z", d, d + 4, d + 6);
    }
}

int cmn_p11_list(cmn_p11_token_t *t, const char *label, cmn_p11_key_t **out, size_t *n,
                 char *err, size_t errlen)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE tmpl[2] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, NULL, 0}};
    CK_OBJECT_HANDLE hs[64];
    CK_ULONG got = 0;
    cmn_p11_key_t *keys = NULL;
    size_t nk = 0;
    char rvb[24];
    int rc = -1;

    *out = NULL;
    *n = 0;
    if (label != NULL) {
        tmpl[1].pValue = (void *)label;
        tmpl[1].ulValueLen = strlen(label);
    }
    CK_RV rv = t->mod->f->C_FindObjectsInit(t->anchor, tmpl, label ? 2 : 1);
    if (rv != CKR_OK) {
        cmn_errf(err, errlen, "token '%s': C_FindObjectsInit failed: %s", t->label,
                    cmn_p11_rv_name(rv, rvb));
        return -1;
    }
    for (;;) {
        rv = t->mod->f->C_FindObjects(t->anchor, hs, sizeof hs / sizeof hs[0], &got);
        if (rv != CKR_OK) {
            cmn_errf(err, errlen, "token '%s': C_FindObjects failed: %s", t->label,
                        cmn_p11_rv_name(rv, rvb));
            goto out;
        }
        if (got == 0)
            break;
        cmn_p11_key_t *grown = realloc(keys, (nk + got) * sizeof *keys);
        if (grown == NULL) {
            cmn_errf(err, errlen, "out of memory");
            goto out;
        }
        keys = grown;
        for (CK_ULONG i = 0; i < got; i++)
            cmn_p11_describe(t, hs[i], &keys[nk++]);
    }
    rc = 0;
out:
    (void)t->mod->f->C_FindObjectsFinal(t->anchor);
    if (rc == 0) {
        *out = keys;
        *n = nk;
    } else {
        free(keys);
    }
    return rc;
}

/* What a master key may do: sign (HMAC), nothing else; and never leave
 * the token in the clear. */
static const struct { CK_ATTRIBUTE_TYPE type; CK_BBOOL value; } cmn_p11_key_flags[] = {
    {CKA_PRIVATE, CK_TRUE}, {CKA_SENSITIVE, CK_TRUE}, {CKA_EXTRACTABLE, CK_FALSE},
    {CKA_SIGN, CK_TRUE}, {CKA_VERIFY, CK_FALSE}, {CKA_ENCRYPT, CK_FALSE},
    {CKA_DECRYPT, CK_FALSE}, {CKA_WRAP, CK_FALSE}, {CKA_UNWRAP, CK_FALSE},
    {CKA_DERIVE, CK_FALSE},
};

/* Creates a key object: generated in the token (key NULL) or imported; a
 * token object when label is given, else a session object. */
static int cmn_p11_make(cmn_p11_token_t *t, const char *label, const char *created,
                        const uint8_t *key, size_t keylen, unsigned long *handle, char *err,
                        size_t errlen)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_ULONG vlen = CMN_KEY_LEN;
    CK_BBOOL token = label != NULL ? CK_TRUE : CK_FALSE;
    CK_MECHANISM mech = {CKM_GENERIC_SECRET_KEY_GEN, NULL, 0};
    CK_DATE date;
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_ATTRIBUTE a[20];
    CK_ULONG na = 0;
    char rvb[24];
    CK_RV rv;

#define CMN_P11_ADD(t_, p_, l_) (a[na].type = (t_), a[na].pValue = (void *)(p_), \
                                 a[na].ulValueLen = (l_), na++)
    CMN_P11_ADD(CKA_CLASS, &cls, sizeof cls);
    CMN_P11_ADD(CKA_KEY_TYPE, &kt, sizeof kt);
    CMN_P11_ADD(CKA_TOKEN, &token, sizeof token);
    for (size_t i = 0; i < sizeof cmn_p11_key_flags / sizeof cmn_p11_key_flags[0]; i++)
        CMN_P11_ADD(cmn_p11_key_flags[i].type, &cmn_p11_key_flags[i].value, sizeof(CK_BBOOL));
    if (label != NULL) {
        CMN_P11_ADD(CKA_LABEL, label, strlen(label));
        if (created != NULL && cmn_p11_is_time(created, strlen(created))) {
            CMN_P11_ADD(CKA_ID, created, strlen(created));
            memcpy(date.year, created, 4);
            memcpy(date.month, created + 5, 2);
            memcpy(date.day, created + 8, 2);
            CMN_P11_ADD(CKA_START_DATE, &date, sizeof date);
        }
    }
    if (key != NULL) {
        CMN_P11_ADD(CKA_VALUE, key, keylen);
        rv = t->mod->f->C_CreateObject(t->anchor, a, na, &h);
    } else {
        CMN_P11_ADD(CKA_VALUE_LEN, &vlen, sizeof vlen);
        rv = t->mod->f->C_GenerateKey(t->anchor, &mech, a, na, &h);
    }
#undef CMN_P11_ADD
    if (rv != CKR_OK) {
        cmn_errf(err, errlen, "token '%s': %s a key failed: %s%s", t->label,
                    key != NULL ? "C_CreateObject of" : "C_GenerateKey of",
                    cmn_p11_rv_name(rv, rvb),
                    rv == CKR_SESSION_READ_ONLY ? " (a read-only session)" : "");
        return -1;
    }
    *handle = h;
    return 0;
}

int cmn_p11_keygen(cmn_p11_token_t *t, const char *label, const char *created,
                   const uint8_t *key, size_t keylen, unsigned long *handle, char *err,
                   size_t errlen)
{
    return cmn_p11_make(t, label, created, key, keylen, handle, err, errlen);
}

int cmn_p11_standin(cmn_p11_token_t *t, unsigned long *handle, char *err, size_t errlen)
{
    return cmn_p11_make(t, NULL, NULL, NULL, 0, handle, err, errlen);
}
