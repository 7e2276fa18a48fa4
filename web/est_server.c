/* Start-up and shutdown of the EST front: CivetWeb with TLS from our own SSL_CTX, every
 * request through est_dispatch. */
#include "est_server.h"

#include "civetweb_start.h"
#include "est_internal.h"
#include "est_response.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EST_DEFAULT_MAX_BODY 65536

/* CivetWeb's external_ssl_ctx: returning 1 with our context makes CivetWeb use it as is,
 * without configuring it; CivetWeb calls this again when it frees its context, and 1 then
 * means "not yours to free" (est_server_stop frees it). */
static int on_external_ssl_ctx(void **ssl_ctx, void *user_data)
{
    struct est_server *server = user_data;
    *ssl_ctx = server->ssl_ctx;
    return 1;
}

/* The "[::1]:8443" or "127.0.0.1:8443" of the configuration as a CivetWeb TLS port. One
 * address only: CivetWeb would read a comma as a second listener. */
static int listening_ports(const char *listen, char *out, size_t cap, estca_reason *why)
{
    if (listen == NULL || listen[0] == '\0' || strpbrk(listen, ", \t") != NULL)
        return estca_fail(why, ESTCA_E_CONFIG, "listen must be one host:port, not \"%s\"",
                          listen != NULL ? listen : "");
    size_t len = strlen(listen);
    char last = listen[len - 1];
    if (last < '0' || last > '9')
        return estca_fail(why, ESTCA_E_CONFIG, "listen \"%s\" must end with a port", listen);
    int n = snprintf(out, cap, "%ss", listen);
    if (n < 0 || (size_t)n >= cap)
        return estca_fail(why, ESTCA_E_CONFIG, "listen \"%s\" is too long", listen);
    return ESTCA_OK;
}

static int start_civetweb(struct est_server *server, const struct est_server_options *options,
                          estca_reason *why)
{
    char ports[300], threads[16], timeout[16], per_address[16];
    int rc = listening_ports(options->listen, ports, sizeof ports, why);
    if (rc != ESTCA_OK)
        return rc;
    snprintf(threads, sizeof threads, "%d", options->threads > 0 ? options->threads : 50);
    snprintf(timeout, sizeof timeout, "%d",
             options->request_timeout_ms > 0 ? options->request_timeout_ms : 10000);
    snprintf(per_address, sizeof per_address, "%d",
             options->max_connections_per_address > 0 ? options->max_connections_per_address : 0);
    /* No document_root: nothing is ever served from the file system. */
    // clang-format off
    const char *config[] = {
        "listening_ports",          ports, /* host:port + "s": TLS */
        "num_threads",              threads,
        "request_timeout_ms",       timeout,
        /* Our CivetWeb patch: connections wait in the accepting thread, not in a
         * worker, until their first TLS record is in (packaging/civetweb-*.patch). */
        "max_connections_per_address", per_address,
        "enable_keep_alive",        "yes", /* off by default in CivetWeb */
        "tcp_nodelay",              "1",
        "enable_directory_listing", "no",
        NULL,
    };
    // clang-format on
    struct mg_callbacks callbacks;
    memset(&callbacks, 0, sizeof callbacks);
    callbacks.begin_request = est_dispatch;
    callbacks.external_ssl_ctx = on_external_ssl_ctx;
    callbacks.init_connection = est_tls_on_init_connection;
    callbacks.connection_close = est_tls_on_connection_close;
    return civetweb_start(config, &callbacks, server, options->listen, &server->ctx, &server->port,
                          why);
}

static int init_library(struct est_server *server, estca_reason *why)
{
    unsigned ready = mg_init_library(MG_FEATURES_TLS);
    server->library_initialised = true;
    if (!mg_check_feature(MG_FEATURES_TLS) || !(ready & MG_FEATURES_TLS))
        return estca_fail(why, ESTCA_E_CONFIG, "this CivetWeb build has no TLS support");
    return ESTCA_OK;
}

void est_server_options_from_config(const struct estca_config *config,
                                    struct est_server_options *out)
{
    *out = (struct est_server_options){
        .listen = config->listen,
        .threads = config->threads,
        .max_body = config->max_body,
        .request_timeout_ms = config->request_timeout_ms,
        .max_connections_per_address = config->max_connections_per_address,
    };
}

int est_server_start(const struct est_server_options *options, struct ca_core *core,
                     struct est_server **out, estca_reason *why)
{
    *out = NULL;
    struct est_server *server = calloc(1, sizeof *server);
    if (server == NULL)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    pthread_mutex_init(&server->generation_lock, NULL);
    server->max_body = options->max_body > 0 ? options->max_body : EST_DEFAULT_MAX_BODY;
    int rc = init_library(server, why);
    if (rc == ESTCA_OK && (server->throttle = auth_throttle_new()) == NULL)
        rc = estca_fail(why, ESTCA_E_NOMEM, "cannot create the login throttle");
    if (rc == ESTCA_OK)
        rc = est_tls_context_new(options->tls_certificate, options->tls_chain, options->tls_key,
                                 &server->ssl_ctx, why);
    if (rc == ESTCA_OK) {
        server->tls_credentials = server->ssl_ctx;
        SSL_CTX_set_client_hello_cb(server->ssl_ctx, est_tls_use_current_credentials, server);
        rc = est_generation_new(core, &server->generation, why);
    }
    if (rc == ESTCA_OK)
        rc = start_civetweb(server, options, why);
    if (rc != ESTCA_OK) {
        est_server_stop(server);
        return rc;
    }
    *out = server;
    return ESTCA_OK;
}

int est_server_port(const struct est_server *server)
{
    return server != NULL ? server->port : 0;
}

bool est_wait_for_zero(atomic_int *count, int timeout_ms)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (atomic_load(count) > 0) {
        if (est_elapsed_ms(&start) >= timeout_ms)
            return false;
        struct timespec tick = {.tv_nsec = 10 * 1000000L};
        nanosleep(&tick, NULL);
    }
    return true;
}

bool est_server_drain(struct est_server *server, int timeout_ms)
{
    if (server == NULL)
        return true;
    atomic_store(&server->draining, true);
    /* CivetWeb's mg_stop drops the answers still being written (its writes give up once it
     * is stopping): wait for the handlers first. */
    return est_wait_for_zero(&server->active_requests, timeout_ms);
}

void est_server_stop(struct est_server *server)
{
    if (server == NULL)
        return;
    if (server->ctx != NULL)
        mg_stop(server->ctx); /* returns once every worker has finished its request */
    if (server->tls_credentials != server->ssl_ctx)
        SSL_CTX_free(server->tls_credentials);
    SSL_CTX_free(server->ssl_ctx);
    auth_throttle_free(server->throttle);
    est_generation_free(server->generation);
    pthread_mutex_destroy(&server->generation_lock);
    if (server->library_initialised)
        mg_exit_library();
    free(server);
}
