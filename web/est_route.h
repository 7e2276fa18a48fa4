/* Routing of EST request paths (RFC 7030 §3.2.2): /.well-known/est/<op> and
 * /.well-known/est/<label>/<op>. Pure string work, no CivetWeb, so it is unit-tested alone. */
#ifndef ESTCA_EST_ROUTE_H
#define ESTCA_EST_ROUTE_H

#include "status.h"

#include <stdbool.h>
#include <stddef.h>

#define EST_PATH_PREFIX "/.well-known/est/"
#define EST_LABEL_MAX 64

enum est_op {
    EST_OP_CACERTS,
    EST_OP_SIMPLEENROLL,
    EST_OP_SIMPLEREENROLL,
    EST_OP_SERVERKEYGEN,
    EST_OP_CSRATTRS,
    EST_OP_FULLCMC,
};

struct est_route {
    enum est_op op;
    bool has_label;
    char label[EST_LABEL_MAX + 1]; /* "" when !has_label */
};

/* Parses an already percent-decoded path (no query string). ESTCA_E_NOT_FOUND for anything
 * that is not exactly one of the two forms above with a known op; a label is 1 to
 * EST_LABEL_MAX characters of [A-Za-z0-9._-], not "." or "..", and not an op name. */
int est_route_parse(const char *path, struct est_route *out);

/* "cacerts", "simpleenroll", ... */
const char *est_op_name(enum est_op op);

/* The op's RFC 7030 method, "GET" or "POST". */
const char *est_op_method(enum est_op op);

/* Whether request method may be used on op: its RFC 7030 method, and HEAD where that is GET
 * (RFC 9110 §9.1: servers support HEAD wherever they support GET). */
bool est_op_accepts(enum est_op op, const char *method);

/* The methods op accepts, as the Allow header's value: "GET, HEAD" or "POST". */
const char *est_op_allow(enum est_op op);

/* Whether a Content-Type header value names media type type ("application/pkcs10"):
 * type and subtype compared case-insensitively, parameters after ';' ignored. */
bool est_media_type_is(const char *header, const char *type);

#endif
