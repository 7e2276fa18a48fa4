/* The operators' metrics listener: plain HTTP, GET /metrics in the Prometheus text format
 * (est_metrics.h). A listener of its own, meant for loopback or a management network: the
 * counts say who is being refused how often, which the EST and CRL listeners do not tell. */
#ifndef ESTCA_METRICS_HTTP_H
#define ESTCA_METRICS_HTTP_H

#include "est_server.h"
#include "status.h"

struct metrics_http;

/* listen: "127.0.0.1:9100" (port 0: any free port). The EST server must outlive the listener.
 * Caller frees with metrics_http_stop. */
int metrics_http_start(const char *listen, struct est_server *est, struct metrics_http **out,
                       estca_reason *why);
int metrics_http_port(const struct metrics_http *server);
void metrics_http_stop(struct metrics_http *server);

#endif
