/* ctl_http: the admin API client (see ctl_http.h). */
#include "ctl_http.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <ini.h>

struct ctl_ini_ctx {
    ctl_conf_t *conf;
    char *err;
    size_t errlen;
    int bad;
};

static int ctl_ini_cb(void *user, const char *section, const char *name, const char *value)
{
    struct ctl_ini_ctx *c = user;
    (void)section;
    if (strcmp(name, "url") == 0) {
        snprintf(c->conf->url, sizeof c->conf->url, "%s", value);
    } else if (strcmp(name, "token") == 0) {
        snprintf(c->conf->token, sizeof c->conf->token, "%s", value);
    } else if (strcmp(name, "timeout") == 0) {
        char *end;
        long t = strtol(value, &end, 10);
        if (*end != '\0' || t < 1 || t > 3600) {
            snprintf(c->err, c->errlen, "timeout: 1 to 3600 seconds");
            c->bad = 1;
            return 0;
        }
        c->conf->timeout_s = t;
    } else {
        snprintf(c->err, c->errlen, "unknown key '%.64s' (url, token, timeout)", name);
        c->bad = 1;
        return 0;
    }
    return 1;
}

int ctl_conf_load(ctl_conf_t *conf, const char *path, const char *url, const char *token,
                  char *err, size_t errlen)
{
    char def[512];
    int named = path != NULL;
    memset(conf, 0, sizeof *conf);
    conf->timeout_s = 30;
    if (path == NULL)
        path = getenv("DDNSCTL_CONFIG");
    if (path != NULL && path[0] != '\0') {
        named = 1;
    } else {
        const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
        if (xdg != NULL && xdg[0] != '\0')
            snprintf(def, sizeof def, "%s/ddnsctl.conf", xdg);
        else if (home != NULL && home[0] != '\0')
            snprintf(def, sizeof def, "%s/.config/ddnsctl.conf", home);
        else
            snprintf(def, sizeof def, "/etc/ddns/ddnsctl.conf");
        path = def;
        FILE *probe = fopen(path, "r");
        if (probe == NULL) {
            path = "/etc/ddns/ddnsctl.conf";
            probe = fopen(path, "r");
        }
        if (probe == NULL)
            path = NULL;
        else
            fclose(probe);
    }
    if (path != NULL) {
        snprintf(conf->config_path, sizeof conf->config_path, "%s", path);
        FILE *f = fopen(path, "r");
        if (f == NULL) {
            if (named) {
                snprintf(err, errlen, "cannot read the configuration file %s: %s", path,
                         strerror(errno));
                return -1;
            }
        } else {
            char why[256] = "";
            struct ctl_ini_ctx c = {conf, why, sizeof why, 0};
            int rc = ini_parse_file(f, ctl_ini_cb, &c);
            fclose(f);
            if (c.bad) {
                snprintf(err, errlen, "%s:%d: %s", path, rc, why);
                return -1;
            }
            if (rc != 0) {
                snprintf(err, errlen, "%s:%d: not an INI line (key = value)", path, rc);
                return -1;
            }
        }
    }
    const char *e = getenv("DDNSCTL_URL");
    if (e != NULL && e[0] != '\0')
        snprintf(conf->url, sizeof conf->url, "%s", e);
    e = getenv("DDNSCTL_TOKEN");
    if (e != NULL && e[0] != '\0')
        snprintf(conf->token, sizeof conf->token, "%s", e);
    if (url != NULL)
        snprintf(conf->url, sizeof conf->url, "%s", url);
    if (token != NULL)
        snprintf(conf->token, sizeof conf->token, "%s", token);
    size_t n = strlen(conf->url);
    while (n > 0 && conf->url[n - 1] == '/')
        conf->url[--n] = '\0';
    return 0;
}

void ctl_http_escape(const char *s, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s && o + 4 < outlen; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ':') {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
}

struct ctl_buf {
    char *p;
    size_t n;
};

static size_t ctl_write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    struct ctl_buf *b = arg;
    size_t len = size * nmemb;
    if (b->n + len > 64 * 1024 * 1024)
        return 0;
    char *q = realloc(b->p, b->n + len + 1);
    if (q == NULL)
        return 0;
    memcpy(q + b->n, data, len);
    b->p = q;
    b->n += len;
    b->p[b->n] = '\0';
    return len;
}

int ctl_http_call(const ctl_conf_t *conf, const char *method, const char *path,
                  const json_t *body, json_t **out, char *err, size_t errlen)
{
    int status = -1;
    char url[2048], auth[300];
    char *text = NULL;
    struct ctl_buf b = {NULL, 0};
    struct curl_slist *hdrs = NULL;
    CURL *c = NULL;

    *out = NULL;
    if (conf->url[0] == '\0') {
        snprintf(err, errlen, "no API URL: give --url, set DDNSCTL_URL or 'url' in the "
                 "configuration file (for example http://127.0.0.1:9100)");
        return -1;
    }
    if (conf->token[0] == '\0') {
        snprintf(err, errlen, "no token: give --token, set DDNSCTL_TOKEN or 'token' in the "
                 "configuration file ('ddnsctl token create --db CONNINFO' makes the first)");
        return -1;
    }
    if (strncmp(conf->url, "http://", 7) != 0 && strncmp(conf->url, "https://", 8) != 0) {
        snprintf(err, errlen, "URL '%.200s': must start with http:// or https://", conf->url);
        return -1;
    }
    snprintf(url, sizeof url, "%s%s", conf->url, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", conf->token);
    c = curl_easy_init();
    if (c == NULL) {
        snprintf(err, errlen, "cannot start libcurl");
        goto out;
    }
    hdrs = curl_slist_append(hdrs, auth);
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    if (body != NULL) {
        text = json_dumps(body, JSON_COMPACT);
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, text ? text : "{}");
    } else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, ctl_write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, conf->timeout_s);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, conf->timeout_s < 10 ? conf->timeout_s : 10L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "ddnsctl/" CTL_VERSION);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "%s %s: %s", method, conf->url, curl_easy_strerror(rc));
        goto out;
    }
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    json_error_t je;
    *out = b.p ? json_loads(b.p, 0, &je) : NULL;
    if (*out == NULL) {
        snprintf(err, errlen, "%s %s: HTTP %ld with an answer that is not JSON "
                 "(is %s the gateway's admin listener?)", method, path, code, conf->url);
        goto out;
    }
    status = (int)code;
out:
    if (text != NULL)
        free(text);
    free(b.p);
    curl_slist_free_all(hdrs);
    if (c != NULL)
        curl_easy_cleanup(c);
    memset(auth, 0, sizeof auth);
    return status;
}
