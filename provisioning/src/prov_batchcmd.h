/* prov_batchcmd: the batch, derive and register commands of ddns-provision.
 *
 * Owns the order of a batch run: read and validate the CSV, check it against
 * the database inside one transaction, write the flashing output under a
 * temporary name, register the new devices and the audit row, commit, and
 * only then put the output in place. Every bad line is reported; nothing is
 * written unless every line is good, or --reject-file is given. 'derive' is
 * the same run without a database (for air-gapped stations), writing a
 * public file without secrets next to the flashing output; 'register' loads
 * such a public file into the database later, without any key. */
#ifndef PROV_BATCHCMD_H
#define PROV_BATCHCMD_H

/* argv[0] is the command name. Each returns a prov_exit code. */
int prov_cmd_batch(int argc, char **argv);
int prov_cmd_derive(int argc, char **argv);
int prov_cmd_register(int argc, char **argv);

#endif
