/* gw_resync: the 'ddns-gateway resync ZONE' command.
 *
 * Owns the repair of a zone whose DNS server lost changes (a lost journal,
 * a restore from an old backup): a TSIG-signed AXFR of the zone (gw_dns),
 * a comparison of its A/AAAA records with the names table (active devices:
 * exactly the recorded address and TTL; revoked devices: nothing), names the
 * history table says were published but that no longer exist (removed),
 * and records the database never published (left alone and counted). Every
 * difference is queued in dns_outbox as the name's current state, read
 * under row locks in the same transaction, so that a device update racing
 * with the repair always stays the newest change. The queued changes are
 * then published by the normal publisher (gw_publish) until the outbox has
 * none of them left. */
#ifndef GW_RESYNC_H
#define GW_RESYNC_H

/* Exit codes of the command, beyond those of ddns-gateway itself. */
#define GW_RESYNC_EXIT_DIFFERENT 4  /* --dry-run found differences */

/* Runs the command: argv[0] is "resync". default_config is the
 * configuration file used without -c. Returns the process exit code. */
int gw_resync_main(int argc, char **argv, const char *default_config);

#endif
