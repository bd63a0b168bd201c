/* ctl_cli: what the commands of ddnsctl share (see ctl_cli.h). */
#include "ctl_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_table.h"

int ctl_cli_json;
ctl_conf_t ctl_cli_conf;

int ctl_cli_refused(int status, const json_t *j)
{
    const char *e = json_string_value(json_object_get(j, "error"));
    const char *f = json_string_value(json_object_get(j, "field"));
    if (ctl_cli_json) {
        char *s = json_dumps(j, JSON_COMPACT);
        if (s != NULL)
            printf("%s\n", s);
        free(s);
    }
    fprintf(stderr, "ddnsctl: %d: %s%s%s%s\n", status, e ? e : "refused", f ? " (field '" : "",
            f ? f : "", f ? "')" : "");
    return CTL_EXIT_REFUSED;
}

int ctl_cli_call(const char *method, const char *path, json_t *body, json_t **out)
{
    char err[1024];
    int st = ctl_http_call(&ctl_cli_conf, method, path, body, out, err, sizeof err);
    json_decref(body);
    if (st < 0) {
        fprintf(stderr, "ddnsctl: %s\n", err);
        return CTL_EXIT_CONNECT;
    }
    if (st >= 300) {
        int rc = ctl_cli_refused(st, *out);
        json_decref(*out);
        *out = NULL;
        return rc;
    }
    return 0;
}

void ctl_cli_print_json(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s != NULL)
        printf("%s\n", s);
    free(s);
}

int ctl_cli_opts(int argc, char **argv, ctl_cli_opt_t *o, int n, const char *usage,
                 char **operands, int *noperands, int maxoperands)
{
    *noperands = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return -2;
        }
        if (strncmp(a, "--", 2) == 0 || (a[0] == '-' && a[1] == 'q' && a[2] == '\0')) {
            const char *name = a[1] == 'q' ? "query" : a + 2;
            const char *eq = strchr(name, '=');
            size_t nl = eq ? (size_t)(eq - name) : strlen(name);
            int k;
            for (k = 0; k < n; k++)
                if (strlen(o[k].name) == nl && strncmp(o[k].name, name, nl) == 0)
                    break;
            if (k == n) {
                fprintf(stderr, "ddnsctl %s: unknown option '%s' (see --help)\n", argv[0], a);
                return -1;
            }
            const char *v;
            if (o[k].flag) {
                v = "1";
            } else if (eq != NULL) {
                v = eq + 1;
            } else if (i + 1 < argc) {
                v = argv[++i];
            } else {
                fprintf(stderr, "ddnsctl %s: option '%s' needs a value\n", argv[0], a);
                return -1;
            }
            o[k].val = v;
            if (o[k].nmulti < 64)
                o[k].multi[o[k].nmulti++] = v;
            continue;
        }
        if (*noperands == maxoperands) {
            fprintf(stderr, "ddnsctl %s: unexpected argument '%s' (see --help)\n", argv[0], a);
            return -1;
        }
        operands[(*noperands)++] = argv[i];
    }
    return 0;
}

void ctl_cli_print_result(const json_t *j)
{
    if (ctl_cli_json) {
        ctl_cli_print_json(j);
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)j, k, v) {
        char text[512];
        ctl_table_text(v, text, sizeof text);
        printf("%s: %s\n", k, text);
    }
}

/* Sends the request (ctl_cli_call takes body) and prints its answer;
 * returns 0 or ctl_cli_call's exit code. */
int ctl_cli_call_print(const char *method, const char *path, json_t *body)
{
    json_t *j;
    int rc = ctl_cli_call(method, path, body, &j);
    if (rc != 0)
        return rc;
    ctl_cli_print_result(j);
    json_decref(j);
    return 0;
}
