/* Starting a CivetWeb context the way every estca listener does: its own errors go to the log
 * as key=value lines, a start failure comes back with CivetWeb's reason, and the port actually
 * bound is learnt (for port 0). Used by the EST listener and the plain-HTTP ones. */
#ifndef ESTCA_CIVETWEB_START_H
#define ESTCA_CIVETWEB_START_H

#include "status.h"

#include <civetweb.h>

/* config: CivetWeb's NULL-terminated option list; callbacks: set what the listener needs (its
 * log_message is set here). what names the listener in errors. */
int civetweb_start(const char **config, struct mg_callbacks *callbacks, void *user_data,
                   const char *what, struct mg_context **ctx, int *port, estca_reason *why);

/* A small plain-HTTP listener (the CRLs, the metrics): four workers, every request to
 * handle, nothing served from the file system. Stop it with civetweb_stop_plain, also after a
 * failed start. */
int civetweb_start_plain(const char *listen, const char *what,
                         int (*handle)(struct mg_connection *conn), void *user_data,
                         struct mg_context **ctx, int *port, estca_reason *why);
void civetweb_stop_plain(struct mg_context *ctx);

/* A whole answer with Content-Length, not cached, connection closed after it; returns status. */
int civetweb_respond(struct mg_connection *conn, int status, const char *type, const void *body,
                     size_t len);

#endif
