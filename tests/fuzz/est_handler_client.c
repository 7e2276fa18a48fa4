/* The client side of fuzz_est_handler: see est_handler_client.h. */
#include "est_handler_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RESPONSE_DEADLINE_MS 8000
#define RESPONSE_MAX (1u << 20)

int fuzz_out = 2;
unsigned long est_client_connects;

void fuzz_say(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t ignored = write(fuzz_out, line, (size_t)n);
    (void)ignored;
}

void fuzz_violation(const char *fmt, ...)
{
    char text[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    fuzz_say("fuzz_est_handler: INVARIANT VIOLATED: %s", text);
    abort();
}

long fuzz_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

SSL_CTX *est_client_context(const char *ca_file)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* Each connection keeps its own session (est_client_connection.session): no cache that
     * would grow with every reconnect. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    return ctx;
}

void est_client_disconnect(struct est_client_connection *c)
{
    if (c->ssl != NULL) {
        SSL_SESSION *session = SSL_get1_session(c->ssl);
        if (session != NULL && SSL_SESSION_is_resumable(session)) {
            SSL_SESSION_free(c->session);
            c->session = session;
        } else {
            SSL_SESSION_free(session);
        }
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* Waits until fd is ready for events or the deadline passes. */
static bool wait_fd(int fd, short events, long deadline)
{
    for (;;) {
        long left = deadline - fuzz_now_ms();
        if (left <= 0)
            return false;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return true;
        if (n < 0 && errno != EINTR)
            return false;
    }
}

/* Waits as SSL asks after a WANT_READ/WANT_WRITE; false on any other error or time-out. */
static bool ssl_wait(struct est_client_connection *c, int ret, long deadline)
{
    int err = SSL_get_error(c->ssl, ret);
    if (err == SSL_ERROR_WANT_READ)
        return wait_fd(c->fd, POLLIN, deadline);
    if (err == SSL_ERROR_WANT_WRITE)
        return wait_fd(c->fd, POLLOUT, deadline);
    return false;
}

static void connect_to_server(struct est_client_connection *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->fd < 0)
        fuzz_violation("socket: %s", strerror(errno));
    struct sockaddr_in from = {.sin_family = AF_INET};
    inet_pton(AF_INET, c->source, &from.sin_addr);
    if (bind(c->fd, (struct sockaddr *)&from, sizeof from) != 0)
        fuzz_violation("bind %s: %s", c->source, strerror(errno));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    long deadline = fuzz_now_ms() + RESPONSE_DEADLINE_MS;
    if (connect(c->fd, (struct sockaddr *)&to, sizeof to) != 0 &&
        (errno != EINPROGRESS || !wait_fd(c->fd, POLLOUT, deadline)))
        fuzz_violation("connect from %s: %s", c->source, strerror(errno));
    c->ssl = SSL_new(c->ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 || SSL_set1_host(c->ssl, "127.0.0.1") != 1)
        fuzz_violation("SSL_new failed");
    if (c->session != NULL)
        SSL_set_session(c->ssl, c->session);
    int ret;
    while ((ret = SSL_connect(c->ssl)) != 1) {
        if (!ssl_wait(c, ret, deadline)) {
            char err[256];
            ERR_error_string_n(ERR_get_error(), err, sizeof err);
            fuzz_violation("TLS handshake from %s failed: %s", c->source, err);
        }
    }
    est_client_connects++;
}

/* Before reusing a connection: whatever the server sent since the last response must be TLS
 * housekeeping (tickets) or its close, never application data. */
static void check_idle(struct est_client_connection *c)
{
    if (c->ssl == NULL)
        return;
    for (;;) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (SSL_pending(c->ssl) == 0 && poll(&p, 1, 0) <= 0)
            return;
        unsigned char byte;
        int ret = SSL_read(c->ssl, &byte, 1);
        if (ret > 0)
            fuzz_violation("the server sent bytes after a complete response (0x%02x); the request "
                           "before was: \"%s\"",
                           byte, c->last);
        if (SSL_get_error(c->ssl, ret) != SSL_ERROR_WANT_READ) {
            est_client_disconnect(c); /* closed (keep-alive time-out): reconnect */
            return;
        }
    }
}

static bool send_all(struct est_client_connection *c, const char *buf, size_t len)
{
    long deadline = fuzz_now_ms() + RESPONSE_DEADLINE_MS;
    size_t done = 0;
    while (done < len) {
        size_t written = 0;
        int ret = SSL_write_ex(c->ssl, buf + done, len - done, &written);
        if (ret == 1) {
            done += written;
            continue;
        }
        if (!ssl_wait(c, ret, deadline))
            return false;
    }
    return true;
}

/* Appends what the connection gives to *buf; 0 at its end, -1 on a time-out. */
static int receive_some(struct est_client_connection *c, unsigned char **buf, size_t *len,
                        size_t *cap, long deadline)
{
    if (*cap - *len < 16384) {
        size_t next = *cap * 2 + 16384;
        if (next > RESPONSE_MAX + 16384)
            fuzz_violation("response larger than %u bytes", RESPONSE_MAX);
        unsigned char *grown = realloc(*buf, next + 1);
        if (grown == NULL)
            fuzz_violation("out of memory");
        *buf = grown;
        *cap = next;
    }
    for (;;) {
        size_t got = 0;
        int ret = SSL_read_ex(c->ssl, *buf + *len, *cap - *len, &got);
        if (ret == 1) {
            *len += got;
            (*buf)[*len] = '\0';
            return 1;
        }
        int err = SSL_get_error(c->ssl, ret);
        if (err == SSL_ERROR_ZERO_RETURN || err == SSL_ERROR_SYSCALL || err == SSL_ERROR_SSL)
            return 0;
        if (!ssl_wait(c, ret, deadline))
            return fuzz_now_ms() >= deadline ? -1 : 0;
    }
}

const char *est_client_header(const char *head, const char *name)
{
    size_t name_len = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line != NULL; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, name, name_len) == 0 && line[name_len] == ':') {
            const char *v = line + name_len + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            return v;
        }
    }
    return NULL;
}

/* Reads one final response (skipping 1xx). Returns false if the connection ended before any
 * byte of it came (the caller may retry on a new connection). */
static bool read_response(struct est_client_connection *c, bool head_request,
                          struct est_client_response *r)
{
    memset(r, 0, sizeof *r);
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0, start = 0;
    long deadline = fuzz_now_ms() + RESPONSE_DEADLINE_MS;
    for (;;) {
        char *end = buf != NULL ? strstr((char *)buf + start, "\r\n\r\n") : NULL;
        if (end == NULL) {
            int got = receive_some(c, &buf, &len, &cap, deadline);
            if (got < 0)
                fuzz_violation("no complete response head within %d ms", RESPONSE_DEADLINE_MS);
            if (got == 0) {
                if (len == 0) {
                    free(buf);
                    return false;
                }
                fuzz_violation("the connection ended inside a response head: \"%.200s\"",
                               buf + start);
            }
            continue;
        }
        size_t head_len = (size_t)(end - (char *)buf) + 4 - start;
        /* CivetWeb answers the requests it cannot parse itself, as HTTP/1.0. */
        int status = 0, minor = 0;
        if (sscanf((char *)buf + start, "HTTP/1.%1d %3d ", &minor, &status) != 2 || minor > 1 ||
            status < 100 || status > 599)
            fuzz_violation("no status line: \"%.100s\"", buf + start);
        if (status >= 200) {
            r->status = status;
            r->head = strndup((char *)buf + start, head_len);
            if (r->head == NULL)
                fuzz_violation("out of memory");
            start += head_len;
            break;
        }
        if (status != 100)
            fuzz_violation("interim status %d", status);
        start += head_len;
    }
    const char *connection = est_client_header(r->head, "Connection");
    r->close = connection == NULL || strncasecmp(connection, "close", 5) == 0;
    const char *length = est_client_header(r->head, "Content-Length");
    bool bodiless = head_request || r->status == 204;
    if (r->status == 204 && length != NULL)
        fuzz_violation("204 with a Content-Length");
    if (length == NULL && !bodiless && !r->close)
        fuzz_violation("%d on a kept connection without Content-Length", r->status);
    size_t want = 0;
    if (length != NULL && !bodiless) {
        char *stop;
        unsigned long long v = strtoull(length, &stop, 10);
        if (stop == length || v > RESPONSE_MAX)
            fuzz_violation("bad Content-Length \"%.40s\"", length);
        want = (size_t)v;
    }
    bool to_eof = length == NULL && !bodiless;
    while (to_eof || len - start < want) {
        int got = receive_some(c, &buf, &len, &cap, deadline);
        if (got < 0)
            fuzz_violation("response body not complete within %d ms (%zu of %zu bytes)",
                           RESPONSE_DEADLINE_MS, len - start, want);
        if (got == 0) {
            if (to_eof)
                break;
            fuzz_violation("the connection ended after %zu of %zu body bytes", len - start, want);
        }
    }
    if (!to_eof && len - start > want)
        fuzz_violation("%zu bytes more than the Content-Length %zu", len - start - want, want);
    r->body_len = len - start;
    r->body = malloc(r->body_len + 1);
    if (r->body == NULL)
        fuzz_violation("out of memory");
    memcpy(r->body, buf + start, r->body_len);
    r->body[r->body_len] = '\0';
    free(buf);
    return true;
}

void est_client_response_free(struct est_client_response *r)
{
    free(r->head);
    free(r->body);
}

/* Sends request on c and reads the answer; a connection the server closed meanwhile (keep-alive
 * time-out) is replaced once. */
/* The start of request on one line for violation messages, the Authorization value (which may
 * hold the demo user's real password) left out. */
static void remember(struct est_client_connection *c, const char *request, size_t len)
{
    static const char hidden[] = "Authorization: (hidden)";
    size_t n = 0;
    for (size_t i = 0; i < len && n < sizeof c->last - sizeof hidden - 1;) {
        if ((i == 0 || request[i - 1] == '\n') && len - i > 14 &&
            strncasecmp(request + i, "Authorization:", 14) == 0) {
            memcpy(c->last + n, hidden, sizeof hidden - 1);
            n += sizeof hidden - 1;
            while (i < len && request[i] != '\r')
                i++;
            continue;
        }
        char ch = request[i++];
        c->last[n++] = ch == '\r' ? '|' : ch == '\n' ? ' ' : ch;
    }
    c->last[n] = '\0';
}

void est_client_exchange(struct est_client_connection *c, const char *request, size_t len,
                         bool head_request, struct est_client_response *r)
{
    check_idle(c);
    remember(c, request, len);
    for (int attempt = 0;; attempt++) {
        bool fresh = c->ssl == NULL;
        if (fresh)
            connect_to_server(c);
        if (send_all(c, request, len) && read_response(c, head_request, r))
            break;
        est_client_disconnect(c);
        if (fresh || attempt > 0)
            fuzz_violation("no response at all from the server on a %s connection",
                           fresh ? "new" : "renewed");
    }
    if (r->close)
        est_client_disconnect(c);
}
