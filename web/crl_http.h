/* The CRL publication point: a plain-HTTP CivetWeb listener of its own (RFC 5280 CDP URLs are
 * http:, and relying parties fetch CRLs without TLS) serving GET /crl/<ca>.crl as
 * application/pkix-crl DER from the core's CRL publisher. Nothing else is served on it: the
 * EST operations stay on the TLS listener. */
#ifndef ESTCA_CRL_HTTP_H
#define ESTCA_CRL_HTTP_H

#include "core.h"
#include "status.h"

struct crl_http;

/* listen: "127.0.0.1:8080" (port 0: any free port). The core must outlive its use here.
 * Caller frees with crl_http_stop. */
int crl_http_start(const char *listen, struct ca_core *core, struct crl_http **out,
                   estca_reason *why);
int crl_http_port(const struct crl_http *server);
/* A reload: requests from now on read core's CRLs; once this returns, none reads the
 * previous core's. */
void crl_http_replace_core(struct crl_http *server, struct ca_core *core);
void crl_http_stop(struct crl_http *server);

#endif
