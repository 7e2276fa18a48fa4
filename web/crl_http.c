/* GET /crl/<ca>.crl over plain HTTP (see crl_http.h). */
#include "crl_http.h"

#include "civetweb_start.h"

#include <civetweb.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CRL_PREFIX "/crl/"
#define CRL_SUFFIX ".crl"
#define CA_NAME_MAX 128

struct crl_http {
    struct mg_context *ctx;
    pthread_rwlock_t core_lock; /* read: a request copying a CRL; write: a reload */
    struct ca_core *core;
    int port;
};

static void respond_text(struct mg_connection *conn, int status, const char *text)
{
    civetweb_respond(conn, status, "text/plain", text, strlen(text));
}

/* "/crl/issuing.crl" -> "issuing"; false for anything else. */
static bool ca_name_of(const char *uri, char name[CA_NAME_MAX])
{
    size_t prefix = strlen(CRL_PREFIX), suffix = strlen(CRL_SUFFIX), len = strlen(uri);
    if (len <= prefix + suffix || strncmp(uri, CRL_PREFIX, prefix) != 0 ||
        strcmp(uri + len - suffix, CRL_SUFFIX) != 0 || len - prefix - suffix >= CA_NAME_MAX)
        return false;
    snprintf(name, CA_NAME_MAX, "%.*s", (int)(len - prefix - suffix), uri + prefix);
    return strchr(name, '/') == NULL;
}

static int on_request(struct mg_connection *conn)
{
    const struct mg_request_info *request = mg_get_request_info(conn);
    struct crl_http *server = request->user_data;
    char name[CA_NAME_MAX];
    if (!ca_name_of(request->local_uri, name)) {
        respond_text(conn, 404, "not found: CRLs are at /crl/<ca>.crl\n");
        return 200;
    }
    if (strcmp(request->request_method, "GET") != 0) {
        respond_text(conn, 405, "only GET\n");
        return 405;
    }
    unsigned char *der = NULL;
    size_t len = 0;
    estca_reason why = {{0}};
    pthread_rwlock_rdlock(&server->core_lock);
    int rc = core_crl_der(server->core, name, &der, &len, &why);
    pthread_rwlock_unlock(&server->core_lock);
    if (rc == ESTCA_E_NOT_FOUND)
        respond_text(conn, 404, "no such CA\n");
    else if (rc != ESTCA_OK)
        respond_text(conn, 503, "no CRL signed yet; retry later\n");
    else
        civetweb_respond(conn, 200, "application/pkix-crl", der, len);
    OPENSSL_free(der);
    return 200; /* handled */
}

int crl_http_start(const char *listen, struct ca_core *core, struct crl_http **out,
                   estca_reason *why)
{
    *out = NULL;
    struct crl_http *server = calloc(1, sizeof *server);
    if (server == NULL)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    pthread_rwlock_init(&server->core_lock, NULL);
    server->core = core;
    int rc =
        civetweb_start_plain(listen, "CRLs", on_request, server, &server->ctx, &server->port, why);
    if (rc != ESTCA_OK) {
        crl_http_stop(server);
        return rc;
    }
    *out = server;
    return ESTCA_OK;
}

int crl_http_port(const struct crl_http *server)
{
    return server != NULL ? server->port : 0;
}

void crl_http_replace_core(struct crl_http *server, struct ca_core *core)
{
    if (server == NULL)
        return;
    pthread_rwlock_wrlock(&server->core_lock);
    server->core = core;
    pthread_rwlock_unlock(&server->core_lock);
}

void crl_http_stop(struct crl_http *server)
{
    if (server == NULL)
        return;
    civetweb_stop_plain(server->ctx);
    pthread_rwlock_destroy(&server->core_lock);
    free(server);
}
