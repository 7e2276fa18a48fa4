/* The client side of fuzz_est_handler: TLS connections to the server under test from a chosen
 * loopback address, kept open and reused (reconnecting, with session resumption, only when the
 * server closed one), one HTTP/1.1 exchange at a time. It checks the framing of what comes
 * back: a status line (1xx interim answers skipped), a body exactly as long as Content-Length
 * says (none for HEAD and 204), an answer within 8 s, no byte between answers. A violation
 * prints why on fuzz_out and aborts, which libFuzzer reports as a crash. */
#ifndef ESTCA_FUZZ_EST_HANDLER_CLIENT_H
#define ESTCA_FUZZ_EST_HANDLER_CLIENT_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

struct est_client_connection {
    const char *source; /* the loopback address this connection comes from */
    int port;           /* the server's, on 127.0.0.1 */
    SSL_CTX *ctx;
    SSL *ssl;             /* NULL: not connected */
    int fd;               /* -1: not connected */
    SSL_SESSION *session; /* for resumption on reconnect */
    char last[400];       /* the start of the last request sent, for violation messages */
};

struct est_client_response {
    int status;
    char *head;          /* status line and headers of the final answer, NUL-terminated */
    unsigned char *body; /* body_len bytes, NUL-terminated */
    size_t body_len;
    bool close; /* the server closes the connection after it */
};

/* Where fuzz_say and fuzz_violation write (a copy of stderr taken before libFuzzer closes it). */
extern int fuzz_out;
void fuzz_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fuzz_violation(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
long fuzz_now_ms(void); /* CLOCK_MONOTONIC */

/* TLS connections made so far (reconnects included). */
extern unsigned long est_client_connects;

/* A client context trusting the listener's CA (PEM file ca_file); NULL on error. */
SSL_CTX *est_client_context(const char *ca_file);

/* Sends request (len bytes, complete) on c and reads the final answer into *r (caller frees
 * with est_client_response_free). A reused connection found closed is replaced once. */
void est_client_exchange(struct est_client_connection *c, const char *request, size_t len,
                         bool head_request, struct est_client_response *r);
void est_client_response_free(struct est_client_response *r);

/* Closes c, keeping its TLS session for resumption. */
void est_client_disconnect(struct est_client_connection *c);

/* The value of header name (case-insensitive) in a response head, or NULL. */
const char *est_client_header(const char *head, const char *name);

#endif
