/* prov_reissue: the reissue command of ddns-provision.
 *
 * Owns moving a registered device to another master key id for a refurbished
 * or resold device: choosing and checking the key id (the newest by
 * default; unknown and retired key ids refused), deriving the new secret,
 * optionally a new hostname label (random, or given), running the database
 * change of prov_db_reissue() with its audit row, and printing the new
 * credentials as 'issue' does, after the commit. The old secret stops
 * working at once because the gateway accepts an update only under the key
 * id recorded for the device. */
#ifndef PROV_REISSUE_H
#define PROV_REISSUE_H

/* argv[0] is "reissue". Returns a prov_exit code. */
int prov_cmd_reissue(int argc, char **argv);

#endif
