/* Starting a CivetWeb context the way every estca listener does: its own errors go to the log
 * as key=value lines, a start failure comes back with CivetWeb's reason, and the port actually
 * bound is learnt (for port 0). Used by the EST listener and the CRL listener. */
#ifndef ESTCA_CIVETWEB_START_H
#define ESTCA_CIVETWEB_START_H

#include "status.h"

#include <civetweb.h>

/* config: CivetWeb's NULL-terminated option list; callbacks: set what the listener needs (its
 * log_message is set here). what names the listener in errors. */
int civetweb_start(const char **config, struct mg_callbacks *callbacks, void *user_data,
                   const char *what, struct mg_context **ctx, int *port, estca_reason *why);

#endif
