/* The EST front: a CivetWeb HTTPS listener serving /.well-known/est/[label/]<op>, turning
 * requests into calls on the CA core and results into RFC 7030 / RFC 8951 wire bytes.
 * TLS 1.2+ only; the listener's private key is handed in (it may live on a token). */
#ifndef ESTCA_EST_SERVER_H
#define ESTCA_EST_SERVER_H

#include "config.h"
#include "core.h"
#include "status.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>

struct est_server_options {
    const char *listen; /* "127.0.0.1:8443", "[::1]:8443"; port 0 = any free port */
    int threads;        /* CivetWeb worker threads */
    size_t max_body;    /* larger request bodies get 413 */
    /* The TLS handshake and the whole first request, from when a worker takes the
     * connection; connections that send nothing are closed this long after accept. */
    int request_timeout_ms;
    /* Connections of one source address in their TLS handshake or first request at once
     * (each holds a worker); its other connections wait without one. 0: no limit. */
    int max_connections_per_address;
    X509 *tls_certificate;     /* borrowed */
    STACK_OF(X509) *tls_chain; /* borrowed; intermediates, may be NULL */
    EVP_PKEY *tls_key;         /* borrowed */
};

/* The listener's settings from the [server] section; the TLS credentials, which config only
 * names, are the caller's to load and set. */
void est_server_options_from_config(const struct estca_config *config,
                                    struct est_server_options *out);

struct est_server;

/* Refuses to start (ESTCA_E_CONFIG) if the CivetWeb build lacks TLS. Pre-encodes every
 * label's /cacerts body. The core must outlive the server. Caller frees with
 * est_server_stop. */
int est_server_start(const struct est_server_options *options, struct ca_core *core,
                     struct est_server **out, estca_reason *why);

/* The TCP port actually bound (useful with port 0). */
int est_server_port(const struct est_server *server);

/* A reload (SIGHUP): requests from now on are served by core; those that began before finish
 * on the previous core, which *old then returns for the caller to free (the caller frees core
 * after est_server_stop). ESTCA_E_UNAVAILABLE, with *old NULL, when a request still held the
 * previous core after timeout_ms: it is then never freed. Any other error leaves the server as
 * it was. */
int est_server_replace_core(struct est_server *server, struct ca_core *core, int timeout_ms,
                            struct ca_core **old, estca_reason *why);

/* New TLS connections get this certificate, chain (may be NULL) and key (borrowed: the server
 * takes its own references); connections already open keep theirs. */
int est_server_replace_tls(struct est_server *server, X509 *certificate, STACK_OF(X509) *chain,
                           EVP_PKEY *key, estca_reason *why);

/* Lets the requests being handled finish and answers any new one 503 ("shutting down"),
 * closing every connection after its answer; true once none is left, false after
 * timeout_ms. Call before est_server_stop, which would drop unfinished answers. */
bool est_server_drain(struct est_server *server, int timeout_ms);

/* Stops accepting, waits for in-flight requests, frees. */
void est_server_stop(struct est_server *server);

#endif
