/* config_load: a valid file, defaults, relative paths, and each way a file is refused. */
#include "config.h"
#include "scratch_dir.h"
#include "token.h"

#include <criterion/criterion.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[PATH_MAX];       /* realpath of the test's directory */
static char path[PATH_MAX + 16]; /* dir/estca.conf */

static void setup(void)
{
    char tmp[PATH_MAX];
    scratch_dir_make(tmp, sizeof tmp, "config");
    cr_assert_not_null(realpath(tmp, dir));
    snprintf(path, sizeof path, "%s/estca.conf", dir);
}

static void teardown(void)
{
    scratch_dir_remove(dir);
}

TestSuite(config, .init = setup, .fini = teardown);

static int load_text(const char *text, struct estca_config **config, estca_reason *why)
{
    FILE *file = fopen(path, "w");
    cr_assert_not_null(file);
    fputs(text, file);
    fclose(file);
    return config_load(path, config, why);
}

#define TOKEN "[token]\nuri = pkcs11:token=estca\n"
#define SERVER "[server]\ntls_certificate = tls.pem\ntls_key = pkcs11:token=estca;object=tls\n"
#define LEDGER "[ledger]\npath = ledger.sqlite\n"
#define CA "[ca:issuing]\nkey = pkcs11:token=estca;object=issuing-ca\ncertificate = ca.pem\n"
#define LABEL "[label:default]\nca = issuing\n"
#define MINIMAL TOKEN SERVER LEDGER CA LABEL

/* Expects config_load to refuse text with ESTCA_E_CONFIG and a reason containing each of the
 * NULL-terminated fragments. */
static void expect_refused(const char *text, ...)
{
    struct estca_config *config = NULL;
    estca_reason why = {{0}};
    int rc = load_text(text, &config, &why);
    cr_assert_eq(rc, ESTCA_E_CONFIG, "rc %d (%s)", rc, why.text);
    cr_assert_null(config);
    va_list fragments;
    va_start(fragments, text);
    for (const char *f = va_arg(fragments, const char *); f != NULL;
         f = va_arg(fragments, const char *))
        cr_expect_not_null(strstr(why.text, f), "'%s' not in reason: %s", f, why.text);
    va_end(fragments);
}

static void expect_path(const char *got, const char *name)
{
    char want[PATH_MAX * 2];
    snprintf(want, sizeof want, "%s/%s", dir, name);
    cr_expect_str_eq(got, want);
}

Test(config, full_file)
{
    const char *text = "# comment\n"
                       "[token]\nmodule = /opt/hsm/lib.so\nuri = pkcs11:token=estca\n"
                       "pin_file = secrets/token.pin\n"
                       "[server]\nlisten = [::1]:9443\ntls_certificate = /etc/tls.pem\n"
                       "tls_key = pkcs11:token=estca;object=tls ; inline comment\n"
                       "threads = 4\nmax_body = 4096\nrequest_timeout_ms = 5000\n"
                       "default_label = b\n"
                       "[ledger]\npath = ledger.sqlite\n"
                       "[auth]\nusers_file = users\n"
                       "[ca:root]\nkey = pkcs11:token=estca;object=root\ncertificate = root.pem\n"
                       "[ca:issuing]\nkey = pkcs11:token=estca;object=issuing\n"
                       "certificate = issuing.pem\nchain = chain.pem\n"
                       "[label:a]\nca = root\nvalidity_days = 30\n"
                       "[label:b]\nca = issuing\n";
    struct estca_config *config = NULL;
    estca_reason why = {{0}};
    cr_assert_eq(load_text(text, &config, &why), ESTCA_OK, "%s", why.text);
    cr_expect_str_eq(config->path, path);
    cr_expect_str_eq(config->module_path, "/opt/hsm/lib.so");
    cr_expect_str_eq(config->token_uri, "pkcs11:token=estca");
    expect_path(config->pin_file, "secrets/token.pin");
    cr_expect_str_eq(config->listen, "[::1]:9443");
    cr_expect_str_eq(config->tls_certificate_file, "/etc/tls.pem");
    cr_expect_str_eq(config->tls_key, "pkcs11:token=estca;object=tls");
    cr_expect_eq(config->threads, 4);
    cr_expect_eq(config->max_body, 4096);
    cr_expect_eq(config->request_timeout_ms, 5000);
    cr_expect_str_eq(config->default_label, "b");
    expect_path(config->ledger_path, "ledger.sqlite");
    expect_path(config->users_file, "users");
    cr_assert_eq(config->n_cas, 2);
    const struct config_ca *issuing = config_find_ca(config, "issuing");
    cr_assert_not_null(issuing);
    cr_expect_str_eq(issuing->key_uri, "pkcs11:token=estca;object=issuing");
    expect_path(issuing->certificate_file, "issuing.pem");
    expect_path(issuing->chain_file, "chain.pem");
    cr_expect_null(config_find_ca(config, "root")->chain_file);
    cr_assert_eq(config->n_labels, 2);
    cr_expect_eq(config_find_label(config, "a")->validity_days, 30);
    cr_expect_eq(config_find_label(config, "b")->validity_days, 365);
    cr_expect_str_eq(config_find_label(config, "b")->ca_name, "issuing");
    cr_expect_null(config_find_label(config, "c"));
    config_free(config);
}

Test(config, defaults)
{
    struct estca_config *config = NULL;
    estca_reason why = {{0}};
    cr_assert_eq(load_text(MINIMAL, &config, &why), ESTCA_OK, "%s", why.text);
    cr_expect_str_eq(config->module_path, HSM_DEFAULT_MODULE);
    cr_expect_null(config->pin_file);
    cr_expect_null(config->users_file);
    cr_expect_str_eq(config->listen, "127.0.0.1:8443");
    cr_expect_eq(config->threads, 8);
    cr_expect_eq(config->max_body, 65536);
    cr_expect_eq(config->request_timeout_ms, 10000);
    cr_expect_eq(config->max_connections_per_address, 4); /* threads / 2 */
    cr_expect_str_eq(config->default_label, "default");   /* the only label */
    cr_expect_eq(config->labels[0].validity_days, 365);
    cr_expect_eq(config->labels[0].csr_key_type, CONFIG_CSR_KEY_NONE);
    cr_expect_eq(config->labels[0].csr_hash, CONFIG_CSR_HASH_NONE);
    cr_expect_eq(config->labels[0].csr_require_challenge_password, 0);
    cr_expect_eq(config->labels[0].pop_linking, CONFIG_POP_LINKING_VERIFY_IF_PRESENT);
    expect_path(config->tls_certificate_file, "tls.pem");
    config_free(config);
}

Test(config, byte_order_mark)
{
    struct estca_config *config = NULL;
    estca_reason why = {{0}};
    cr_expect_eq(load_text("\xEF\xBB\xBF" MINIMAL, &config, &why), ESTCA_OK, "%s", why.text);
    config_free(config);
}

Test(config, relative_to_the_file_not_the_working_directory)
{
    cr_assert_eq(chdir("/"), 0);
    struct estca_config *config = NULL;
    estca_reason why = {{0}};
    cr_assert_eq(load_text(MINIMAL, &config, &why), ESTCA_OK, "%s", why.text);
    expect_path(config->cas[0].certificate_file, "ca.pem");
    config_free(config);
}

Test(config, unknown_key)
{
    expect_refused(TOKEN "[server]\ntls_certificate = t.pem\nthread = 4\n", "estca.conf:5",
                   "unknown key 'thread'", "[server]", NULL);
}

Test(config, unknown_section)
{
    expect_refused(MINIMAL "[servre]\nlisten = 1.2.3.4:1\n", "estca.conf:13", "[servre]", NULL);
}

Test(config, empty_unknown_section)
{
    expect_refused(TOKEN "[extra]\n" SERVER LEDGER CA LABEL, "estca.conf:3", "[extra]", NULL);
}

Test(config, key_outside_sections)
{
    expect_refused("uri = x\n" MINIMAL, "estca.conf:1", "outside any section", NULL);
}

Test(config, duplicate_key)
{
    expect_refused(MINIMAL "[auth]\nusers_file = a\nusers_file = b\n", "estca.conf:15",
                   "duplicate key 'users_file'", NULL);
}

Test(config, duplicate_label)
{
    expect_refused(MINIMAL LABEL, "duplicate section [label:default]", NULL);
}

Test(config, duplicate_ca)
{
    expect_refused(MINIMAL CA, "duplicate section [ca:issuing]", NULL);
}

Test(config, duplicate_global_section)
{
    expect_refused(MINIMAL "[token]\npin_file = x\n", "duplicate section [token]", NULL);
    expect_refused(MINIMAL "[server]\n", "estca.conf:13", "duplicate section [server]", NULL);
}

Test(config, number_out_of_range)
{
    expect_refused(TOKEN "[server]\nthreads = 0\n", "estca.conf:4", "'threads'", NULL);
    expect_refused(MINIMAL "[label:x]\nca = issuing\nvalidity_days = 12x\n", "'validity_days'",
                   NULL);
}

static const struct config_label *load_label(const char *keys, struct estca_config **config)
{
    char text[1024];
    snprintf(text, sizeof text, "%s%s", MINIMAL, keys);
    estca_reason why = {{0}};
    cr_assert_eq(load_text(text, config, &why), ESTCA_OK, "%s", why.text);
    return &(*config)->labels[0];
}

Test(config, csr_attributes)
{
    static const struct {
        const char *word;
        int value;
    } keys[] = {{"rsa:2048", CONFIG_CSR_KEY_RSA_2048},
                {"rsa:3072", CONFIG_CSR_KEY_RSA_3072},
                {"rsa:4096", CONFIG_CSR_KEY_RSA_4096},
                {"ec:P-256", CONFIG_CSR_KEY_EC_P256},
                {"ec:P-384", CONFIG_CSR_KEY_EC_P384}},
      hashes[] = {{"sha256", CONFIG_CSR_HASH_SHA256},
                  {"sha384", CONFIG_CSR_HASH_SHA384},
                  {"sha512", CONFIG_CSR_HASH_SHA512}};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        char line[128];
        snprintf(line, sizeof line, "csr_key_type = %s\ncsr_hash = %s\n", keys[i].word,
                 hashes[i % 3].word);
        struct estca_config *config = NULL;
        const struct config_label *label = load_label(line, &config);
        cr_expect_eq(label->csr_key_type, keys[i].value, "%s", keys[i].word);
        cr_expect_eq(label->csr_hash, hashes[i % 3].value, "%s", hashes[i % 3].word);
        cr_expect_eq(label->csr_require_challenge_password, 0);
        config_free(config);
    }
    struct estca_config *config = NULL;
    cr_expect_eq(load_label("csr_require_challenge_password = yes\n", &config)
                     ->csr_require_challenge_password,
                 1);
    config_free(config);
    cr_expect_eq(load_label("csr_require_challenge_password = no\n", &config)
                     ->csr_require_challenge_password,
                 0);
    config_free(config);
}

Test(config, csr_attributes_refused)
{
    expect_refused(MINIMAL "csr_key_type = rsa:1024\n", "estca.conf:13", "'csr_key_type'",
                   "rsa:2048, rsa:3072, rsa:4096, ec:P-256, ec:P-384", "'rsa:1024'", NULL);
    expect_refused(MINIMAL "validity_days = 5\ncsr_key_type = ec:p-256\n", "estca.conf:14",
                   "'csr_key_type'", NULL);
    expect_refused(MINIMAL "csr_hash = sha1\n", "estca.conf:13", "'csr_hash'",
                   "sha256, sha384, sha512", NULL);
    expect_refused(MINIMAL "csr_require_challenge_password = true\n", "estca.conf:13",
                   "'csr_require_challenge_password' must be one of no, yes", NULL);
    expect_refused(MINIMAL "csr_hash = sha256\ncsr_hash = sha384\n", "estca.conf:14",
                   "duplicate key 'csr_hash'", NULL);
    expect_refused(MINIMAL "csr_require_challenge_password = no\n"
                           "csr_require_challenge_password = no\n",
                   "estca.conf:14", "duplicate key", NULL);
    expect_refused(TOKEN "[server]\ncsr_hash = sha256\n", "estca.conf:4",
                   "unknown key 'csr_hash' in [server]", NULL);
}

Test(config, label_without_ca_section)
{
    expect_refused(TOKEN SERVER LEDGER CA "[label:default]\nca = nosuch\n", "[label:default]",
                   "no section [ca:nosuch]", NULL);
}

Test(config, label_needs_ca)
{
    expect_refused(TOKEN SERVER LEDGER CA "[label:default]\nvalidity_days = 3\n",
                   "[label:default] needs 'ca'", NULL);
}

Test(config, default_label_must_exist)
{
    expect_refused(
        TOKEN "[server]\ntls_certificate = t\ntls_key = k\ndefault_label = nope\n" LEDGER CA LABEL,
        "[label:nope]", NULL);
}

Test(config, several_labels_need_a_default)
{
    expect_refused(MINIMAL "[label:other]\nca = issuing\n", "default_label", NULL);
}

Test(config, no_label)
{
    expect_refused(TOKEN SERVER LEDGER CA, "no [label:NAME]", NULL);
}

Test(config, label_named_after_an_operation)
{
    const char *ops[] = {"cacerts",      "simpleenroll", "simplereenroll",
                         "serverkeygen", "csrattrs",     "fullcmc"};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        char text[1024];
        snprintf(text, sizeof text, TOKEN SERVER LEDGER CA "[label:%s]\nca = issuing\n", ops[i]);
        expect_refused(text, ops[i], "EST operation", NULL);
    }
}

Test(config, label_name_characters)
{
    expect_refused(TOKEN SERVER LEDGER CA "[label:a/b]\nca = issuing\n", "[label:a/b]", NULL);
    expect_refused(TOKEN SERVER LEDGER CA "[label:a b]\nca = issuing\n", "[label:a b]", NULL);
    struct estca_config *config = NULL;
    estca_reason why = {{0}};
    cr_expect_eq(
        load_text(TOKEN SERVER LEDGER CA "[label:Dev-1.x_y]\nca = issuing\n", &config, &why),
        ESTCA_OK, "%s", why.text);
    config_free(config);
}

Test(config, required_settings)
{
    expect_refused(SERVER LEDGER CA LABEL, "[token] needs 'uri'", NULL);
    expect_refused(TOKEN LEDGER CA LABEL, "[server] needs 'tls_certificate'", NULL);
    expect_refused(TOKEN SERVER CA LABEL, "[ledger] needs 'path'", NULL);
    expect_refused(TOKEN SERVER LEDGER "[ca:issuing]\ncertificate = c.pem\n" LABEL,
                   "[ca:issuing] needs 'key'", NULL);
}

Test(config, syntax_error_has_line)
{
    expect_refused(TOKEN "this is not a key\n" SERVER LEDGER CA LABEL, "estca.conf:3",
                   "syntax error", NULL);
}

Test(config, line_too_long)
{
    char text[4096];
    char long_path[400];
    memset(long_path, 'x', sizeof long_path - 1);
    long_path[sizeof long_path - 1] = '\0';
    snprintf(text, sizeof text, MINIMAL "[auth]\nusers_file = %s\n", long_path);
    expect_refused(text, "estca.conf:14", "longer than", NULL);
}

Test(config, missing_file)
{
    struct estca_config *config = NULL;
    estca_reason why = {{0}};
    cr_expect_eq(config_load("/nonexistent/estca.conf", &config, &why), ESTCA_E_CONFIG);
    cr_expect_null(config);
    cr_expect_not_null(strstr(why.text, "/nonexistent/estca.conf"), "%s", why.text);
}

Test(config, approval)
{
    struct estca_config *config = NULL;
    const struct config_label *label = load_label("validity_days = 5\n", &config);
    cr_expect_eq(label->manual_approval, 0, "approval is automatic unless configured");
    cr_expect_eq(label->retry_after_seconds, 60);
    config_free(config);
    label = load_label("approval = manual\nretry_after = 5\n", &config);
    cr_expect_eq(label->manual_approval, 1);
    cr_expect_eq(label->retry_after_seconds, 5);
    config_free(config);
    expect_refused(MINIMAL "approval = maybe\n", "estca.conf:13",
                   "'approval' must be one of auto, manual", NULL);
    expect_refused(MINIMAL "retry_after = 0\n", "estca.conf:13", "'retry_after'", NULL);
}

Test(config, serverkeygen)
{
    struct estca_config *config = NULL;
    const struct config_label *label = load_label("validity_days = 5\n", &config);
    cr_expect_eq(label->serverkeygen, 0, "serverkeygen is off unless configured");
    config_free(config);
    label = load_label("serverkeygen = yes\n", &config);
    cr_expect_eq(label->serverkeygen, 1);
    config_free(config);
    expect_refused(MINIMAL "serverkeygen = maybe\n", "estca.conf:13",
                   "'serverkeygen' must be one of no, yes", NULL);
}

/* Proof-of-possession linking (RFC 7030 §3.5): checked when present unless configured. */
Test(config, pop_linking)
{
    struct estca_config *config = NULL;
    const struct config_label *label = load_label("validity_days = 5\n", &config);
    cr_expect_eq(label->pop_linking, CONFIG_POP_LINKING_VERIFY_IF_PRESENT);
    cr_expect_eq(label->csr_require_challenge_password, 0);
    config_free(config);
    static const struct {
        const char *word;
        int value;
    } words[] = {{"verify-if-present", CONFIG_POP_LINKING_VERIFY_IF_PRESENT},
                 {"required", CONFIG_POP_LINKING_REQUIRED},
                 {"off", CONFIG_POP_LINKING_OFF}};
    for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
        char line[64];
        snprintf(line, sizeof line, "pop_linking = %s\n", words[i].word);
        label = load_label(line, &config);
        cr_expect_eq(label->pop_linking, words[i].value, "%s", words[i].word);
        cr_expect_eq(label->csr_require_challenge_password,
                     words[i].value == CONFIG_POP_LINKING_REQUIRED, "%s", words[i].word);
        config_free(config);
    }
}

/* csr_require_challenge_password is pop_linking's old name: yes = required, no = the
 * default; a label may not use both names. */
Test(config, pop_linking_old_name)
{
    struct estca_config *config = NULL;
    const struct config_label *label =
        load_label("csr_require_challenge_password = yes\n", &config);
    cr_expect_eq(label->pop_linking, CONFIG_POP_LINKING_REQUIRED);
    config_free(config);
    label = load_label("csr_require_challenge_password = no\n", &config);
    cr_expect_eq(label->pop_linking, CONFIG_POP_LINKING_VERIFY_IF_PRESENT);
    config_free(config);
    expect_refused(MINIMAL "pop_linking = required\ncsr_require_challenge_password = yes\n",
                   "[label:default]", "csr_require_challenge_password is the old name",
                   "set only pop_linking", NULL);
    expect_refused(MINIMAL "csr_require_challenge_password = no\npop_linking = off\n",
                   "set only pop_linking", NULL);
}

Test(config, pop_linking_refused)
{
    expect_refused(MINIMAL "pop_linking = yes\n", "estca.conf:13",
                   "'pop_linking' must be one of verify-if-present, required, off, not 'yes'",
                   NULL);
    expect_refused(MINIMAL "pop_linking = off\npop_linking = off\n", "estca.conf:14",
                   "duplicate key 'pop_linking'", NULL);
    expect_refused(TOKEN "[server]\npop_linking = off\n", "unknown key 'pop_linking' in [server]",
                   NULL);
    expect_refused(MINIMAL "pop_linking = required\napproval = manual\n", "[label:default]",
                   "pop_linking = required cannot be combined with approval = manual", NULL);
    expect_refused(MINIMAL "csr_require_challenge_password = yes\napproval = manual\n",
                   "cannot be combined", NULL);
}

/* The example an operator starts from must load as it is shipped. */
Test(config, the_shipped_example_loads)
{
    struct estca_config *config = NULL;
    estca_reason why = {{0}};
    cr_assert_eq(config_load(ESTCA_SOURCE_DIR "/packaging/estca.conf.example", &config, &why),
                 ESTCA_OK, "%s", why.text);
    cr_expect_str_eq(config->audit_path, "/var/lib/estca/audit.log");
    cr_expect_eq(config->audit_checkpoint_every, 1000);
    cr_expect_eq(config->labels[0].csr_ca_request, CONFIG_CA_REQUEST_REFUSE);
    cr_expect_eq(config->labels[0].pop_linking, CONFIG_POP_LINKING_VERIFY_IF_PRESENT);
    config_free(config);
}
