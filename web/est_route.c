#include "est_route.h"

#include <string.h>
#include <strings.h>

static const struct {
    const char *name;
    const char *method; /* RFC 7030 §4.1.2, §4.2, §4.3.1, §4.4.1, §4.5.1 */
} est_ops[] = {
    [EST_OP_CACERTS] = {"cacerts", "GET"},
    [EST_OP_SIMPLEENROLL] = {"simpleenroll", "POST"},
    [EST_OP_SIMPLEREENROLL] = {"simplereenroll", "POST"},
    [EST_OP_SERVERKEYGEN] = {"serverkeygen", "POST"},
    [EST_OP_CSRATTRS] = {"csrattrs", "GET"},
    [EST_OP_FULLCMC] = {"fullcmc", "POST"},
};

#define EST_N_OPS (sizeof est_ops / sizeof est_ops[0])

const char *est_op_name(enum est_op op)
{
    return (size_t)op < EST_N_OPS ? est_ops[op].name : "unknown";
}

const char *est_op_method(enum est_op op)
{
    return (size_t)op < EST_N_OPS ? est_ops[op].method : "GET";
}

bool est_op_accepts(enum est_op op, const char *method)
{
    if (method == NULL)
        return false;
    const char *own = est_op_method(op);
    return strcmp(method, own) == 0 || (strcmp(own, "GET") == 0 && strcmp(method, "HEAD") == 0);
}

const char *est_op_allow(enum est_op op)
{
    return strcmp(est_op_method(op), "GET") == 0 ? "GET, HEAD" : "POST";
}

/* Op names are exact path segments (§3.2.2): no prefix or case folding. */
static int find_op(const char *segment, size_t len, enum est_op *out)
{
    for (size_t i = 0; i < EST_N_OPS; i++) {
        if (strlen(est_ops[i].name) == len && memcmp(est_ops[i].name, segment, len) == 0) {
            *out = (enum est_op)i;
            return ESTCA_OK;
        }
    }
    return ESTCA_E_NOT_FOUND;
}

static int check_label(const char *label, size_t len)
{
    if (len == 0 || len > EST_LABEL_MAX)
        return ESTCA_E_NOT_FOUND;
    for (size_t i = 0; i < len; i++) {
        char c = label[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        if (!ok)
            return ESTCA_E_NOT_FOUND;
    }
    if ((len == 1 && label[0] == '.') || (len == 2 && memcmp(label, "..", 2) == 0))
        return ESTCA_E_NOT_FOUND;
    enum est_op ignored;
    /* §3.2.2: a label MUST NOT be the same as an operation path segment. */
    if (find_op(label, len, &ignored) == ESTCA_OK)
        return ESTCA_E_NOT_FOUND;
    return ESTCA_OK;
}

int est_route_parse(const char *path, struct est_route *out)
{
    memset(out, 0, sizeof *out);
    size_t prefix_len = strlen(EST_PATH_PREFIX);
    if (path == NULL || strncmp(path, EST_PATH_PREFIX, prefix_len) != 0)
        return ESTCA_E_NOT_FOUND;
    const char *rest = path + prefix_len;
    const char *slash = strchr(rest, '/');
    if (slash == NULL)
        return find_op(rest, strlen(rest), &out->op);

    const char *op = slash + 1;
    if (strchr(op, '/') != NULL)
        return ESTCA_E_NOT_FOUND;
    size_t label_len = (size_t)(slash - rest);
    if (check_label(rest, label_len) != ESTCA_OK || find_op(op, strlen(op), &out->op) != ESTCA_OK)
        return ESTCA_E_NOT_FOUND;
    memcpy(out->label, rest, label_len);
    out->label[label_len] = '\0';
    out->has_label = true;
    return ESTCA_OK;
}

bool est_media_type_is(const char *header, const char *type)
{
    if (header == NULL)
        return false;
    while (*header == ' ' || *header == '\t')
        header++;
    size_t len = strlen(type);
    if (strncasecmp(header, type, len) != 0)
        return false;
    const char *rest = header + len;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    return *rest == '\0' || *rest == ';';
}
