/* gw_apiname: the admin API's name endpoint (docs/ADMIN-API.md, "Actions").
 *
 * Owns what POST devices/{id}/names (add a name) and PUT
 * devices/{id}/names/{name} (rename) accept before the database sees them:
 * the name's syntax and zone; the reserved-label rule of cmn_label with
 * [admin] reserved_labels (400); and the question, asked of each candidate
 * zone's primary with one UDP query on the admin listener's event loop
 * (cmn_label's message, GW_APINAME_TIMEOUT_MS), whether LABEL.ZONE already
 * holds records. The answers go with the request to admin_name_checked(),
 * which refuses (409) a label holding records that no device published in
 * the name's zone and otherwise adds or renames through admin_name(). */
#ifndef GW_APINAME_H
#define GW_APINAME_H

#include "gw_apireq.h"

#define GW_APINAME_TIMEOUT_MS 2000

/* POST devices/{id}/names, PUT devices/{id}/names/{name} */
int gw_apiname_set(gw_apireq_t *r);

#endif
