#include "est_response.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *est_status_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return status < 500 ? "Bad Request" : "Internal Server Error";
    }
}

void est_http_date(time_t t, char *out, size_t cap)
{
    /* Fixed English names: strftime's %a and %b follow the locale. */
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL) {
        snprintf(out, cap, "Thu, 01 Jan 1970 00:00:00 GMT");
        return;
    }
    snprintf(out, cap, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7], tm.tm_mday,
             months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* The head of every response; the Content-Type and Content-Length lines come pre-formatted
 * because a 204 has neither. */
#define EST_RESPONSE_HEAD                                                                          \
    "HTTP/1.1 %d %s\r\n"                                                                           \
    "Date: %s\r\n"                                                                                 \
    "%s%s"                                                                                         \
    "Cache-Control: no-store\r\n"                                                                  \
    "Connection: %s\r\n"                                                                           \
    "%s"                                                                                           \
    "\r\n"

int est_response_format(const struct est_response *r, bool keep_alive, bool omit_body,
                        const char *date, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    /* RFC 9110 §8.6, §15.3.5: no Content-Length and no content in a 1xx or 204. */
    bool bodiless = r->status < 200 || r->status == 204;
    size_t body_len = bodiless ? 0 : r->body_len;
    char type_line[160] = "";
    char length_line[48] = "";
    if (r->content_type != NULL && !bodiless)
        snprintf(type_line, sizeof type_line, "Content-Type: %s\r\n", r->content_type);
    if (!bodiless)
        snprintf(length_line, sizeof length_line, "Content-Length: %zu\r\n", body_len);
    const char *reason = est_status_reason(r->status);
    const char *connection = keep_alive ? "keep-alive" : "close";
    const char *extra = r->extra_headers != NULL ? r->extra_headers : "";
    int head_len = snprintf(NULL, 0, EST_RESPONSE_HEAD, r->status, reason, date, type_line,
                            length_line, connection, extra);
    if (head_len < 0)
        return ESTCA_E_INVALID;
    size_t send_body = omit_body ? 0 : body_len;
    char *buf = malloc((size_t)head_len + send_body + 1);
    if (buf == NULL)
        return ESTCA_E_NOMEM;
    snprintf(buf, (size_t)head_len + 1, EST_RESPONSE_HEAD, r->status, reason, date, type_line,
             length_line, connection, extra);
    if (send_body > 0)
        memcpy(buf + head_len, r->body, send_body);
    *out = buf;
    *out_len = (size_t)head_len + send_body;
    return ESTCA_OK;
}

bool est_header_has_token(const char *value, const char *token)
{
    size_t token_len = strlen(token);
    const char *p = value;
    while (p != NULL && *p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *end = p + strcspn(p, ",");
        const char *last = end;
        while (last > p && (last[-1] == ' ' || last[-1] == '\t'))
            last--;
        if ((size_t)(last - p) == token_len && strncasecmp(p, token, token_len) == 0)
            return true;
        p = end;
    }
    return false;
}

bool est_client_wants_keep_alive(const char *http_version, const char *connection)
{
    if (connection != NULL)
        return est_header_has_token(connection, "keep-alive");
    return http_version != NULL && strcmp(http_version, "1.1") == 0;
}

bool est_request_is_chunked(const struct est_request *req)
{
    /* CivetWeb has already refused any coding but "chunked" and "identity". */
    const char *te = mg_get_header(req->conn, "Transfer-Encoding");
    return te != NULL && strcasecmp(te, "identity") != 0;
}

/* Whether the request body no longer stands between this response and the next request.
 * An untouched body is left to CivetWeb, which reads and drops it after the handler when
 * must_close is unset; we allow that only for a known length within max_body, and not when
 * the client waits for "100 Continue" (it will not send the body after a final status). */
static bool body_allows_keep_alive(const struct est_request *req)
{
    if (req->body != EST_BODY_UNREAD)
        return req->body == EST_BODY_READ;
    if (est_request_is_chunked(req))
        return false;
    long long length = req->info->content_length;
    if (length <= 0)
        return true;
    if (mg_get_header(req->conn, "Expect") != NULL && !req->continue_sent)
        return false;
    return (unsigned long long)length <= req->server->max_body;
}

/* Whether the client may still be sending a body we will not read: an untouched body it
 * is not holding back for "100 Continue", or one we stopped reading at max_body. */
static bool body_in_flight(const struct est_request *req)
{
    if (req->body == EST_BODY_EXCESS)
        return true;
    if (req->body != EST_BODY_UNREAD)
        return false;
    if (mg_get_header(req->conn, "Expect") != NULL && !req->continue_sent)
        return false;
    return est_request_is_chunked(req) || req->info->content_length > 0;
}

/* Lingering close: closing a socket with unread input makes the kernel send a reset, and a
 * client still busy uploading may then lose our answer unread (curl reports a send failure
 * instead of the 413). So after an early answer we read and drop what keeps arriving, until
 * the client stops (it does once it sees a final status) or a bound is reached (each read
 * waits at most request_timeout_ms). */
#define EST_LINGER_MAX_BYTES (16u << 20)
#define EST_LINGER_MAX_MS 2000

long est_elapsed_ms(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)((now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000);
}

static void linger(struct est_request *req)
{
    char sink[16384];
    size_t total = 0;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        int n = mg_read(req->conn, sink, sizeof sink);
        if (n <= 0)
            return;
        total += (size_t)n;
        if (total >= EST_LINGER_MAX_BYTES || est_elapsed_ms(&start) >= EST_LINGER_MAX_MS)
            return;
    }
}

void est_respond(struct est_request *req, const struct est_response *response)
{
    const struct mg_request_info *info = req->info;
    /* While draining for shutdown, every connection closes after its answer. */
    bool keep_alive =
        !atomic_load(&req->server->draining) && body_allows_keep_alive(req) &&
        est_client_wants_keep_alive(info->http_version, mg_get_header(req->conn, "Connection"));
    if (!keep_alive)
        mg_disable_keep_alive(req->conn);
    char date[40];
    est_http_date(time(NULL), date, sizeof date);
    bool head = info->request_method != NULL && strcmp(info->request_method, "HEAD") == 0;
    char *buf;
    size_t len;
    req->status = response->status;
    if (est_response_format(response, keep_alive, head, date, &buf, &len) != ESTCA_OK) {
        mg_disable_keep_alive(req->conn);
        est_note(req, "cannot format the response: out of memory");
        return;
    }
    int written = mg_write(req->conn, buf, len);
    if (response->secret)
        OPENSSL_cleanse(buf, len);
    free(buf);
    req->bytes_sent = written > 0 ? (size_t)written : 0;
    if (written < 0 || (size_t)written != len) {
        mg_disable_keep_alive(req->conn);
        est_note(req, "response write failed after %zu of %zu bytes", req->bytes_sent, len);
        return;
    }
    if (!keep_alive && body_in_flight(req))
        linger(req);
}

/* Keeps a reason on one line: control characters (an OpenSSL error list may hold
 * newlines) become spaces. */
static void one_line(char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = ' ';
    }
}

void est_note(struct est_request *req, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(req->reason, sizeof req->reason, fmt, ap);
    va_end(ap);
    one_line(req->reason);
}

void est_respond_error(struct est_request *req, int status, const char *extra_headers,
                       const char *fmt, ...)
{
    char text[ESTCA_REASON_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        text[0] = '\0';
    one_line(text);
    if (req->reason[0] == '\0') {
        size_t keep = strnlen(text, sizeof req->reason - 1);
        memcpy(req->reason, text, keep);
        req->reason[keep] = '\0';
    }
    size_t len = strlen(text);
    text[len++] = '\n';
    struct est_response response = {
        .status = status,
        .content_type = "text/plain; charset=utf-8",
        .extra_headers = extra_headers,
        .body = text,
        .body_len = len,
    };
    est_respond(req, &response);
}

int est_send_continue(struct est_request *req)
{
    const char *expect = mg_get_header(req->conn, "Expect");
    if (expect == NULL || req->continue_sent)
        return ESTCA_OK;
    static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (mg_write(req->conn, line, sizeof line - 1) != (int)(sizeof line - 1))
        return ESTCA_E_IO;
    req->continue_sent = true;
    return ESTCA_OK;
}
