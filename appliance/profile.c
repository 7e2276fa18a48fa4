/* Label profiles: usage names from the configuration, and what a CSR's extension request may
 * contain (see profile.h). */
#include "profile.h"

#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* RFC 5280 §4.2.1.3, in bit order. */
static const char *const key_usage_names[] = {
    "digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment", "keyAgreement",
    "keyCertSign",      "cRLSign",        "encipherOnly",    "decipherOnly",
};

static const struct {
    const char *name;
    int nid;
} eku_names[] = {
    {"serverAuth", NID_server_auth},
    {"clientAuth", NID_client_auth},
    {"codeSigning", NID_code_sign},
    {"emailProtection", NID_email_protect},
    {"timeStamping", NID_time_stamp},
    {"OCSPSigning", NID_OCSP_sign},
    {"cmcRA", NID_cmcRA},
    {"ipsecIKE", NID_ipsec_IKE},
};

/* Calls each(word) for every comma-separated word of list (blanks around words ignored). */
static int for_each_word(const char *list, int (*each)(const char *word, void *arg), void *arg)
{
    char word[128];
    while (list != NULL && *list != '\0') {
        list += strspn(list, " \t,");
        size_t len = strcspn(list, ",");
        size_t trimmed = len;
        while (trimmed > 0 && (list[trimmed - 1] == ' ' || list[trimmed - 1] == '\t'))
            trimmed--;
        if (trimmed >= sizeof word)
            trimmed = sizeof word - 1;
        memcpy(word, list, trimmed);
        word[trimmed] = '\0';
        if (trimmed > 0) {
            int rc = each(word, arg);
            if (rc != ESTCA_OK)
                return rc;
        }
        list += len;
    }
    return ESTCA_OK;
}

struct key_usage_parse {
    unsigned bits;
    estca_reason *why;
};

static int add_key_usage(const char *word, void *arg)
{
    struct key_usage_parse *parse = arg;
    for (unsigned bit = 0; bit < sizeof key_usage_names / sizeof *key_usage_names; bit++) {
        if (strcmp(word, key_usage_names[bit]) == 0) {
            parse->bits |= 1u << bit;
            return ESTCA_OK;
        }
    }
    return estca_fail(parse->why, ESTCA_E_CONFIG, "key_usage: unknown usage '%s'", word);
}

int profile_parse_key_usage(const char *list, unsigned *bits, estca_reason *why)
{
    struct key_usage_parse parse = {.why = why};
    int rc = for_each_word(list, add_key_usage, &parse);
    /* An end entity must not certify or sign CRLs: that is what CA:FALSE says. */
    if (rc == ESTCA_OK && (parse.bits & ((1u << 5) | (1u << 6))))
        rc = estca_fail(why, ESTCA_E_CONFIG,
                        "key_usage: keyCertSign and cRLSign are for CAs, not end entities");
    *bits = rc == ESTCA_OK ? parse.bits : 0;
    return rc;
}

struct eku_parse {
    int *nids;
    size_t n;
    estca_reason *why;
};

static int add_eku(const char *word, void *arg)
{
    struct eku_parse *parse = arg;
    if (parse->n == PROFILE_MAX_EKU)
        return estca_fail(parse->why, ESTCA_E_CONFIG, "extended_key_usage: more than %d usages",
                          PROFILE_MAX_EKU);
    int nid = NID_undef;
    for (size_t i = 0; i < sizeof eku_names / sizeof *eku_names && nid == NID_undef; i++) {
        if (strcmp(word, eku_names[i].name) == 0)
            nid = eku_names[i].nid;
    }
    if (nid == NID_undef && strspn(word, "0123456789.") == strlen(word))
        nid = OBJ_txt2nid(word); /* a registered OID given in dotted form */
    if (nid == NID_undef)
        return estca_fail(parse->why, ESTCA_E_CONFIG, "extended_key_usage: unknown usage '%s'",
                          word);
    parse->nids[parse->n++] = nid;
    return ESTCA_OK;
}

int profile_parse_extended_key_usage(const char *list, int nids[PROFILE_MAX_EKU], size_t *n,
                                     estca_reason *why)
{
    struct eku_parse parse = {.nids = nids, .why = why};
    int rc = for_each_word(list, add_eku, &parse);
    *n = rc == ESTCA_OK ? parse.n : 0;
    return rc;
}

static int add_name_entry(X509_NAME *name, char *pair, estca_reason *why)
{
    char *eq = strchr(pair, '=');
    if (eq == NULL || eq == pair || eq[1] == '\0')
        return estca_fail(why, ESTCA_E_INVALID, "name component '%s' is not TYPE=value", pair);
    *eq = '\0';
    if (!X509_NAME_add_entry_by_txt(name, pair, MBSTRING_UTF8, (unsigned char *)eq + 1, -1, -1, 0))
        return estca_fail_openssl(why, ESTCA_E_INVALID, "unknown name attribute '%s'", pair);
    return ESTCA_OK;
}

int profile_parse_name(const char *text, X509_NAME **out, estca_reason *why)
{
    char *copy = strdup(text);
    X509_NAME *name = X509_NAME_new();
    if (copy == NULL || name == NULL) {
        free(copy);
        X509_NAME_free(name);
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    }
    const char *separators = text[0] == '/' ? "/" : ",";
    int rc = ESTCA_OK;
    char *save = NULL;
    for (char *pair = strtok_r(copy, separators, &save); pair && rc == ESTCA_OK;
         pair = strtok_r(NULL, separators, &save)) {
        while (*pair == ' ')
            pair++;
        rc = add_name_entry(name, pair, why);
    }
    free(copy);
    if (rc == ESTCA_OK && X509_NAME_entry_count(name) == 0)
        rc = estca_fail(why, ESTCA_E_INVALID, "empty subject name");
    if (rc != ESTCA_OK) {
        X509_NAME_free(name);
        return rc;
    }
    *out = name;
    return ESTCA_OK;
}

static int check_basic_constraints(X509_EXTENSION *extension, bool refuse_ca, estca_reason *why)
{
    BASIC_CONSTRAINTS *constraints = X509V3_EXT_d2i(extension);
    if (constraints == NULL)
        return estca_fail_openssl(why, ESTCA_E_POLICY,
                                  "the CSR's basicConstraints extension does not parse");
    bool ca = constraints->ca != 0;
    BASIC_CONSTRAINTS_free(constraints);
    if (ca && refuse_ca)
        return estca_fail(why, ESTCA_E_POLICY,
                          "the CSR asks for basicConstraints CA:TRUE; this label issues "
                          "end-entity certificates only");
    return ESTCA_OK;
}

int profile_check_csr_extensions(X509_REQ *csr, bool refuse_ca, estca_reason *why)
{
    STACK_OF(X509_EXTENSION) *extensions = X509_REQ_get_extensions(csr);
    int rc = ESTCA_OK;
    for (int i = 0; rc == ESTCA_OK && i < sk_X509_EXTENSION_num(extensions); i++) {
        X509_EXTENSION *extension = sk_X509_EXTENSION_value(extensions, i);
        int nid = OBJ_obj2nid(X509_EXTENSION_get_object(extension));
        if (nid == NID_basic_constraints) {
            rc = check_basic_constraints(extension, refuse_ca, why);
        } else if (X509_EXTENSION_get_critical(extension) && nid != NID_subject_alt_name &&
                   nid != NID_key_usage && nid != NID_ext_key_usage) {
            char oid[80];
            OBJ_obj2txt(oid, sizeof oid, X509_EXTENSION_get_object(extension), 1);
            rc = estca_fail(why, ESTCA_E_POLICY,
                            "the CSR asks for the critical extension %s, which this CA does not "
                            "issue",
                            oid);
        }
    }
    sk_X509_EXTENSION_pop_free(extensions, X509_EXTENSION_free);
    return rc;
}

/* "*.dev.example.com" matches one or more labels before ".dev.example.com"; anything else
 * matches itself. Case-insensitive (DNS). */
static bool dns_matches(const char *pattern, const char *name)
{
    if (strncmp(pattern, "*.", 2) != 0)
        return strcasecmp(pattern, name) == 0;
    size_t suffix = strlen(pattern) - 1, len = strlen(name);
    return len > suffix && strcasecmp(name + len - suffix, pattern + 1) == 0 && name[0] != '.';
}

struct dns_match {
    const char *name;
    bool found;
};

static int match_one(const char *pattern, void *arg)
{
    struct dns_match *match = arg;
    match->found = match->found || dns_matches(pattern, match->name);
    return ESTCA_OK;
}

int profile_check_names(const char *allowed_dns, const GENERAL_NAMES *san, estca_reason *why)
{
    if (allowed_dns == NULL)
        return ESTCA_OK;
    for (int i = 0; i < sk_GENERAL_NAME_num(san); i++) {
        const GENERAL_NAME *name = sk_GENERAL_NAME_value(san, i);
        if (name->type != GEN_DNS)
            return estca_fail(why, ESTCA_E_POLICY,
                              "this label allows only DNS names in subjectAltName");
        const ASN1_IA5STRING *dns = name->d.dNSName;
        char text[256];
        if (ASN1_STRING_length(dns) <= 0 || ASN1_STRING_length(dns) >= (int)sizeof text ||
            memchr(ASN1_STRING_get0_data(dns), '\0', (size_t)ASN1_STRING_length(dns)) != NULL)
            return estca_fail(why, ESTCA_E_POLICY, "a subjectAltName DNS name is malformed");
        snprintf(text, sizeof text, "%.*s", ASN1_STRING_length(dns),
                 (const char *)ASN1_STRING_get0_data(dns));
        struct dns_match match = {.name = text};
        for_each_word(allowed_dns, match_one, &match);
        if (!match.found)
            return estca_fail(why, ESTCA_E_POLICY, "DNS name %.255s is not allowed on this label",
                              text);
    }
    return ESTCA_OK;
}

int profile_apply_subject(const X509_NAME *requested, const X509_NAME *override, X509_NAME **out,
                          estca_reason *why)
{
    X509_NAME *subject = X509_NAME_dup(requested);
    for (int i = 0; subject != NULL && override != NULL && i < X509_NAME_entry_count(override);
         i++) {
        const X509_NAME_ENTRY *entry = X509_NAME_get_entry(override, i);
        int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(entry));
        int at;
        while ((at = X509_NAME_get_index_by_NID(subject, nid, -1)) >= 0)
            X509_NAME_ENTRY_free(X509_NAME_delete_entry(subject, at));
        if (!X509_NAME_add_entry(subject, entry, -1, 0)) {
            X509_NAME_free(subject);
            subject = NULL;
        }
    }
    if (subject == NULL)
        return estca_fail_openssl(why, ESTCA_E_NOMEM, "cannot build the subject");
    *out = subject;
    return ESTCA_OK;
}
