/* What the files of the EST front share: the server's state, the per-request record that the
 * handlers fill and the request log reads, and the handlers' entry points. */
#ifndef ESTCA_EST_INTERNAL_H
#define ESTCA_EST_INTERNAL_H

#include "auth_throttle.h"
#include "core.h"
#include "est_route.h"
#include "status.h"

#include <civetweb.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

/* One label's ready response body (base64, one line), encoded at start-up. */
struct est_label_body {
    const struct core_label *label;
    char *body; /* NULL: the label has nothing to send (e.g. /csrattrs 204) */
    size_t body_len;
};

/* A body for every label; read-only once built, so shared by the workers without a lock. */
struct est_label_bodies {
    struct est_label_body *entries;
    size_t n;
};

/* What one configuration gives the front: its core and the bodies encoded from it. Each
 * request holds the generation that was current when it began; a reload (SIGHUP) makes a new
 * one current, and the old one is freed once its last request is done (est_generation.c). */
struct est_generation {
    struct ca_core *core;
    struct est_label_bodies cacerts;
    struct est_label_bodies csrattrs;
    atomic_int requests; /* holding it now */
};

/* est_metrics.c: answers counted per op (the last row: not routed) and status (the last
 * column: a status not in its list). */
#define EST_METRICS_OPS (EST_OP_FULLCMC + 2)
#define EST_METRICS_STATUSES 17

struct est_server {
    struct mg_context *ctx;
    SSL_CTX *ssl_ctx; /* CivetWeb's, with the credentials of start-up */
    size_t max_body;
    int port;
    bool library_initialised;
    struct auth_throttle *throttle; /* password guessing back-off */
    pthread_mutex_t generation_lock;
    struct est_generation *generation; /* current; swapped under generation_lock */
    SSL_CTX *tls_credentials;          /* the listener's current certificate and key; under
                                          generation_lock, == ssl_ctx until a reload */
    atomic_int active_requests;        /* in est_dispatch now */
    atomic_ulong answers[EST_METRICS_OPS][EST_METRICS_STATUSES];
    atomic_ulong login_failures;   /* credentials checked and wrong */
    atomic_ulong logins_throttled; /* refused unchecked: 429 */
    atomic_bool draining;          /* est_server_drain: answer 503, close connections */
};

#define EST_REQUESTER_MAX 300
#define EST_LOG_REASON_MAX 300

/* Whether the request body has been read to its end: decides keep-alive (est_response.c). */
enum est_body_state {
    EST_BODY_UNREAD, /* not touched: there may be bytes left on the wire */
    EST_BODY_READ,   /* read to its end (or there was none) */
    EST_BODY_EXCESS, /* reading stopped at max_body; the client may still be sending */
    EST_BODY_BROKEN, /* reading failed (bad framing, time-out, connection lost) */
};

struct est_request {
    struct mg_connection *conn;
    struct est_server *server;
    struct est_generation *generation; /* held from dispatch to the log line */
    struct ca_core *core;              /* generation->core */
    const struct mg_request_info *info;
    struct timespec started;
    struct est_route route;
    bool routed;
    const struct core_label *label;
    char requester[EST_REQUESTER_MAX]; /* "" until authenticated */
    enum est_body_state body;
    bool continue_sent; /* "100 Continue" written */
    int status;         /* 0 until a response is written */
    size_t bytes_sent;
    char reason[EST_LOG_REASON_MAX]; /* for the log line: why the status is not 200 */
    bool core_decided; /* the core judged the request, and recorded its decision in the audit */
};

/* est_generation.c. new: encodes the bodies of core (not owned: the caller frees the core
 * after est_generation_free). acquire/release: a request's hold on the current generation. */
int est_generation_new(struct ca_core *core, struct est_generation **out, estca_reason *why);
void est_generation_free(struct est_generation *generation);
struct est_generation *est_generation_acquire(struct est_server *server);
void est_generation_release(struct est_generation *generation);
/* The TLS client_hello callback of ssl_ctx: moves a new connection to tls_credentials when a
 * reload has replaced them. */
int est_tls_use_current_credentials(SSL *ssl, int *alert, void *server);

/* est_server.c: waits until *count is 0 (true) or timeout_ms have passed (false). */
bool est_wait_for_zero(atomic_int *count, int timeout_ms);

/* est_metrics.c: counts req's answer. */
void est_metrics_count(struct est_server *server, const struct est_request *req);

/* est_dispatch.c: the CivetWeb begin_request callback; always answers. */
int est_dispatch(struct mg_connection *conn);

/* est_label_bodies.c: encodes one body per label at start-up with encode (which may leave
 * *body NULL), so a broken label stops the server early and no request encodes anything.
 * what names the resource in errors. */
typedef int (*est_label_encoder)(const struct core_label *label, char **body, size_t *body_len,
                                 estca_reason *why);
int est_label_bodies_build(struct est_label_bodies *bodies, const struct ca_core *core,
                           est_label_encoder encode, const char *what, estca_reason *why);
void est_label_bodies_free(struct est_label_bodies *bodies);
/* The label's entry; NULL only if label was not the core's at build time. */
const struct est_label_body *est_label_bodies_find(const struct est_label_bodies *bodies,
                                                   const struct core_label *label);

/* est_cacerts.c */
int est_cacerts_encode(const struct core_label *label, char **body, size_t *body_len,
                       estca_reason *why);
void est_cacerts_handle(struct est_request *req);

/* est_csrattrs.c: the DER CsrAttrs (RFC 8951 §4) for want, even when it asks for nothing
 * (an empty SEQUENCE). Caller frees *out with OPENSSL_free. */
int est_csrattrs_der(const struct core_csr_attrs *want, unsigned char **out, size_t *out_len,
                     estca_reason *why);
/* Its base64, one line; *out NULL when want asks for nothing (then the answer is 204).
 * Caller frees *out with OPENSSL_free. */
int est_csrattrs_base64(const struct core_csr_attrs *want, char **out, size_t *out_len,
                        estca_reason *why);
int est_csrattrs_encode(const struct core_label *label, char **body, size_t *body_len,
                        estca_reason *why);
void est_csrattrs_handle(struct est_request *req);

/* est_body.c: the whole request body within max_body, NUL-terminated, in a new buffer
 * (caller frees with free). On failure it has answered (400, 413, 417) and returns false. */
bool est_read_body(struct est_request *req, char **out, size_t *out_len);

/* est_enroll.c */
void est_enroll_handle(struct est_request *req);
void est_reenroll_handle(struct est_request *req);
void est_serverkeygen_handle(struct est_request *req);

/* est_pkcs7.c: base64 (one line) of a degenerate certs-only SignedData holding certs, in
 * order. Caller frees *out with OPENSSL_free. */
int est_certs_only_base64(STACK_OF(X509) *certs, char **out, size_t *out_len, estca_reason *why);

/* est_tls.c */
int est_tls_context_new(X509 *certificate, STACK_OF(X509) *chain, EVP_PKEY *key, SSL_CTX **out,
                        estca_reason *why);
/* CivetWeb init_connection / connection_close callbacks: attach the handshake's SSL* to
 * the connection (see est_tls.c). */
int est_tls_on_init_connection(const struct mg_connection *conn, void **conn_data);
void est_tls_on_connection_close(const struct mg_connection *conn);
/* The connection's SSL*, or NULL. Valid while the request is being handled. */
SSL *est_tls_connection_ssl(const struct mg_connection *conn);

#endif
