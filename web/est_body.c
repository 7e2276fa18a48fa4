/* Reading a POST body within the server's max_body. A declared Content-Length over the limit
 * is refused before a byte of the body is read (and the connection closed, so a client that
 * waits for "100 Continue" gets its answer at once); a chunked body is read until it passes
 * the limit. CivetWeb's mg_read de-chunks, and times out after request_timeout_ms. */
#include "est_response.h"

#include <stdlib.h>
#include <strings.h>

/* RFC 9110 §10.1.1: the only expectation is 100-continue; anything else is 417. */
static bool handle_expect(struct est_request *req)
{
    const char *expect = mg_get_header(req->conn, "Expect");
    if (expect == NULL)
        return true;
    if (strcasecmp(expect, "100-continue") != 0) {
        est_respond_error(req, 417, NULL, "unsupported expectation");
        return false;
    }
    if (est_send_continue(req) != ESTCA_OK) {
        req->body = EST_BODY_BROKEN;
        est_respond_error(req, 400, NULL, "cannot send 100 Continue");
        return false;
    }
    return true;
}

static bool read_known_length(struct est_request *req, size_t length, char *buf)
{
    size_t got = 0;
    while (got < length) {
        int n = mg_read(req->conn, buf + got, length - got);
        if (n <= 0) {
            req->body = EST_BODY_BROKEN;
            est_respond_error(req, 400, NULL, "request body ended after %zu of %zu bytes", got,
                              length);
            return false;
        }
        got += (size_t)n;
    }
    return true;
}

/* A chunked body starts in a small buffer that grows by doubling. */
static size_t chunked_start_cap(size_t max)
{
    return max < 4096 ? max + 1 : 4096;
}

/* Reads a chunked body into *buf (grown as needed, up to max + 1 bytes to notice excess). */
static bool read_chunked(struct est_request *req, size_t max, char **buf, size_t *len)
{
    size_t cap = chunked_start_cap(max);
    size_t got = 0;
    for (;;) {
        if (got == cap) {
            if (cap > max)
                break;
            size_t next = cap * 2 > max + 1 ? max + 1 : cap * 2;
            char *grown = realloc(*buf, next + 1);
            if (grown == NULL) {
                req->body = EST_BODY_BROKEN;
                est_respond_error(req, 500, NULL, "out of memory");
                return false;
            }
            *buf = grown;
            cap = next;
        }
        int n = mg_read(req->conn, *buf + got, cap - got);
        if (n == 0)
            break;
        if (n < 0) {
            req->body = EST_BODY_BROKEN;
            est_respond_error(req, 400, NULL, "malformed or incomplete chunked body");
            return false;
        }
        got += (size_t)n;
    }
    if (got > max) {
        req->body = EST_BODY_EXCESS;
        est_respond_error(req, 413, NULL, "request body larger than %zu bytes", max);
        return false;
    }
    *len = got;
    return true;
}

bool est_read_body(struct est_request *req, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    size_t max = req->server->max_body;
    bool chunked = est_request_is_chunked(req);
    long long declared = req->info->content_length;
    if (!chunked && declared > 0 && (unsigned long long)declared > max) {
        est_respond_error(req, 413, NULL, "request body larger than %zu bytes", max);
        return false;
    }
    if (!chunked && declared <= 0) {
        req->body = EST_BODY_READ;
        est_respond_error(req, 400, NULL, "empty request body");
        return false;
    }
    if (!handle_expect(req))
        return false;
    size_t length = chunked ? 0 : (size_t)declared;
    char *buf = malloc((chunked ? chunked_start_cap(max) : length) + 1);
    if (buf == NULL) {
        est_respond_error(req, 500, NULL, "out of memory");
        return false;
    }
    bool ok = chunked ? read_chunked(req, max, &buf, &length) : read_known_length(req, length, buf);
    if (!ok) {
        free(buf);
        return false;
    }
    req->body = EST_BODY_READ;
    buf[length] = '\0';
    if (length == 0) {
        free(buf);
        est_respond_error(req, 400, NULL, "empty request body");
        return false;
    }
    *out = buf;
    *out_len = length;
    return true;
}
