/* libFuzzer harness for web/est_route.c: the request path (after CivetWeb's percent-decoding)
 * and the Content-Type header value, both NUL-terminated strings from the client.
 *
 * Input layout: the bytes up to the first NUL are the path; the bytes after it (if any) are
 * a Content-Type value, matched against each media type EST accepts.
 *
 * Properties: a route found has a known op; its label (if any) obeys the header's grammar,
 * and rebuilding the path from the route gives back exactly the input path. */
#include "est_route.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const media_types[] = {
    "application/pkcs10", "application/pkcs7-mime", "application/csrattrs",
    "application/pkcs8",  "multipart/mixed",
};

static void check_label(const struct est_route *r)
{
    size_t len = strnlen(r->label, sizeof r->label);
    if (len == sizeof r->label)
        abort(); /* unterminated */
    if (!r->has_label) {
        if (len != 0)
            abort();
        return;
    }
    if (len == 0 || len > EST_LABEL_MAX || strcmp(r->label, ".") == 0 ||
        strcmp(r->label, "..") == 0)
        abort();
    if (strspn(r->label, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
        len)
        abort();
    for (int op = EST_OP_CACERTS; op <= EST_OP_FULLCMC; op++) {
        if (strcmp(r->label, est_op_name((enum est_op)op)) == 0)
            abort();
    }
}

static void check_route(const char *path)
{
    struct est_route route;
    memset(&route, 0x5a, sizeof route);
    if (est_route_parse(path, &route) != 0)
        return;
    if ((int)route.op < EST_OP_CACERTS || (int)route.op > EST_OP_FULLCMC)
        abort();
    const char *method = est_op_method(route.op);
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
        abort();
    check_label(&route);
    char rebuilt[sizeof EST_PATH_PREFIX + EST_LABEL_MAX + 1 + 32];
    int n = snprintf(rebuilt, sizeof rebuilt, "%s%s%s%s", EST_PATH_PREFIX, route.label,
                     route.has_label ? "/" : "", est_op_name(route.op));
    if (n < 0 || (size_t)n >= sizeof rebuilt || strcmp(rebuilt, path) != 0)
        abort();
}

static void check_media_types(const char *header)
{
    for (size_t i = 0; i < sizeof media_types / sizeof media_types[0]; i++) {
        if (!est_media_type_is(header, media_types[i]))
            continue;
        /* A match starts (after blanks) with the type, case-insensitively. */
        size_t skip = strspn(header, " \t");
        if (strncasecmp(header + skip, media_types[i], strlen(media_types[i])) != 0)
            abort();
    }
    /* The header matched against itself as a type, as a caller with odd input could. */
    (void)est_media_type_is(header, header);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exact-size heap copies so ASan catches reads past either terminator. */
    const uint8_t *nul = memchr(data, '\0', size);
    size_t path_len = nul != NULL ? (size_t)(nul - data) : size;
    char *path = malloc(path_len + 1);
    if (path == NULL)
        return 0;
    memcpy(path, data, path_len);
    path[path_len] = '\0';
    check_route(path);
    check_media_types(path);
    if (nul != NULL) {
        size_t header_len = strnlen((const char *)nul + 1, size - path_len - 1);
        char *header = malloc(header_len + 1);
        if (header != NULL) {
            memcpy(header, nul + 1, header_len);
            header[header_len] = '\0';
            check_media_types(header);
            free(header);
        }
    }
    free(path);
    return 0;
}
