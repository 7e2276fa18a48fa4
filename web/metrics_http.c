/* GET /metrics over plain HTTP (see metrics_http.h). */
#include "metrics_http.h"

#include "civetweb_start.h"
#include "est_metrics.h"

#include <stdlib.h>
#include <string.h>

struct metrics_http {
    struct mg_context *ctx;
    struct est_server *est;
    int port;
};

static int respond_text(struct mg_connection *conn, int status, const char *text)
{
    return civetweb_respond(conn, status, "text/plain", text, strlen(text));
}

static int on_request(struct mg_connection *conn)
{
    const struct mg_request_info *request = mg_get_request_info(conn);
    struct metrics_http *server = request->user_data;
    if (strcmp(request->local_uri, "/metrics") != 0)
        return respond_text(conn, 404, "not found: see /metrics\n");
    if (strcmp(request->request_method, "GET") != 0)
        return respond_text(conn, 405, "only GET\n");
    char *text = NULL;
    size_t len = 0;
    estca_reason why = {{0}};
    if (est_metrics_text(server->est, &text, &len, &why) != ESTCA_OK)
        return respond_text(conn, 503, "cannot count now\n");
    civetweb_respond(conn, 200, "text/plain; version=0.0.4", text, len);
    free(text);
    return 200;
}

int metrics_http_start(const char *listen, struct est_server *est, struct metrics_http **out,
                       estca_reason *why)
{
    *out = NULL;
    struct metrics_http *server = calloc(1, sizeof *server);
    if (server == NULL)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    server->est = est;
    int rc = civetweb_start_plain(listen, "metrics", on_request, server, &server->ctx,
                                  &server->port, why);
    if (rc != ESTCA_OK) {
        metrics_http_stop(server);
        return rc;
    }
    *out = server;
    return ESTCA_OK;
}

int metrics_http_port(const struct metrics_http *server)
{
    return server != NULL ? server->port : 0;
}

void metrics_http_stop(struct metrics_http *server)
{
    if (server == NULL)
        return;
    civetweb_stop_plain(server->ctx);
    free(server);
}
