/* Every request CivetWeb parses comes here (its begin_request callback, so none of
 * CivetWeb's own file serving or authentication ever runs): route, label, method, then the
 * op's handler; afterwards one key=value log line. The Authorization header is never logged. */
#include "est_response.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void route_and_handle(struct est_request *req)
{
    if (est_route_parse(req->info->local_uri, &req->route) != ESTCA_OK) {
        est_respond_error(req, 404, NULL, "no such EST resource");
        return;
    }
    req->routed = true;
    const struct est_route *route = &req->route;
    req->label = core_find_label(req->core, route->has_label ? route->label : NULL);
    if (req->label == NULL) {
        est_respond_error(req, 404, NULL,
                          route->has_label ? "no such CA label" : "no default CA label");
        return;
    }
    if (!est_op_accepts(route->op, req->info->request_method)) {
        char allow[32];
        snprintf(allow, sizeof allow, "Allow: %s\r\n", est_op_allow(route->op));
        est_respond_error(req, 405, allow, "%s needs %s", est_op_name(route->op),
                          est_op_method(route->op));
        return;
    }
    switch (route->op) {
    case EST_OP_CACERTS:
        est_cacerts_handle(req);
        return;
    case EST_OP_SIMPLEENROLL:
        est_enroll_handle(req);
        return;
    case EST_OP_CSRATTRS:
        est_csrattrs_handle(req);
        return;
    case EST_OP_SIMPLEREENROLL:
        est_reenroll_handle(req);
        return;
    case EST_OP_SERVERKEYGEN:
        est_serverkeygen_handle(req);
        return;
    case EST_OP_FULLCMC:
        /* RFC 7030 §4.3.2: clients read 501 as "not implemented". */
        est_respond_error(req, 501, NULL, "%s is not implemented yet", est_op_name(route->op));
        return;
    }
    est_respond_error(req, 404, NULL, "no such EST resource");
}

/* Appends " key=value" in logfmt: the value quoted when it holds a blank, '=' or '"' (or is
 * empty), with '"' and '\' escaped and control characters shown as '?'; long values cut. */
static void log_field(char *line, size_t cap, size_t *used, const char *key, const char *value)
{
    if (value == NULL)
        value = "-";
    bool quote = value[0] == '\0' || strpbrk(value, " \t=\"") != NULL;
    char esc[2 * 256 + 3];
    size_t n = 0;
    if (quote)
        esc[n++] = '"';
    for (size_t i = 0; value[i] != '\0' && i < 256; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c == '"' || c == '\\')
            esc[n++] = '\\';
        esc[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (quote)
        esc[n++] = '"';
    esc[n] = '\0';
    if (*used < cap) {
        int w = snprintf(line + *used, cap - *used, " %s=%s", key, esc);
        *used = (w < 0 || (size_t)w >= cap - *used) ? cap - 1 : *used + (size_t)w;
    }
}

static void log_request(const struct est_request *req)
{
    char line[2048];
    size_t used = (size_t)snprintf(line, sizeof line, "event=request");
    char number[32];
    const struct mg_request_info *info = req->info;
    log_field(line, sizeof line, &used, "method", info->request_method);
    log_field(line, sizeof line, &used, "path", info->local_uri);
    snprintf(number, sizeof number, "%d", req->status);
    log_field(line, sizeof line, &used, "status", number);
    snprintf(number, sizeof number, "%zu", req->bytes_sent);
    log_field(line, sizeof line, &used, "bytes", number);
    snprintf(number, sizeof number, "%ld", est_elapsed_ms(&req->started));
    log_field(line, sizeof line, &used, "duration_ms", number);
    const char *label = req->label != NULL                    ? core_label_name(req->label)
                        : req->routed && req->route.has_label ? req->route.label
                                                              : NULL;
    log_field(line, sizeof line, &used, "label", label);
    log_field(line, sizeof line, &used, "requester",
              req->requester[0] != '\0' ? req->requester : NULL);
    log_field(line, sizeof line, &used, "peer", info->remote_addr);
    SSL *ssl = est_tls_connection_ssl(req->conn);
    log_field(line, sizeof line, &used, "tls", ssl != NULL ? SSL_get_version(ssl) : NULL);
    if (req->reason[0] != '\0')
        log_field(line, sizeof line, &used, "reason", req->reason);
    if (used + 1 >= sizeof line)
        used = sizeof line - 2;
    line[used++] = '\n';
    /* One write(2), so that lines of concurrent workers never interleave. */
    ssize_t ignored = write(STDERR_FILENO, line, used);
    (void)ignored;
}

/* A request to issue refused here, before the core judged it (bad credentials, throttled,
 * wrong media type, too large, not a CSR, unlinked): a security decision the audit log keeps
 * too. The core records its own decisions. */
static void audit_refusal(const struct est_request *req)
{
    if (!req->routed || req->core_decided || req->status < 400 ||
        (req->route.op != EST_OP_SIMPLEENROLL && req->route.op != EST_OP_SIMPLEREENROLL &&
         req->route.op != EST_OP_SERVERKEYGEN))
        return;
    core_audit_refusal(req->core, est_op_name(req->route.op), req->label,
                       req->requester[0] != '\0' ? req->requester : NULL, req->info->remote_addr,
                       req->status, req->reason);
}

int est_dispatch(struct mg_connection *conn)
{
    struct est_request req;
    memset(&req, 0, sizeof req);
    clock_gettime(CLOCK_MONOTONIC, &req.started);
    req.conn = conn;
    req.server = mg_get_user_data(mg_get_context(conn));
    req.info = mg_get_request_info(conn);
    req.body = EST_BODY_UNREAD;
    atomic_fetch_add(&req.server->active_requests, 1);
    req.generation = est_generation_acquire(req.server);
    req.core = req.generation->core;
    if (atomic_load(&req.server->draining))
        est_respond_error(&req, 503, "Retry-After: 5\r\n", "the server is shutting down");
    else
        route_and_handle(&req);
    if (req.status == 0) {
        /* Nothing could be written (out of memory): CivetWeb must not reuse the stream. */
        mg_disable_keep_alive(conn);
        req.status = 500;
    }
    log_request(&req);
    est_metrics_count(req.server, &req);
    audit_refusal(&req);
    est_generation_release(req.generation);
    atomic_fetch_sub(&req.server->active_requests, 1);
    /* A positive value tells CivetWeb the request is answered; it logs it as the status. */
    return req.status;
}
