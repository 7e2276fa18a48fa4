/* What the EST front counts for operators, in the Prometheus text format: answers per
 * operation and status code, and the login throttle (failed logins, attempts refused while
 * backing off, keys backing off now). Counting is lock-free; a scrape reads a snapshot. */
#ifndef ESTCA_EST_METRICS_H
#define ESTCA_EST_METRICS_H

#include "est_server.h"

#include <stddef.h>

/* The text of GET /metrics. Caller frees *out with free. */
int est_metrics_text(struct est_server *server, char **out, size_t *out_len, estca_reason *why);

#endif
