/* The counters behind est_metrics.h. est_dispatch counts every answer once, after it is
 * written; the throttle keeps its own (auth_throttle_stats). */
#include "est_metrics.h"

#include "est_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const int counted_statuses[EST_METRICS_STATUSES - 1] = {
    200, 202, 204, 400, 401, 403, 404, 405, 411, 413, 415, 417, 429, 500, 501, 503,
};

void est_metrics_count(struct est_server *server, const struct est_request *req)
{
    size_t op = req->routed ? (size_t)req->route.op : EST_METRICS_OPS - 1;
    size_t status = EST_METRICS_STATUSES - 1; /* any other */
    for (size_t i = 0; i < EST_METRICS_STATUSES - 1; i++) {
        if (counted_statuses[i] == req->status) {
            status = i;
            break;
        }
    }
    if (op < EST_METRICS_OPS)
        atomic_fetch_add_explicit(&server->answers[op][status], 1, memory_order_relaxed);
}

struct text {
    char *buf;
    size_t len, cap;
    bool failed;
};

__attribute__((format(printf, 2, 3))) static void append(struct text *t, const char *format, ...)
{
    for (int attempt = 0; attempt < 2 && !t->failed; attempt++) {
        va_list args;
        va_start(args, format);
        int n = vsnprintf(t->buf + t->len, t->cap - t->len, format, args);
        va_end(args);
        if (n < 0) {
            t->failed = true;
        } else if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        } else {
            size_t cap = t->cap * 2 + (size_t)n + 1;
            char *grown = realloc(t->buf, cap);
            if (grown == NULL)
                t->failed = true;
            else
                t->buf = grown, t->cap = cap;
        }
    }
}

int est_metrics_text(struct est_server *server, char **out, size_t *out_len, estca_reason *why)
{
    *out = NULL;
    struct text t = {.buf = malloc(4096), .cap = 4096};
    if (t.buf == NULL)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    t.buf[0] = '\0';
    append(&t, "# HELP estca_est_answers_total EST answers by operation and HTTP status.\n"
               "# TYPE estca_est_answers_total counter\n");
    for (size_t op = 0; op < EST_METRICS_OPS; op++) {
        const char *name = op < EST_METRICS_OPS - 1 ? est_op_name((enum est_op)op) : "none";
        for (size_t i = 0; i < EST_METRICS_STATUSES; i++) {
            unsigned long n = atomic_load_explicit(&server->answers[op][i], memory_order_relaxed);
            if (n == 0)
                continue;
            if (i < EST_METRICS_STATUSES - 1)
                append(&t, "estca_est_answers_total{op=\"%s\",status=\"%d\"} %lu\n", name,
                       counted_statuses[i], n);
            else
                append(&t, "estca_est_answers_total{op=\"%s\",status=\"other\"} %lu\n", name, n);
        }
    }
    append(&t,
           "# HELP estca_login_failures_total Failed logins checked (wrong password, unknown "
           "user or code).\n"
           "# TYPE estca_login_failures_total counter\n"
           "estca_login_failures_total %lu\n"
           "# HELP estca_login_throttled_total Logins refused unchecked with 429 while their "
           "user or address was backing off.\n"
           "# TYPE estca_login_throttled_total counter\n"
           "estca_login_throttled_total %lu\n"
           "# HELP estca_login_backing_off User names and addresses backing off now.\n"
           "# TYPE estca_login_backing_off gauge\n"
           "estca_login_backing_off %lu\n"
           "# HELP estca_est_requests_in_flight EST requests being handled now.\n"
           "# TYPE estca_est_requests_in_flight gauge\n"
           "estca_est_requests_in_flight %d\n",
           atomic_load(&server->login_failures), atomic_load(&server->logins_throttled),
           auth_throttle_backing_off(server->throttle, time(NULL)),
           atomic_load(&server->active_requests));
    if (t.failed) {
        free(t.buf);
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    }
    *out = t.buf;
    *out_len = t.len;
    return ESTCA_OK;
}
