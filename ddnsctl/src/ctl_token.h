/* ctl_token: the token command of ddnsctl.
 *
 * Owns 'ddnsctl token list|create|revoke': its options and checks, the
 * choice between the admin API and the database (--db, or DDNS_DB when no
 * URL is configured; ctl_tokendb does the database side), --expires as a
 * duration, and printing the answer (the new token itself on standard
 * output, once). */
#ifndef CTL_TOKEN_H
#define CTL_TOKEN_H

/* argv[0] is "token". Returns a CTL_EXIT_* code. */
int ctl_cmd_token(int argc, char **argv);

#endif
