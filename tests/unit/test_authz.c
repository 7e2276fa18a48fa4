/* authz.h's pure parts: ${user}/${cn} expansion (escaped, so a user name cannot smuggle in a
 * wildcard), fnmatch patterns over identities, subjects and subjectAltName entries, and the
 * list splitting that keeps RFC 2253 names whole. */
#include "authz.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct authz_vars alice = {.user = "alice", .cn = NULL};

Test(authz, expands_user_and_cn)
{
    char out[128];
    struct authz_vars vars = {.user = "bob", .cn = "dev7"};
    cr_assert(authz_expand("CN=${user},O=${cn}", &vars, out, sizeof out));
    cr_assert_str_eq(out, "CN=bob,O=dev7");
}

Test(authz, escapes_wildcards_in_values)
{
    char out[128];
    struct authz_vars vars = {.user = "a*b?[c]\\", .cn = NULL};
    cr_assert(authz_expand("CN=${user}", &vars, out, sizeof out));
    cr_assert_str_eq(out, "CN=a\\*b\\?\\[c\\]\\\\");
    /* A user named "*" matches only the subject CN=*, not every subject. */
    struct authz_vars star = {.user = "*", .cn = NULL};
    cr_assert(authz_pattern_match("CN=${user}", &star, "CN=*", false));
    cr_assert_not(authz_pattern_match("CN=${user}", &star, "CN=mallory", false));
}

Test(authz, missing_or_unknown_variable_matches_nothing)
{
    char out[128];
    cr_assert_not(authz_expand("CN=${cn}", &alice, out, sizeof out));
    cr_assert_not(authz_expand("CN=${nobody}", &alice, out, sizeof out));
    cr_assert_not(authz_expand("CN=${user", &alice, out, sizeof out));
    cr_assert_not(authz_pattern_match("CN=${cn}", &alice, "CN=", false));
    struct authz_vars empty = {.user = "", .cn = NULL};
    cr_assert_not(authz_pattern_match("CN=${user}*", &empty, "CN=anything", false));
}

Test(authz, expansion_respects_the_buffer)
{
    char out[8];
    cr_assert_not(authz_expand("CN=${user}", &alice, out, sizeof out));
    cr_assert(authz_expand("CN=x", &alice, out, sizeof out));
}

Test(authz, identity_patterns)
{
    cr_assert(authz_pattern_match("user:*", NULL, "user:alice", false));
    cr_assert(authz_pattern_match("user:alice", NULL, "user:alice", false));
    cr_assert_not(authz_pattern_match("user:alice", NULL, "user:alice2", false));
    cr_assert_not(authz_pattern_match("user:*", NULL, "cert:CN=alice", false));
    cr_assert(
        authz_pattern_match("cert:CN=*.example.com*", NULL, "cert:CN=gw.example.com,O=X", false));
    cr_assert_not(
        authz_pattern_match("cert:CN=*.example.com*", NULL, "ra:CN=gw.example.com", false));
    cr_assert(authz_pattern_match("ra:*", NULL, "ra:CN=ra1,O=Example", false));
    /* Identities and subjects compare with case. */
    cr_assert_not(authz_pattern_match("user:Alice", NULL, "user:alice", false));
}

Test(authz, subject_patterns_with_user)
{
    cr_assert(authz_pattern_match("CN=${user}", &alice, "CN=alice", false));
    cr_assert(authz_pattern_match("CN=${user},O=*", &alice, "CN=alice,O=Test", false));
    cr_assert_not(authz_pattern_match("CN=${user}", &alice, "CN=bob", false));
    cr_assert_not(authz_pattern_match("CN=${user}", &alice, "CN=alice,O=Test", false));
}

Test(authz, san_patterns_fold_case_when_asked)
{
    cr_assert(authz_pattern_match("DNS:*.dev.example.com", NULL, "DNS:a.dev.example.com", true));
    cr_assert(authz_pattern_match("DNS:*.dev.example.com", NULL, "DNS:A.DEV.Example.com", true));
    cr_assert_not(
        authz_pattern_match("DNS:*.dev.example.com", NULL, "DNS:a.prod.example.com", true));
    cr_assert(
        authz_pattern_match("DNS:${user}.example.com", &alice, "DNS:alice.example.com", true));
    cr_assert_not(
        authz_pattern_match("DNS:${user}.example.com", &alice, "DNS:bob.example.com", true));
    cr_assert(authz_pattern_match("IP:10.*", NULL, "IP:10.1.2.3", false));
    cr_assert_not(authz_pattern_match("IP:10.*", NULL, "IP:192.168.1.10", false));
}

Test(authz, splits_lists_keeping_rfc2253_names)
{
    char **items = NULL;
    size_t n = 0;
    cr_assert_eq(authz_split_list("CN=${user},O=Example, CN=${cn}", false, &items, &n, NULL),
                 ESTCA_OK);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(items[0], "CN=${user},O=Example");
    cr_assert_str_eq(items[1], "CN=${cn}");
    authz_list_free(items, n);
    cr_assert_eq(authz_split_list("a,b , c", true, &items, &n, NULL), ESTCA_OK);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(items[0], "a");
    cr_assert_str_eq(items[1], "b");
    cr_assert_str_eq(items[2], "c");
    authz_list_free(items, n);
    cr_assert_eq(authz_split_list("a, , b", true, &items, &n, NULL), ESTCA_E_CONFIG);
    cr_assert_eq(authz_split_list("", true, &items, &n, NULL), ESTCA_E_CONFIG);
}

Test(authz, renders_general_names)
{
    char out[128];
    GENERAL_NAME *dns = a2i_GENERAL_NAME(NULL, NULL, NULL, GEN_DNS, "gw.example.com", 0);
    cr_assert(authz_general_name_text(dns, out, sizeof out));
    cr_assert_str_eq(out, "DNS:gw.example.com");
    GENERAL_NAME_free(dns);
    GENERAL_NAME *ip = a2i_GENERAL_NAME(NULL, NULL, NULL, GEN_IPADD, "10.0.0.7", 0);
    cr_assert(authz_general_name_text(ip, out, sizeof out));
    cr_assert_str_eq(out, "IP:10.0.0.7");
    GENERAL_NAME_free(ip);
    GENERAL_NAME *ip6 = a2i_GENERAL_NAME(NULL, NULL, NULL, GEN_IPADD, "2001:db8::1", 0);
    cr_assert(authz_general_name_text(ip6, out, sizeof out));
    cr_assert_str_eq(out, "IP:2001:db8::1");
    GENERAL_NAME_free(ip6);
    /* A DNS name with an embedded NUL could hide a suffix from the pattern: refused. */
    GENERAL_NAME *nul = GENERAL_NAME_new();
    ASN1_IA5STRING *s = ASN1_IA5STRING_new();
    ASN1_STRING_set(s, "good.example.com\0.evil", 22);
    GENERAL_NAME_set0_value(nul, GEN_DNS, s);
    cr_assert_not(authz_general_name_text(nul, out, sizeof out));
    GENERAL_NAME_free(nul);
}

Test(authz, certificate_identity_is_rfc2253)
{
    X509 *certificate = X509_new();
    X509_NAME *name = X509_get_subject_name(certificate);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"Maker", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"SN1", -1, -1, 0);
    char out[64];
    cr_assert_eq(authz_certificate_identity("cert:", certificate, out, sizeof out, NULL), ESTCA_OK);
    cr_assert_str_eq(out, "cert:CN=SN1,O=Maker");
    char small[10];
    cr_assert_eq(authz_certificate_identity("cert:", certificate, small, sizeof small, NULL),
                 ESTCA_E_FORBIDDEN);
    X509_free(certificate);
}

/* ---- [policy:] and the label keys, through config_load and authz_new ---- */

#define MINIMAL_CONFIG                                                                             \
    "[token]\nuri = pkcs11:token=estca\n"                                                          \
    "[server]\ntls_certificate = tls.pem\ntls_key = pkcs11:token=estca;object=tls\n"               \
    "[ledger]\npath = ledger.sqlite\n"                                                             \
    "[ca:issuing]\nkey = pkcs11:token=estca;object=issuing-ca\ncertificate = ca.pem\n"             \
    "[label:default]\nca = issuing\n"

static int load_config(const char *text, struct estca_config **config, estca_reason *why)
{
    char path[] = "/tmp/estca-authz-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    FILE *file = fdopen(fd, "w");
    cr_assert_not_null(file);
    fputs(text, file);
    fclose(file);
    int rc = config_load(path, config, why);
    unlink(path);
    return rc;
}

Test(authz, config_reads_policies_and_label_keys)
{
    struct estca_config *config = NULL;
    estca_reason why = {{0}};
    int rc = load_config(MINIMAL_CONFIG "cert_auth = yes\nclient_ca = idevid.pem\n"
                                        "client_crl = /etc/idevid.crl\nra_ca = ra.pem\n"
                                        "[policy:first]\nidentities = user:*\nlabels = default\n"
                                        "subject = CN=${user}\nsan = DNS:*.example.com\n"
                                        "max_certificates = 3\n"
                                        "[policy:second]\nidentities = ra:*\n",
                         &config, &why);
    cr_assert_eq(rc, ESTCA_OK, "%s", why.text);
    cr_assert_eq(config->labels[0].cert_auth, 1);
    cr_assert_str_eq(config->labels[0].client_ca, "/tmp/idevid.pem");
    cr_assert_str_eq(config->labels[0].client_crl, "/etc/idevid.crl");
    cr_assert_str_eq(config->labels[0].ra_ca, "/tmp/ra.pem");
    cr_assert_eq(config->n_policies, 2);
    cr_assert_str_eq(config->policies[0].name, "first");
    cr_assert_str_eq(config->policies[0].subject, "CN=${user}");
    cr_assert_eq(config->policies[0].max_certificates, 3);
    cr_assert_str_eq(config->policies[1].identities, "ra:*");
    struct authz *authz = NULL;
    cr_assert_eq(authz_new(config, &authz, &why), ESTCA_OK, "%s", why.text);
    authz_free(authz);
    config_free(config);
}

Test(authz, config_defaults_cert_auth_off)
{
    struct estca_config *config = NULL;
    cr_assert_eq(load_config(MINIMAL_CONFIG, &config, NULL), ESTCA_OK);
    cr_assert_eq(config->labels[0].cert_auth, 0);
    cr_assert_eq(config->n_policies, 0);
    config_free(config);
}

static void expect_config_refused(const char *text, const char *fragment)
{
    struct estca_config *config = NULL;
    estca_reason why = {{0}};
    int rc = load_config(text, &config, &why);
    struct authz *authz = NULL;
    if (rc == ESTCA_OK)
        rc = authz_new(config, &authz, &why);
    cr_expect_eq(rc, ESTCA_E_CONFIG, "accepted: %s", text);
    cr_expect_not_null(strstr(why.text, fragment), "reason '%s' lacks '%s'", why.text, fragment);
    authz_free(authz);
    config_free(config);
}

Test(authz, config_refuses_bad_policies)
{
    expect_config_refused(MINIMAL_CONFIG "[policy:p]\nlabels = default\n", "needs 'identities'");
    expect_config_refused(MINIMAL_CONFIG "[policy:p]\nidentities = user:*\nlabels = nope\n",
                          "no section [label:nope]");
    expect_config_refused(MINIMAL_CONFIG "[policy:p]\nidentities = user:*\n"
                                         "[policy:p]\nidentities = ra:*\n",
                          "duplicate section [policy:p]");
    expect_config_refused(MINIMAL_CONFIG "[policy:p]\nidentities = user:*\nwho = x\n",
                          "unknown key 'who'");
    expect_config_refused(MINIMAL_CONFIG "[policy:p]\nidentities = user:a, , user:b\n",
                          "empty item");
    expect_config_refused(MINIMAL_CONFIG "[policy:p]\nidentities = user:*\nmax_certificates = 0\n",
                          "max_certificates");
    expect_config_refused(MINIMAL_CONFIG "cert_auth = maybe\n", "cert_auth");
}
