/* Reloading the configuration under load (SIGHUP): requests never see a half-changed server.
 * A request takes the current generation (core + the bodies encoded from it) at dispatch and
 * keeps it to its end, so one that began before a reload finishes with the labels, CAs and
 * users it started with, and one that begins after it sees only the new ones. The swap itself
 * is a pointer change under a mutex that requests hold for a few instructions; the old
 * generation is handed back once no request holds it.
 *
 * The listener's certificate and key are replaced the same way: a new SSL_CTX becomes current,
 * and the client_hello callback of CivetWeb's context moves each new connection to it before
 * the server's certificate is chosen. Connections already open keep what they negotiated. */
#include "est_server.h"

#include "est_internal.h"

#include <stdlib.h>

int est_generation_new(struct ca_core *core, struct est_generation **out, estca_reason *why)
{
    *out = NULL;
    struct est_generation *generation = calloc(1, sizeof *generation);
    if (generation == NULL)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    generation->core = core;
    int rc =
        est_label_bodies_build(&generation->cacerts, core, est_cacerts_encode, "/cacerts", why);
    if (rc == ESTCA_OK)
        rc = est_label_bodies_build(&generation->csrattrs, core, est_csrattrs_encode, "/csrattrs",
                                    why);
    if (rc != ESTCA_OK) {
        est_generation_free(generation);
        return rc;
    }
    *out = generation;
    return ESTCA_OK;
}

void est_generation_free(struct est_generation *generation)
{
    if (generation == NULL)
        return;
    est_label_bodies_free(&generation->cacerts);
    est_label_bodies_free(&generation->csrattrs);
    free(generation);
}

struct est_generation *est_generation_acquire(struct est_server *server)
{
    pthread_mutex_lock(&server->generation_lock);
    struct est_generation *generation = server->generation;
    atomic_fetch_add(&generation->requests, 1);
    pthread_mutex_unlock(&server->generation_lock);
    return generation;
}

void est_generation_release(struct est_generation *generation)
{
    atomic_fetch_sub(&generation->requests, 1);
}

int est_server_replace_core(struct est_server *server, struct ca_core *core, int timeout_ms,
                            struct ca_core **old, estca_reason *why)
{
    *old = NULL;
    struct est_generation *next = NULL;
    int rc = est_generation_new(core, &next, why);
    if (rc != ESTCA_OK)
        return rc;
    pthread_mutex_lock(&server->generation_lock);
    struct est_generation *previous = server->generation;
    server->generation = next;
    pthread_mutex_unlock(&server->generation_lock);
    if (!est_wait_for_zero(&previous->requests, timeout_ms))
        /* A request still holds it: both stay allocated rather than be freed under it. */
        return estca_fail(why, ESTCA_E_UNAVAILABLE,
                          "a request that began before the reload was still running after %d ms; "
                          "the previous configuration stays in memory",
                          timeout_ms);
    *old = previous->core;
    est_generation_free(previous);
    return ESTCA_OK;
}

int est_server_replace_tls(struct est_server *server, X509 *certificate, STACK_OF(X509) *chain,
                           EVP_PKEY *key, estca_reason *why)
{
    SSL_CTX *next = NULL;
    int rc = est_tls_context_new(certificate, chain, key, &next, why);
    if (rc != ESTCA_OK)
        return rc;
    pthread_mutex_lock(&server->generation_lock);
    SSL_CTX *previous = server->tls_credentials;
    server->tls_credentials = next;
    pthread_mutex_unlock(&server->generation_lock);
    /* Connections moved to it hold their own reference. */
    if (previous != server->ssl_ctx)
        SSL_CTX_free(previous);
    return ESTCA_OK;
}

int est_tls_use_current_credentials(SSL *ssl, int *alert, void *arg)
{
    struct est_server *server = arg;
    pthread_mutex_lock(&server->generation_lock);
    SSL_CTX *current = server->tls_credentials;
    bool moved = current != SSL_get_SSL_CTX(ssl);
    if (moved)
        SSL_CTX_up_ref(current);
    pthread_mutex_unlock(&server->generation_lock);
    if (!moved)
        return SSL_CLIENT_HELLO_SUCCESS;
    /* Takes the certificate, chain and key of current; verification mode, options and
     * callbacks stay those of ssl_ctx, which est_tls_context_new sets alike. */
    SSL_CTX *set = SSL_set_SSL_CTX(ssl, current);
    SSL_CTX_free(current);
    if (set == current)
        return SSL_CLIENT_HELLO_SUCCESS;
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_CLIENT_HELLO_ERROR;
}
