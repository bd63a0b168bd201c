/* prov_batchcmd: the 'batch' command of ddns-provision.
 *
 * Owns the order of a batch run: read and validate the CSV, check it against
 * the database inside one transaction, write the flashing output under a
 * temporary name, register the new devices and the audit row, commit, and
 * only then put the output in place. Every bad line is reported; nothing is
 * written unless every line is good, or --reject-file is given. */
#ifndef PROV_BATCHCMD_H
#define PROV_BATCHCMD_H

/* argv[0] is "batch". Returns a prov_exit code. */
int prov_cmd_batch(int argc, char **argv);

#endif
