/* ctl_cli: what the commands of ddnsctl share.
 *
 * Owns the settings every command uses (the connection settings and
 * whether --json was given), the options of one command (long options,
 * --help, operands), calling the admin API with the report of a refusal or
 * of no answer, and printing an answer: the API's JSON, or "key: value"
 * lines. */
#ifndef CTL_CLI_H
#define CTL_CLI_H

#include <jansson.h>

#include "ctl_http.h"

/* --json: print the API's JSON instead of tables. Set by main. */
extern int ctl_cli_json;
/* The connection settings, loaded by main. */
extern ctl_conf_t ctl_cli_conf;

/* One option of a command: --name VALUE (or --name=VALUE), or a flag. */
typedef struct ctl_opt {
    const char *name;
    const char *val;            /* the last value given, NULL when none */
    const char *multi[64];      /* every value given (repeatable options) */
    int nmulti;
    int flag;                   /* takes no argument ("1" when given) */
} ctl_cli_opt_t;

/* Declares the options o[] of a command and their number no. */
#define CTL_CLI_OPTS(...) ctl_cli_opt_t o[] = {__VA_ARGS__}; \
    const int no = (int)(sizeof o / sizeof o[0])

/* Parses argv[1..argc) (argv[0] is the command): the n options of o, -q
 * for --query, --help and at most maxoperands operands (into operands,
 * their number into *noperands). Returns 0, -1 (why printed) or -2 (help
 * printed). */
int ctl_cli_opts(int argc, char **argv, ctl_cli_opt_t *o, int n, const char *usage,
                 char **operands, int *noperands, int maxoperands);

/* Prints an API error answer (and, with --json, the answer itself);
 * returns CTL_EXIT_REFUSED. */
int ctl_cli_refused(int status, const json_t *j);

/* Calls the API (body is consumed); on success returns 0 and *out is the
 * answer, else the exit code after printing why. */
int ctl_cli_call(const char *method, const char *path, json_t *body, json_t **out);

/* Prints j as one line of compact JSON. */
void ctl_cli_print_json(const json_t *j);

/* Prints a write's answer: JSON, or its fields as "key: value". */
void ctl_cli_print_result(const json_t *j);

/* ctl_cli_call, then ctl_cli_print_result of the answer; returns 0 or
 * ctl_cli_call's exit code. */
int ctl_cli_call_print(const char *method, const char *path, json_t *body);

#endif
