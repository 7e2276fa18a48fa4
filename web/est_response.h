/* EST responses on the wire. Every response is formatted into one buffer (status line,
 * headers, blank line, body) and written with one mg_write, i.e. one SSL_write: strongSwan
 * pki needs the whole header block in the first TLS record, and one write also avoids the
 * Nagle/delayed-ACK stall of a small header write followed by a body write.
 *
 * Keep-alive: CivetWeb keeps a connection after a handler only if the request body was
 * consumed (or was discardable) and must_close is unset; our Connection header must agree
 * with that, so est_respond decides first and calls mg_disable_keep_alive when it says
 * "close" (that call, which sets must_close, comes from Debian's civetweb patch
 * "webdav-uploads"; upstream 1.15 has no public way to set must_close). With must_close
 * set CivetWeb also skips draining the unread body and just closes. */
#ifndef ESTCA_EST_RESPONSE_H
#define ESTCA_EST_RESPONSE_H

#include "est_internal.h"

#include <stdbool.h>
#include <stddef.h>

struct est_response {
    int status;
    const char *content_type;  /* NULL: none (204) */
    const char *extra_headers; /* complete "Name: value\r\n" lines, or NULL */
    const void *body;
    size_t body_len;
    bool secret; /* the body holds a private key: est_respond wipes its copy after writing */
};

/* The reason phrase of a status code we send ("Not Found"). */
const char *est_status_reason(int status);

/* Pure: the complete response in a new buffer (caller frees with free). date is an
 * IMF-fixdate; omit_body for HEAD. 204 gets neither Content-Type nor Content-Length. */
int est_response_format(const struct est_response *response, bool keep_alive, bool omit_body,
                        const char *date, char **out, size_t *out_len);

/* Pure: whether the client lets the connection live on, as CivetWeb's should_keep_alive
 * judges it: a Connection header decides by its "keep-alive" token; without one HTTP/1.1
 * means yes and HTTP/1.0 no. */
bool est_client_wants_keep_alive(const char *http_version, const char *connection);

/* Pure: whether a comma-separated header value holds token (case-insensitive). */
bool est_header_has_token(const char *value, const char *token);

/* Pure: "Sun, 06 Nov 1994 08:49:37 GMT" for t (cap >= 30). */
void est_http_date(time_t t, char *out, size_t cap);

/* Writes response for req and records status and size for the log. */
void est_respond(struct est_request *req, const struct est_response *response);

/* A text/plain error: body is the formatted reason on one line; also the log's reason
 * unless est_note already set one. extra_headers as in struct est_response. */
void est_respond_error(struct est_request *req, int status, const char *extra_headers,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Records a reason for the log only (details the client must not see). */
void est_note(struct est_request *req, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes the interim "100 Continue" (RFC 9110 §10.1.1) if the client asked for it. */
int est_send_continue(struct est_request *req);

/* Milliseconds since since (CLOCK_MONOTONIC). */
long est_elapsed_ms(const struct timespec *since);

/* Whether the request carries a chunked body. */
bool est_request_is_chunked(const struct est_request *req);

#endif
