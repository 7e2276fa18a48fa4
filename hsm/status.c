#include "status.h"

#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

__attribute__((format(printf, 2, 0))) static void format_reason(estca_reason *why, const char *fmt,
                                                                va_list ap)
{
    vsnprintf(why->text, sizeof why->text, fmt, ap);
}

int estca_fail(estca_reason *why, int status, const char *fmt, ...)
{
    if (why != NULL) {
        va_list ap;
        va_start(ap, fmt);
        format_reason(why, fmt, ap);
        va_end(ap);
    }
    return status;
}

/* Appends every queued OpenSSL error's reason; the innermost one usually says most. */
static void append_openssl_errors(estca_reason *why)
{
    unsigned long code;
    const char *data = NULL;
    int flags = 0;
    size_t used = strlen(why->text);
    const char *sep = ": ";
    while ((code = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        char one[256];
        ERR_error_string_n(code, one, sizeof one);
        const char *extra = (flags & ERR_TXT_STRING) && data != NULL ? data : "";
        int n = snprintf(why->text + used, sizeof why->text - used, "%s%s%s%s", sep, one,
                         *extra ? " " : "", extra);
        if (n < 0 || (size_t)n >= sizeof why->text - used) {
            used = sizeof why->text - 1;
            continue; /* keep draining the queue */
        }
        used += (size_t)n;
        sep = "; ";
    }
}

int estca_fail_openssl(estca_reason *why, int status, const char *fmt, ...)
{
    if (why == NULL) {
        ERR_clear_error();
        return status;
    }
    va_list ap;
    va_start(ap, fmt);
    format_reason(why, fmt, ap);
    va_end(ap);
    append_openssl_errors(why);
    return status;
}

const char *estca_status_name(int status)
{
    switch (status) {
    case ESTCA_OK:
        return "ok";
    case ESTCA_E_INVALID:
        return "invalid";
    case ESTCA_E_AUTH:
        return "unauthenticated";
    case ESTCA_E_FORBIDDEN:
        return "forbidden";
    case ESTCA_E_NOT_FOUND:
        return "not-found";
    case ESTCA_E_UNAVAILABLE:
        return "unavailable";
    case ESTCA_E_IO:
        return "io";
    case ESTCA_E_CRYPTO:
        return "crypto";
    case ESTCA_E_NOMEM:
        return "nomem";
    case ESTCA_E_CONFIG:
        return "config";
    case ESTCA_E_TOKEN:
        return "token";
    case ESTCA_E_LEDGER:
        return "ledger";
    case ESTCA_E_POLICY:
        return "policy";
    case ESTCA_E_TOO_LARGE:
        return "too-large";
    case ESTCA_E_PENDING:
        return "pending";
    default:
        return "unknown";
    }
}
