/* GET /crl/<ca>.crl over plain HTTP (see crl_http.h). */
#include "crl_http.h"

#include "civetweb_start.h"

#include <civetweb.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CRL_PREFIX "/crl/"
#define CRL_SUFFIX ".crl"
#define CA_NAME_MAX 128

struct crl_http {
    struct mg_context *ctx;
    struct ca_core *core;
    int port;
};

static void respond(struct mg_connection *conn, int status, const char *type,
                    const unsigned char *body, size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-cache\r\nConnection: close\r\n\r\n",
                     status, mg_get_response_code_text(conn, status), type, len);
    mg_write(conn, head, (size_t)n);
    if (len > 0)
        mg_write(conn, body, len);
}

static void respond_text(struct mg_connection *conn, int status, const char *text)
{
    respond(conn, status, "text/plain", (const unsigned char *)text, strlen(text));
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
    int rc = core_crl_der(server->core, name, &der, &len, &why);
    if (rc == ESTCA_E_NOT_FOUND)
        respond_text(conn, 404, "no such CA\n");
    else if (rc != ESTCA_OK)
        respond_text(conn, 503, "no CRL signed yet; retry later\n");
    else
        respond(conn, 200, "application/pkix-crl", der, len);
    OPENSSL_free(der);
    return 200; /* handled */
}

int crl_http_start(const char *listen, struct ca_core *core, struct crl_http **out,
                   estca_reason *why)
{
    *out = NULL;
    if (listen == NULL || strpbrk(listen, ", \t") != NULL)
        return estca_fail(why, ESTCA_E_CONFIG, "crl_listen must be one host:port");
    struct crl_http *server = calloc(1, sizeof *server);
    if (server == NULL)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    server->core = core;
    // clang-format off
    const char *config[] = {
        "listening_ports",          listen,
        "num_threads",              "4",
        "request_timeout_ms",       "10000",
        "enable_directory_listing", "no",
        NULL,
    };
    // clang-format on
    struct mg_callbacks callbacks;
    memset(&callbacks, 0, sizeof callbacks);
    callbacks.begin_request = on_request;
    mg_init_library(0);
    char what[300];
    snprintf(what, sizeof what, "%s (CRLs)", listen);
    int rc = civetweb_start(config, &callbacks, server, what, &server->ctx, &server->port, why);
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

void crl_http_stop(struct crl_http *server)
{
    if (server == NULL)
        return;
    if (server->ctx != NULL)
        mg_stop(server->ctx);
    mg_exit_library();
    free(server);
}
