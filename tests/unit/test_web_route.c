/* The pure pieces of the EST front's request handling: path routing (RFC 7030 §3.2.2),
 * media types, the keep-alive judgement and the one-buffer response format. */
#include "est_response.h"
#include "est_route.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static void expect_route(const char *path, enum est_op op, const char *label)
{
    struct est_route route;
    cr_assert_eq(est_route_parse(path, &route), ESTCA_OK, "%s was refused", path);
    cr_assert_eq(route.op, op, "%s: op %d", path, (int)route.op);
    cr_assert_eq(route.has_label, label != NULL, "%s", path);
    cr_assert_str_eq(route.label, label != NULL ? label : "", "%s", path);
}

static void expect_not_found(const char *path)
{
    struct est_route route;
    cr_assert_eq(est_route_parse(path, &route), ESTCA_E_NOT_FOUND, "%s was routed", path);
}

Test(route, every_op_without_label)
{
    expect_route("/.well-known/est/cacerts", EST_OP_CACERTS, NULL);
    expect_route("/.well-known/est/simpleenroll", EST_OP_SIMPLEENROLL, NULL);
    expect_route("/.well-known/est/simplereenroll", EST_OP_SIMPLEREENROLL, NULL);
    expect_route("/.well-known/est/serverkeygen", EST_OP_SERVERKEYGEN, NULL);
    expect_route("/.well-known/est/csrattrs", EST_OP_CSRATTRS, NULL);
    expect_route("/.well-known/est/fullcmc", EST_OP_FULLCMC, NULL);
}

Test(route, with_label)
{
    expect_route("/.well-known/est/arbitraryLabel1/cacerts", EST_OP_CACERTS, "arbitraryLabel1");
    expect_route("/.well-known/est/iot-devices/simpleenroll", EST_OP_SIMPLEENROLL, "iot-devices");
    expect_route("/.well-known/est/a.b_c-9/csrattrs", EST_OP_CSRATTRS, "a.b_c-9");
    char path[200];
    char label[EST_LABEL_MAX + 1];
    memset(label, 'x', EST_LABEL_MAX);
    label[EST_LABEL_MAX] = '\0';
    snprintf(path, sizeof path, "/.well-known/est/%s/cacerts", label);
    expect_route(path, EST_OP_CACERTS, label);
}

Test(route, unknown_paths)
{
    expect_not_found(NULL);
    expect_not_found("");
    expect_not_found("/");
    expect_not_found("/index.html");
    expect_not_found("/.well-known/est");
    expect_not_found("/.well-known/est/");
    expect_not_found("/.well-known/est/nosuchop");
    expect_not_found("/.well-known/est/pal"); /* RFC 8295 extensions are not served */
    expect_not_found("/.well-known/est/cacerts/");
    expect_not_found("/.well-known/est/CACERTS"); /* op names are exact */
    expect_not_found("/.well-known/est/cacertsx");
    expect_not_found("/.well-known/est/cacert");
    expect_not_found("/.well-known/est//cacerts");
    expect_not_found("/.well-known/est/a/b/cacerts");
    expect_not_found("/.well-known/est/label/nosuchop");
    expect_not_found("/.well-known/est/label/cacerts/extra");
    expect_not_found("/.well-known/ESTX/cacerts");
    expect_not_found("/x/.well-known/est/cacerts");
}

Test(route, bad_labels)
{
    expect_not_found("/.well-known/est/cacerts/cacerts"); /* a label may not be an op name */
    expect_not_found("/.well-known/est/simpleenroll/cacerts");
    expect_not_found("/.well-known/est/./cacerts");
    expect_not_found("/.well-known/est/../cacerts");
    expect_not_found("/.well-known/est/a b/cacerts");
    expect_not_found("/.well-known/est/a%20b/cacerts");
    expect_not_found("/.well-known/est/l\xc3\xa4"
                     "bel/cacerts");
    char path[200];
    char label[EST_LABEL_MAX + 2];
    memset(label, 'x', EST_LABEL_MAX + 1);
    label[EST_LABEL_MAX + 1] = '\0';
    snprintf(path, sizeof path, "/.well-known/est/%s/cacerts", label);
    expect_not_found(path);
}

Test(route, methods_and_names)
{
    cr_assert_str_eq(est_op_method(EST_OP_CACERTS), "GET");
    cr_assert_str_eq(est_op_method(EST_OP_CSRATTRS), "GET");
    cr_assert_str_eq(est_op_method(EST_OP_SIMPLEENROLL), "POST");
    cr_assert_str_eq(est_op_method(EST_OP_SIMPLEREENROLL), "POST");
    cr_assert_str_eq(est_op_method(EST_OP_SERVERKEYGEN), "POST");
    cr_assert_str_eq(est_op_method(EST_OP_FULLCMC), "POST");
    cr_assert_str_eq(est_op_name(EST_OP_SIMPLEREENROLL), "simplereenroll");
}

Test(route, head_wherever_get)
{
    cr_assert(est_op_accepts(EST_OP_CACERTS, "GET"));
    cr_assert(est_op_accepts(EST_OP_CACERTS, "HEAD"));
    cr_assert(est_op_accepts(EST_OP_CSRATTRS, "HEAD"));
    cr_assert_not(est_op_accepts(EST_OP_CACERTS, "POST"));
    cr_assert_not(est_op_accepts(EST_OP_CACERTS, "head")); /* methods are case-sensitive */
    cr_assert(est_op_accepts(EST_OP_SIMPLEENROLL, "POST"));
    cr_assert_not(est_op_accepts(EST_OP_SIMPLEENROLL, "HEAD"));
    cr_assert_not(est_op_accepts(EST_OP_SERVERKEYGEN, "GET"));
    cr_assert_not(est_op_accepts(EST_OP_FULLCMC, NULL));
    cr_assert_str_eq(est_op_allow(EST_OP_CACERTS), "GET, HEAD");
    cr_assert_str_eq(est_op_allow(EST_OP_SIMPLEREENROLL), "POST");
}

Test(media_type, pkcs10)
{
    cr_assert(est_media_type_is("application/pkcs10", "application/pkcs10"));
    cr_assert(est_media_type_is("Application/PKCS10", "application/pkcs10"));
    cr_assert(est_media_type_is("application/pkcs10; charset=us-ascii", "application/pkcs10"));
    cr_assert(est_media_type_is("application/pkcs10 ;x=y", "application/pkcs10"));
    cr_assert(est_media_type_is(" application/pkcs10 ", "application/pkcs10"));
    cr_assert_not(est_media_type_is(NULL, "application/pkcs10"));
    cr_assert_not(est_media_type_is("", "application/pkcs10"));
    cr_assert_not(est_media_type_is("text/plain", "application/pkcs10"));
    cr_assert_not(est_media_type_is("application/pkcs10x", "application/pkcs10"));
    cr_assert_not(est_media_type_is("application/pkcs1", "application/pkcs10"));
    cr_assert_not(est_media_type_is("application/x-www-form-urlencoded", "application/pkcs10"));
}

Test(keep_alive, header_tokens)
{
    cr_assert(est_header_has_token("keep-alive", "keep-alive"));
    cr_assert(est_header_has_token("Keep-Alive", "keep-alive"));
    cr_assert(est_header_has_token("TE, keep-alive", "keep-alive"));
    cr_assert(est_header_has_token(" TE ,  Keep-Alive  ", "keep-alive"));
    cr_assert_not(est_header_has_token("close", "keep-alive"));
    cr_assert_not(est_header_has_token("keep-alivex", "keep-alive"));
    cr_assert_not(est_header_has_token("", "keep-alive"));
}

Test(keep_alive, client_wishes)
{
    cr_assert(est_client_wants_keep_alive("1.1", NULL));
    cr_assert_not(est_client_wants_keep_alive("1.0", NULL));
    cr_assert(est_client_wants_keep_alive("1.0", "keep-alive"));
    cr_assert_not(est_client_wants_keep_alive("1.1", "close"));
    /* As CivetWeb judges it: any Connection header without keep-alive means close. */
    cr_assert_not(est_client_wants_keep_alive("1.1", "TE"));
    cr_assert_not(est_client_wants_keep_alive(NULL, NULL));
}

Test(response, http_date)
{
    char date[40];
    est_http_date(784111777, date, sizeof date);
    cr_assert_str_eq(date, "Sun, 06 Nov 1994 08:49:37 GMT");
}

static char *format(const struct est_response *r, bool keep_alive, bool omit_body, size_t *len)
{
    char *out;
    cr_assert_eq(
        est_response_format(r, keep_alive, omit_body, "Sun, 06 Nov 1994 08:49:37 GMT", &out, len),
        ESTCA_OK);
    char *text = malloc(*len + 1);
    memcpy(text, out, *len);
    text[*len] = '\0';
    free(out);
    return text;
}

Test(response, success_is_one_buffer_headers_then_body)
{
    struct est_response r = {.status = 200,
                             .content_type = "application/pkcs7-mime; smime-type=certs-only",
                             .body = "MIIB",
                             .body_len = 4};
    size_t len;
    char *text = format(&r, true, false, &len);
    cr_assert_str_eq(text, "HTTP/1.1 200 OK\r\n"
                           "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                           "Content-Type: application/pkcs7-mime; smime-type=certs-only\r\n"
                           "Content-Length: 4\r\n"
                           "Cache-Control: no-store\r\n"
                           "Connection: keep-alive\r\n"
                           "\r\n"
                           "MIIB");
    free(text);
}

Test(response, error_with_extra_headers_and_close)
{
    struct est_response r = {.status = 401,
                             .content_type = "text/plain",
                             .extra_headers = "WWW-Authenticate: Basic realm=\"estca\"\r\n",
                             .body = "authentication required\n",
                             .body_len = 25};
    size_t len;
    char *text = format(&r, false, false, &len);
    cr_assert(strncmp(text, "HTTP/1.1 401 Unauthorized\r\n", 27) == 0, "%s", text);
    cr_assert(strstr(text, "\r\nConnection: close\r\n") != NULL);
    cr_assert(strstr(text, "\r\nWWW-Authenticate: Basic realm=\"estca\"\r\n\r\n") != NULL);
    cr_assert(strstr(text, "\r\nContent-Length: 25\r\n") != NULL);
    size_t body_at = (size_t)(strstr(text, "\r\n\r\n") - text) + 4;
    cr_assert_str_eq(text + body_at, "authentication required\n");
    free(text);
}

Test(response, no_content_has_no_length_or_type)
{
    struct est_response r = {
        .status = 204, .content_type = "text/plain", .body = "x", .body_len = 1};
    size_t len;
    char *text = format(&r, true, false, &len);
    cr_assert(strncmp(text, "HTTP/1.1 204 No Content\r\n", 25) == 0);
    cr_assert_null(strstr(text, "Content-Length"));
    cr_assert_null(strstr(text, "Content-Type"));
    cr_assert(len >= 4 && memcmp(text + len - 4, "\r\n\r\n", 4) == 0, "a body was sent");
    free(text);
}

Test(response, head_keeps_length_but_omits_body)
{
    struct est_response r = {.status = 405,
                             .content_type = "text/plain",
                             .extra_headers = "Allow: GET\r\n",
                             .body = "abc",
                             .body_len = 3};
    size_t len;
    char *text = format(&r, false, true, &len);
    cr_assert(strstr(text, "Content-Length: 3\r\n") != NULL);
    cr_assert(memcmp(text + len - 4, "\r\n\r\n", 4) == 0);
    free(text);
}

Test(response, reason_phrases)
{
    cr_assert_str_eq(est_status_reason(404), "Not Found");
    cr_assert_str_eq(est_status_reason(405), "Method Not Allowed");
    cr_assert_str_eq(est_status_reason(413), "Content Too Large");
    cr_assert_str_eq(est_status_reason(415), "Unsupported Media Type");
    cr_assert_str_eq(est_status_reason(501), "Not Implemented");
    cr_assert_str_eq(est_status_reason(503), "Service Unavailable");
}
