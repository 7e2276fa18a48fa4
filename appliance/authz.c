/* Authorization policies (authz.h): parsed once from the [policy:NAME] sections, then read by
 * many workers at once without a lock. The decision looks only at the CSR's names; the key,
 * the profile and the label's own rules are issuance's. */
#include "authz.h"

#include "core_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <fnmatch.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUTHZ_TEXT_MAX 1024 /* a subject, an identity, a SAN entry, an expanded pattern */

struct authz_policy {
    char *name;
    char **identities;
    size_t n_identities;
    char **labels; /* n_labels 0: every label */
    size_t n_labels;
    char **subjects; /* n_subjects 0: any subject */
    size_t n_subjects;
    char **sans; /* n_sans 0: any subjectAltName */
    size_t n_sans;
    long max_certificates; /* 0: no limit */
};

struct authz {
    struct authz_policy *policies;
    size_t n_policies;
};

/* ---- lists and patterns ---- */

void authz_list_free(char **items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
}

static bool is_separator(const char *p, bool any_comma)
{
    return *p == ',' && (any_comma || p[1] == ' ' || p[1] == '\t');
}

int authz_split_list(const char *list, bool any_comma, char ***items, size_t *n, estca_reason *why)
{
    *items = NULL;
    *n = 0;
    char **out = NULL;
    size_t count = 0;
    const char *p = list;
    for (;;) {
        const char *end = p;
        while (*end != '\0' && !is_separator(end, any_comma))
            end++;
        const char *first = p, *last = end;
        while (first < last && isspace((unsigned char)*first))
            first++;
        while (last > first && isspace((unsigned char)last[-1]))
            last--;
        if (first == last) {
            authz_list_free(out, count);
            return estca_fail(why, ESTCA_E_CONFIG, "empty item in the list '%.200s'", list);
        }
        char **bigger = realloc(out, (count + 1) * sizeof *out);
        char *item = bigger != NULL ? strndup(first, (size_t)(last - first)) : NULL;
        if (bigger != NULL)
            out = bigger;
        if (item == NULL) {
            authz_list_free(out, count);
            return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
        }
        out[count++] = item;
        if (*end == '\0')
            break;
        p = end + 1;
    }
    *items = out;
    *n = count;
    return ESTCA_OK;
}

/* Appends value to out with fnmatch's special characters escaped. */
static bool append_escaped(char *out, size_t size, size_t *used, const char *value)
{
    for (const char *v = value; *v != '\0'; v++) {
        bool special = strchr("*?[]\\", *v) != NULL;
        if (*used + (special ? 2 : 1) >= size)
            return false;
        if (special)
            out[(*used)++] = '\\';
        out[(*used)++] = *v;
    }
    return true;
}

bool authz_expand(const char *pattern, const struct authz_vars *vars, char *out, size_t size)
{
    size_t used = 0;
    if (size == 0)
        return false;
    for (const char *p = pattern; *p != '\0';) {
        if (p[0] == '$' && p[1] == '{') {
            const char *close = strchr(p, '}');
            if (close == NULL)
                return false;
            size_t len = (size_t)(close - p - 2);
            const char *value = NULL;
            if (len == 4 && strncmp(p + 2, "user", 4) == 0)
                value = vars != NULL ? vars->user : NULL;
            else if (len == 2 && strncmp(p + 2, "cn", 2) == 0)
                value = vars != NULL ? vars->cn : NULL;
            /* An unknown variable, or one without a value, must never match "anything". */
            if (value == NULL || value[0] == '\0' || !append_escaped(out, size, &used, value))
                return false;
            p = close + 1;
            continue;
        }
        if (used + 1 >= size)
            return false;
        out[used++] = *p++;
    }
    out[used] = '\0';
    return true;
}

bool authz_pattern_match(const char *pattern, const struct authz_vars *vars, const char *value,
                         bool casefold)
{
    char expanded[AUTHZ_TEXT_MAX];
    if (pattern == NULL || value == NULL || !authz_expand(pattern, vars, expanded, sizeof expanded))
        return false;
    return fnmatch(expanded, value, casefold ? FNM_CASEFOLD : 0) == 0;
}

static bool any_match(char *const *patterns, size_t n, const struct authz_vars *vars,
                      const char *value, bool casefold)
{
    for (size_t i = 0; i < n; i++) {
        if (authz_pattern_match(patterns[i], vars, value, casefold))
            return true;
    }
    return false;
}

/* ---- names as text ---- */

static bool name_rfc2253(const X509_NAME *name, char *out, size_t size)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long len = -1;
    if (bio != NULL && X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0)
        len = BIO_get_mem_data(bio, &data);
    bool ok =
        len >= 0 && (size_t)len < size && (len == 0 || memchr(data, '\0', (size_t)len) == NULL);
    if (ok) {
        memcpy(out, data, (size_t)len);
        out[len] = '\0';
    }
    BIO_free(bio);
    ERR_clear_error();
    return ok;
}

int authz_certificate_identity(const char *prefix, X509 *certificate, char *out, size_t size,
                               estca_reason *why)
{
    char subject[AUTHZ_TEXT_MAX];
    if (!name_rfc2253(X509_get_subject_name(certificate), subject, sizeof subject) ||
        strlen(prefix) + strlen(subject) >= size)
        return estca_fail(why, ESTCA_E_FORBIDDEN,
                          "the client certificate's subject is too long to be an identity");
    snprintf(out, size, "%s%s", prefix, subject);
    return ESTCA_OK;
}

static bool ia5_text(const char *type, const ASN1_IA5STRING *s, char *out, size_t size)
{
    int len = ASN1_STRING_length(s);
    const unsigned char *data = ASN1_STRING_get0_data(s);
    if (len < 0 || memchr(data, '\0', (size_t)len) != NULL)
        return false;
    int n = snprintf(out, size, "%s:%.*s", type, len, (const char *)data);
    return n >= 0 && (size_t)n < size;
}

bool authz_general_name_text(const GENERAL_NAME *name, char *out, size_t size)
{
    switch (name->type) {
    case GEN_DNS:
        return ia5_text("DNS", name->d.dNSName, out, size);
    case GEN_EMAIL:
        return ia5_text("email", name->d.rfc822Name, out, size);
    case GEN_URI:
        return ia5_text("URI", name->d.uniformResourceIdentifier, out, size);
    case GEN_IPADD: {
        char address[INET6_ADDRSTRLEN];
        int len = ASN1_STRING_length(name->d.iPAddress);
        const unsigned char *data = ASN1_STRING_get0_data(name->d.iPAddress);
        int family = len == 4 ? AF_INET : len == 16 ? AF_INET6 : AF_UNSPEC;
        if (family == AF_UNSPEC || inet_ntop(family, data, address, sizeof address) == NULL)
            return false;
        int n = snprintf(out, size, "IP:%s", address);
        return n >= 0 && (size_t)n < size;
    }
    default: {
        int n = snprintf(out, size, "other:%d", name->type);
        return n >= 0 && (size_t)n < size;
    }
    }
}

/* ---- building ---- */

static void policy_clear(struct authz_policy *policy)
{
    free(policy->name);
    authz_list_free(policy->identities, policy->n_identities);
    authz_list_free(policy->labels, policy->n_labels);
    authz_list_free(policy->subjects, policy->n_subjects);
    authz_list_free(policy->sans, policy->n_sans);
}

void authz_free(struct authz *authz)
{
    if (authz == NULL)
        return;
    for (size_t i = 0; i < authz->n_policies; i++)
        policy_clear(&authz->policies[i]);
    free(authz->policies);
    free(authz);
}

static int split_optional(const char *list, bool any_comma, char ***items, size_t *n,
                          estca_reason *why)
{
    if (list == NULL)
        return ESTCA_OK;
    return authz_split_list(list, any_comma, items, n, why);
}

static int policy_build(const struct estca_config *config, const struct config_policy *source,
                        struct authz_policy *policy, estca_reason *why)
{
    estca_reason list_why = {{0}};
    if ((policy->name = strdup(source->name)) == NULL)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    policy->max_certificates = source->max_certificates > 0 ? source->max_certificates : 0;
    /* RFC 2253 names hold commas: identities and subjects are split at ", " only. */
    int rc = split_optional(source->identities, false, &policy->identities, &policy->n_identities,
                            &list_why);
    if (rc == ESTCA_OK)
        rc = split_optional(source->labels, true, &policy->labels, &policy->n_labels, &list_why);
    if (rc == ESTCA_OK)
        rc = split_optional(source->subject, false, &policy->subjects, &policy->n_subjects,
                            &list_why);
    if (rc == ESTCA_OK)
        rc = split_optional(source->san, true, &policy->sans, &policy->n_sans, &list_why);
    if (rc != ESTCA_OK)
        return estca_fail(why, rc, "%s: [policy:%s]: %.300s", config->path, source->name,
                          list_why.text);
    if (policy->n_identities == 0)
        return estca_fail(why, ESTCA_E_CONFIG, "%s: [policy:%s] needs 'identities'", config->path,
                          source->name);
    for (size_t i = 0; i < policy->n_labels; i++) {
        if (config_find_label(config, policy->labels[i]) == NULL)
            return estca_fail(why, ESTCA_E_CONFIG, "%s: [policy:%s] labels: no section [label:%s]",
                              config->path, source->name, policy->labels[i]);
    }
    return ESTCA_OK;
}

int authz_new(const struct estca_config *config, struct authz **out, estca_reason *why)
{
    *out = NULL;
    struct authz *authz = calloc(1, sizeof *authz);
    if (authz == NULL)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    if (config->n_policies > 0 &&
        (authz->policies = calloc(config->n_policies, sizeof *authz->policies)) == NULL) {
        free(authz);
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < config->n_policies; i++) {
        authz->n_policies++; /* counted first: authz_free clears a half-built one too */
        int rc = policy_build(config, &config->policies[i], &authz->policies[i], why);
        if (rc != ESTCA_OK) {
            authz_free(authz);
            return rc;
        }
    }
    *out = authz;
    return ESTCA_OK;
}

/* ---- deciding ---- */

/* The request's names as policies see them. */
struct request_names {
    char subject[AUTHZ_TEXT_MAX]; /* RFC 2253 */
    GENERAL_NAMES *san;           /* NULL: none requested */
};

static bool certificate_cn(X509 *certificate, char *out, size_t size)
{
    X509_NAME *name = X509_get_subject_name(certificate);
    int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (index < 0)
        return false;
    unsigned char *utf8 = NULL;
    int len =
        ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index)));
    bool ok = len > 0 && (size_t)len < size && memchr(utf8, '\0', (size_t)len) == NULL;
    if (ok) {
        memcpy(out, utf8, (size_t)len);
        out[len] = '\0';
    }
    OPENSSL_free(utf8);
    ERR_clear_error();
    return ok;
}

static bool has_prefix(const char *s, const char *prefix)
{
    return s != NULL && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* RFC 7030 §3.7 and issue 5: a device that authenticated with its own certificate asks only
 * for its own subject and for subjectAltName entries its certificate already has. */
static int check_own_names(X509 *certificate, X509_REQ *csr, const GENERAL_NAMES *requested,
                           estca_reason *why)
{
    if (X509_NAME_cmp(X509_REQ_get_subject_name(csr), X509_get_subject_name(certificate)) != 0)
        return estca_fail(why, ESTCA_E_FORBIDDEN,
                          "a device authenticated by its certificate may only request its own "
                          "subject");
    GENERAL_NAMES *certified = X509_get_ext_d2i(certificate, NID_subject_alt_name, NULL, NULL);
    int rc = ESTCA_OK;
    for (int i = 0; rc == ESTCA_OK && i < sk_GENERAL_NAME_num(requested); i++) {
        GENERAL_NAME *want = sk_GENERAL_NAME_value(requested, i);
        bool found = false;
        for (int j = 0; !found && j < sk_GENERAL_NAME_num(certified); j++)
            found = GENERAL_NAME_cmp(want, sk_GENERAL_NAME_value(certified, j)) == 0;
        if (!found)
            rc = estca_fail(why, ESTCA_E_FORBIDDEN,
                            "a device authenticated by its certificate may only request "
                            "subjectAltName entries of that certificate");
    }
    GENERAL_NAMES_free(certified);
    ERR_clear_error();
    return rc;
}

static const struct authz_policy *find_policy(const struct authz *authz, const char *identity,
                                              const struct authz_vars *vars)
{
    for (size_t i = 0; i < authz->n_policies; i++) {
        const struct authz_policy *policy = &authz->policies[i];
        if (any_match(policy->identities, policy->n_identities, vars, identity, false))
            return policy;
    }
    return NULL;
}

static bool label_listed(const struct authz_policy *policy, const char *label)
{
    if (policy->n_labels == 0)
        return true;
    for (size_t i = 0; i < policy->n_labels; i++) {
        if (strcmp(policy->labels[i], label) == 0)
            return true;
    }
    return false;
}

static int check_sans(const struct authz_policy *policy, const struct authz_vars *vars,
                      const GENERAL_NAMES *san, estca_reason *why)
{
    if (policy->n_sans == 0)
        return ESTCA_OK;
    for (int i = 0; i < sk_GENERAL_NAME_num(san); i++) {
        char text[AUTHZ_TEXT_MAX];
        const GENERAL_NAME *entry = sk_GENERAL_NAME_value(san, i);
        if (!authz_general_name_text(entry, text, sizeof text))
            return estca_fail(why, ESTCA_E_FORBIDDEN,
                              "policy %s: a subjectAltName entry cannot be read", policy->name);
        /* DNS names and e-mail domains compare without case (RFC 4343, RFC 5321). */
        bool casefold = entry->type == GEN_DNS || entry->type == GEN_EMAIL;
        if (!any_match(policy->sans, policy->n_sans, vars, text, casefold))
            return estca_fail(why, ESTCA_E_FORBIDDEN,
                              "policy %s does not allow the subjectAltName %.200s", policy->name,
                              text);
    }
    return ESTCA_OK;
}

static int check_count(struct ca_core *core, const struct authz_policy *policy,
                       const char *identity, estca_reason *why)
{
    if (policy->max_certificates == 0)
        return ESTCA_OK;
    long count = 0;
    int rc = ledger_count_valid_for(core->ledger, identity, &count, why);
    if (rc != ESTCA_OK)
        return rc;
    if (count >= policy->max_certificates)
        return estca_fail(why, ESTCA_E_FORBIDDEN,
                          "policy %s allows %ld valid certificates for %.200s, which has %ld",
                          policy->name, policy->max_certificates, identity, count);
    return ESTCA_OK;
}

/* The policy's verdict on names; *policy_name the policy that decided ("-": none). */
static int judge(struct ca_core *core, const struct core_label *label,
                 const struct request_names *names, const char *identity,
                 const struct authz_vars *vars, enum authz_request kind,
                 const struct authz_policy **decided_by, estca_reason *why)
{
    const struct authz_policy *policy = find_policy(core->authz, identity, vars);
    if (policy == NULL)
        return estca_fail(why, ESTCA_E_FORBIDDEN, "no authorization policy for %.300s", identity);
    *decided_by = policy;
    if (!label_listed(policy, label->name))
        return estca_fail(why, ESTCA_E_FORBIDDEN, "policy %s does not allow label %s", policy->name,
                          label->name);
    if (policy->n_subjects > 0 &&
        !any_match(policy->subjects, policy->n_subjects, vars, names->subject, false))
        return estca_fail(why, ESTCA_E_FORBIDDEN, "policy %s does not allow the subject %.300s",
                          policy->name, names->subject);
    int rc = check_sans(policy, vars, names->san, why);
    if (rc == ESTCA_OK && kind == AUTHZ_NEW_CERTIFICATE)
        rc = check_count(core, policy, identity, why);
    if (rc == ESTCA_OK)
        estca_fail(why, ESTCA_OK, "allowed by policy %s", policy->name);
    return rc;
}

int authz_decide(struct ca_core *core, const struct core_label *label, X509_REQ *csr,
                 const struct core_identity *who, const char *operation, enum authz_request kind,
                 long *max_certificates, estca_reason *why)
{
    estca_reason ignored;
    if (why == NULL)
        why = &ignored;
    if (max_certificates != NULL)
        *max_certificates = 0;
    /* Bad arguments are issuance's to report; one-time codes are their own policy. */
    if (core == NULL || label == NULL || csr == NULL || who == NULL || who->name == NULL ||
        has_prefix(who->name, "otp:"))
        return ESTCA_OK;
    struct request_names names = {.san = NULL};
    int rc = core_csr_subject_alt_name(csr, &names.san, why);
    if (rc != ESTCA_OK)
        return rc;
    bool by_own_certificate = who->certificate != NULL && has_prefix(who->name, "cert:");
    if (by_own_certificate)
        rc = check_own_names(who->certificate, csr, names.san, why);
    if (rc != ESTCA_OK || core->authz == NULL || core->authz->n_policies == 0) {
        if (rc != ESTCA_OK)
            core_audit_authz(core, operation, label, who->name, "-", rc, why->text);
        GENERAL_NAMES_free(names.san);
        return rc;
    }
    char cn[AUTHZ_TEXT_MAX];
    struct authz_vars vars = {
        .user = has_prefix(who->name, "user:") ? who->name + strlen("user:") : NULL,
        .cn =
            who->certificate != NULL && certificate_cn(who->certificate, cn, sizeof cn) ? cn : NULL,
    };
    const struct authz_policy *policy = NULL;
    if (!name_rfc2253(X509_REQ_get_subject_name(csr), names.subject, sizeof names.subject))
        rc = estca_fail(why, ESTCA_E_FORBIDDEN, "the CSR's subject cannot be read as text");
    if (rc == ESTCA_OK)
        rc = judge(core, label, &names, who->name, &vars, kind, &policy, why);
    GENERAL_NAMES_free(names.san);
    core_audit_authz(core, operation, label, who->name, policy != NULL ? policy->name : "-", rc,
                     why->text);
    if (rc == ESTCA_OK && kind == AUTHZ_NEW_CERTIFICATE && max_certificates != NULL)
        *max_certificates = policy->max_certificates;
    return rc;
}
