/* See civetweb_start.h. */
#include "civetweb_start.h"

#include <stdio.h>
#include <string.h>

/* CivetWeb's own errors (start-up, TLS handshakes, sockets) as log lines. */
static int on_log_message(const struct mg_connection *conn, const char *message)
{
    (void)conn;
    char clean[512];
    size_t n = 0;
    for (; message[n] != '\0' && n + 1 < sizeof clean; n++) {
        unsigned char c = (unsigned char)message[n];
        clean[n] = (c < 0x20 || c == 0x7f) ? ' ' : c == '"' ? '\'' : (char)c;
    }
    clean[n] = '\0';
    fprintf(stderr, "event=civetweb message=\"%s\"\n", clean);
    return 1; /* handled: CivetWeb writes no error log of its own */
}

int civetweb_start(const char **config, struct mg_callbacks *callbacks, void *user_data,
                   const char *what, struct mg_context **ctx, int *port, estca_reason *why)
{
    callbacks->log_message = on_log_message;
    struct mg_init_data init = {
        .callbacks = callbacks, .user_data = user_data, .configuration_options = config};
    char text[256] = "";
    struct mg_error_data error = {.text = text, .text_buffer_size = sizeof text};
    *ctx = mg_start2(&init, &error);
    if (*ctx == NULL)
        return estca_fail(why, ESTCA_E_IO, "cannot listen on %s: %s", what,
                          text[0] != '\0' ? text : "CivetWeb failed to start");
    struct mg_server_port bound;
    if (mg_get_server_ports(*ctx, 1, &bound) != 1)
        return estca_fail(why, ESTCA_E_IO, "cannot learn the port bound for %s", what);
    *port = bound.port;
    return ESTCA_OK;
}

int civetweb_start_plain(const char *listen, const char *what,
                         int (*handle)(struct mg_connection *conn), void *user_data,
                         struct mg_context **ctx, int *port, estca_reason *why)
{
    if (listen == NULL || strpbrk(listen, ", \t") != NULL)
        return estca_fail(why, ESTCA_E_CONFIG, "the %s listener must be one host:port", what);
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
    callbacks.begin_request = handle;
    mg_init_library(0);
    char name[300];
    snprintf(name, sizeof name, "%s (%s)", listen, what);
    return civetweb_start(config, &callbacks, user_data, name, ctx, port, why);
}

void civetweb_stop_plain(struct mg_context *ctx)
{
    if (ctx != NULL)
        mg_stop(ctx);
    mg_exit_library();
}

int civetweb_respond(struct mg_connection *conn, int status, const char *type, const void *body,
                     size_t len)
{
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
              "Cache-Control: no-cache\r\nConnection: close\r\n\r\n",
              status, mg_get_response_code_text(conn, status), type, len);
    if (len > 0)
        mg_write(conn, body, len);
    return status;
}
