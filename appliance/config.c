/* The configuration file: libinih does the INI syntax, this file the meaning. Parsing is
 * table-driven (one row per key), then the whole configuration is validated at once. */
#include "config.h"

#include "token.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_LISTEN "127.0.0.1:8443"
#define DEFAULT_THREADS 8
#define DEFAULT_MAX_BODY 65536
#define DEFAULT_REQUEST_TIMEOUT_MS 10000
#define DEFAULT_VALIDITY_DAYS 365

/* The sections: [token], [server], ... apply to struct estca_config itself; [ca:NAME] and
 * [label:NAME] each to one element of its array. */
enum section_kind { SECTION_NONE, SECTION_GLOBAL, SECTION_CA, SECTION_LABEL, SECTION_POLICY };

/* PATH values are resolved against the configuration file's directory; STRING values
 * (URIs, names, host:port) are kept as written; KEY values are a PKCS#11 URI (kept) or a
 * file (resolved). */
/* VALUE_ENUM values are one of a fixed list of words, stored as an int: min + the word's index
 * in choices. */
enum value_kind { VALUE_STRING, VALUE_PATH, VALUE_KEY, VALUE_INT, VALUE_SIZE, VALUE_ENUM };

struct key_spec {
    const char *section; /* "token", "server", ...; "ca" or "label" for the named ones */
    const char *name;
    enum value_kind kind;
    size_t offset;              /* into struct estca_config, config_ca or config_label */
    long min, max;              /* for numbers; a value outside [min, max] means "not set yet" */
    const char *const *choices; /* VALUE_ENUM: the words, NULL-terminated */
};

/* Long enough that a waiting device does not hammer the appliance, short enough that an
 * approval takes effect soon. */
#define DEFAULT_RETRY_AFTER_SECONDS 60

/* libp11 0.4.12 keeps at most 16 sessions per slot: the most that can sign at once. */
#define DEFAULT_TOKEN_SESSIONS 16

/* RFC 7030's base policy; a label may ask for more. */
#define DEFAULT_RSA_MIN_BITS 2048
/* A day: a revocation reaches relying parties within a day at worst (sooner: estcad
 * re-signs the CRL as soon as it sees a revocation). */
#define DEFAULT_CRL_VALIDITY_HOURS 24
/* Often enough that a rewritten tail is small, rarely enough to cost nothing. */
#define DEFAULT_AUDIT_CHECKPOINT_EVERY 1000

#define GLOBAL(field) offsetof(struct estca_config, field)
#define CA(field) offsetof(struct config_ca, field)
#define LABEL(field) offsetof(struct config_label, field)
#define POLICY(field) offsetof(struct config_policy, field)

/* In the order of enum config_csr_key and enum config_csr_hash, from their first set value. */
static const char *const csr_key_words[] = {"rsa:2048", "rsa:3072", "rsa:4096",
                                            "ec:P-256", "ec:P-384", NULL};
static const char *const csr_hash_words[] = {"sha256", "sha384", "sha512", NULL};
static const char *const yes_no_words[] = {"no", "yes", NULL};
static const char *const approval_words[] = {"auto", "manual", NULL};
static const char *const ca_request_words[] = {"refuse", "ignore", NULL};
/* In the order of enum config_pop_linking. */
static const char *const pop_linking_words[] = {"verify-if-present", "required", "off", NULL};

static const struct key_spec key_specs[] = {
    {"token", "module", VALUE_STRING, GLOBAL(module_path), 0, 0, NULL},
    {"token", "uri", VALUE_STRING, GLOBAL(token_uri), 0, 0, NULL},
    {"token", "pin_file", VALUE_PATH, GLOBAL(pin_file), 0, 0, NULL},
    {"token", "sessions", VALUE_INT, GLOBAL(token_sessions), 1, 16, NULL},
    {"server", "listen", VALUE_STRING, GLOBAL(listen), 0, 0, NULL},
    {"server", "tls_certificate", VALUE_PATH, GLOBAL(tls_certificate_file), 0, 0, NULL},
    {"server", "tls_key", VALUE_KEY, GLOBAL(tls_key), 0, 0, NULL},
    {"server", "threads", VALUE_INT, GLOBAL(threads), 1, 1024, NULL},
    {"server", "max_body", VALUE_SIZE, GLOBAL(max_body), 1024, 64L * 1024 * 1024, NULL},
    {"server", "request_timeout_ms", VALUE_INT, GLOBAL(request_timeout_ms), 100, 3600000, NULL},
    {"server", "max_connections_per_address", VALUE_INT, GLOBAL(max_connections_per_address), 0,
     65536, NULL},
    {"server", "default_label", VALUE_STRING, GLOBAL(default_label), 0, 0, NULL},
    {"ledger", "path", VALUE_PATH, GLOBAL(ledger_path), 0, 0, NULL},
    {"auth", "users_file", VALUE_PATH, GLOBAL(users_file), 0, 0, NULL},
    {"ca", "key", VALUE_STRING, CA(key_uri), 0, 0, NULL},
    {"ca", "certificate", VALUE_PATH, CA(certificate_file), 0, 0, NULL},
    {"ca", "chain", VALUE_PATH, CA(chain_file), 0, 0, NULL},
    {"label", "ca", VALUE_STRING, LABEL(ca_name), 0, 0, NULL},
    {"label", "validity_days", VALUE_INT, LABEL(validity_days), 1, 36500, NULL},
    {"label", "csr_key_type", VALUE_ENUM, LABEL(csr_key_type), CONFIG_CSR_KEY_RSA_2048,
     CONFIG_CSR_KEY_EC_P384, csr_key_words},
    {"label", "csr_hash", VALUE_ENUM, LABEL(csr_hash), CONFIG_CSR_HASH_SHA256,
     CONFIG_CSR_HASH_SHA512, csr_hash_words},
    {"label", "csr_require_challenge_password", VALUE_ENUM, LABEL(csr_require_challenge_password),
     0, 1, yes_no_words},
    {"label", "pop_linking", VALUE_ENUM, LABEL(pop_linking), CONFIG_POP_LINKING_VERIFY_IF_PRESENT,
     CONFIG_POP_LINKING_OFF, pop_linking_words},
    {"label", "approval", VALUE_ENUM, LABEL(manual_approval), 0, 1, approval_words},
    {"label", "retry_after", VALUE_INT, LABEL(retry_after_seconds), 1, 86400, NULL},
    {"label", "serverkeygen", VALUE_ENUM, LABEL(serverkeygen), 0, 1, yes_no_words},
    {"label", "otp", VALUE_ENUM, LABEL(otp), 0, 1, yes_no_words},
    {"label", "key_usage", VALUE_STRING, LABEL(key_usage), 0, 0, NULL},
    {"label", "extended_key_usage", VALUE_STRING, LABEL(extended_key_usage), 0, 0, NULL},
    {"label", "csr_ca_request", VALUE_ENUM, LABEL(csr_ca_request), 0, 1, ca_request_words},
    {"label", "rsa_min_bits", VALUE_INT, LABEL(rsa_min_bits), 2048, 16384, NULL},
    {"label", "allowed_dns", VALUE_STRING, LABEL(allowed_dns), 0, 0, NULL},
    {"label", "subject_override", VALUE_STRING, LABEL(subject_override), 0, 0, NULL},
    {"label", "cert_auth", VALUE_ENUM, LABEL(cert_auth), 0, 1, yes_no_words},
    {"label", "client_ca", VALUE_PATH, LABEL(client_ca), 0, 0, NULL},
    {"label", "client_crl", VALUE_PATH, LABEL(client_crl), 0, 0, NULL},
    {"label", "ra_ca", VALUE_PATH, LABEL(ra_ca), 0, 0, NULL},
    {"policy", "identities", VALUE_STRING, POLICY(identities), 0, 0, NULL},
    {"policy", "labels", VALUE_STRING, POLICY(labels), 0, 0, NULL},
    {"policy", "subject", VALUE_STRING, POLICY(subject), 0, 0, NULL},
    {"policy", "san", VALUE_STRING, POLICY(san), 0, 0, NULL},
    {"policy", "max_certificates", VALUE_INT, POLICY(max_certificates), 1, 1000000, NULL},
    {"ca", "crl_url", VALUE_STRING, CA(crl_url), 0, 0, NULL},
    {"ca", "ca_issuers_url", VALUE_STRING, CA(ca_issuers_url), 0, 0, NULL},
    {"ca", "crl_file", VALUE_PATH, CA(crl_file), 0, 0, NULL},
    {"ca", "crl_validity_hours", VALUE_INT, CA(crl_validity_hours), 1, 8760, NULL},
    {"server", "crl_listen", VALUE_STRING, GLOBAL(crl_listen), 0, 0, NULL},
    {"server", "metrics_listen", VALUE_STRING, GLOBAL(metrics_listen), 0, 0, NULL},
    {"audit", "path", VALUE_PATH, GLOBAL(audit_path), 0, 0, NULL},
    {"audit", "signer", VALUE_STRING, GLOBAL(audit_signer), 0, 0, NULL},
    {"audit", "checkpoint_every", VALUE_INT, GLOBAL(audit_checkpoint_every), 1, 1000000, NULL},
};

static const char *const global_sections[] = {"token", "server", "ledger", "auth", "audit"};

/* An EST label shares the URL path segment with the operations, so these names are taken. */
static const char *const est_operations[] = {"cacerts",      "simpleenroll", "simplereenroll",
                                             "serverkeygen", "csrattrs",     "fullcmc"};

struct parse_state {
    struct estca_config *config;
    char dir[PATH_MAX]; /* the configuration file's directory, absolute */
    FILE *file;
    int line;              /* of the line inih last read */
    unsigned globals_seen; /* bit i: global_sections[i] was opened */
    enum section_kind section_kind;
    void *section_base; /* the struct the current section's keys land in */
    char section[INI_MAX_LINE];
    int status; /* the first error; parsing stops there */
    estca_reason *why;
};

/* Records the first error as "FILE:LINE: detail"; returns 0, which tells inih "error". */
static int parse_fail(struct parse_state *state, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int parse_fail(struct parse_state *state, int status, const char *fmt, ...)
{
    char detail[ESTCA_REASON_MAX];
    va_list args;
    va_start(args, fmt);
    vsnprintf(detail, sizeof detail, fmt, args);
    va_end(args);
    state->status =
        estca_fail(state->why, status, "%s:%d: %s", state->config->path, state->line, detail);
    return 0;
}

static bool name_in(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(name, list[i]) == 0)
            return true;
    }
    return false;
}

static char *join_path(const char *dir, const char *value)
{
    if (value[0] == '/')
        return strdup(value);
    char *out = NULL;
    if (asprintf(&out, "%s/%s", dir, value) < 0)
        return NULL;
    return out;
}

/* ---- sections: recognised as inih reads their header line, so that empty, unknown and
 * repeated sections are caught too (inih only reports keys). ---- */

static void *grow(void *array, size_t n, size_t size)
{
    void *bigger = realloc(array, (n + 1) * size);
    if (bigger != NULL)
        memset((char *)bigger + n * size, 0, size);
    return bigger;
}

static int open_ca_section(struct parse_state *state, const char *name)
{
    struct estca_config *config = state->config;
    if (config_find_ca(config, name) != NULL)
        return parse_fail(state, ESTCA_E_CONFIG, "duplicate section [ca:%s]", name);
    struct config_ca *cas = grow(config->cas, config->n_cas, sizeof *cas);
    if (cas == NULL)
        return parse_fail(state, ESTCA_E_NOMEM, "out of memory");
    config->cas = cas;
    struct config_ca *ca = &cas[config->n_cas];
    if ((ca->name = strdup(name)) == NULL)
        return parse_fail(state, ESTCA_E_NOMEM, "out of memory");
    config->n_cas++;
    state->section_base = ca;
    return 1;
}

static int open_label_section(struct parse_state *state, const char *name)
{
    struct estca_config *config = state->config;
    if (config_find_label(config, name) != NULL)
        return parse_fail(state, ESTCA_E_CONFIG, "duplicate section [label:%s]", name);
    struct config_label *labels = grow(config->labels, config->n_labels, sizeof *labels);
    if (labels == NULL)
        return parse_fail(state, ESTCA_E_NOMEM, "out of memory");
    config->labels = labels;
    struct config_label *label = &labels[config->n_labels];
    if ((label->name = strdup(name)) == NULL)
        return parse_fail(state, ESTCA_E_NOMEM, "out of memory");
    config->n_labels++;
    /* Outside every range: "not set yet" (apply_defaults). */
    label->csr_key_type = -1;
    label->csr_hash = -1;
    label->pop_linking = -1;
    label->csr_require_challenge_password = -1;
    label->manual_approval = -1;
    label->serverkeygen = -1;
    label->otp = -1;
    label->csr_ca_request = -1;
    label->cert_auth = -1;
    state->section_base = label;
    return 1;
}

/* [policy:NAME]: kept in file order, which decides which policy applies (authz.h). */
static int open_policy_section(struct parse_state *state, const char *name)
{
    struct estca_config *config = state->config;
    for (size_t i = 0; i < config->n_policies; i++) {
        if (strcmp(config->policies[i].name, name) == 0)
            return parse_fail(state, ESTCA_E_CONFIG, "duplicate section [policy:%s]", name);
    }
    struct config_policy *policies = grow(config->policies, config->n_policies, sizeof *policies);
    if (policies == NULL)
        return parse_fail(state, ESTCA_E_NOMEM, "out of memory");
    config->policies = policies;
    struct config_policy *policy = &policies[config->n_policies];
    if ((policy->name = strdup(name)) == NULL)
        return parse_fail(state, ESTCA_E_NOMEM, "out of memory");
    config->n_policies++;
    state->section_base = policy;
    return 1;
}

static int open_section(struct parse_state *state, const char *name)
{
    snprintf(state->section, sizeof state->section, "%s", name);
    if (strncmp(name, "ca:", 3) == 0 && name[3] != '\0') {
        state->section_kind = SECTION_CA;
        return open_ca_section(state, name + 3);
    }
    if (strncmp(name, "label:", 6) == 0 && name[6] != '\0') {
        state->section_kind = SECTION_LABEL;
        return open_label_section(state, name + 6);
    }
    if (strncmp(name, "policy:", 7) == 0 && name[7] != '\0') {
        state->section_kind = SECTION_POLICY;
        return open_policy_section(state, name + 7);
    }
    size_t n_globals = sizeof global_sections / sizeof *global_sections;
    size_t index = 0;
    while (index < n_globals && strcmp(name, global_sections[index]) != 0)
        index++;
    if (index == n_globals)
        return parse_fail(state, ESTCA_E_CONFIG, "unknown section [%s]", name);
    if (state->globals_seen & (1u << index))
        return parse_fail(state, ESTCA_E_CONFIG, "duplicate section [%s]", name);
    state->globals_seen |= 1u << index;
    state->section_kind = SECTION_GLOBAL;
    state->section_base = state->config;
    return 1;
}

/* If line is a section header as inih sees it ('[' after blanks, name up to ']'), opens it. */
static int maybe_open_section(struct parse_state *state, const char *line)
{
    if (state->line == 1 && strncmp(line, "\xEF\xBB\xBF", 3) == 0)
        line += 3; /* a UTF-8 byte order mark, which inih skips too */
    while (*line == ' ' || *line == '\t')
        line++;
    if (*line != '[')
        return 1;
    const char *end = strchr(line, ']');
    if (end == NULL)
        return 1; /* inih reports the syntax error */
    char name[INI_MAX_LINE];
    snprintf(name, sizeof name, "%.*s", (int)(end - line - 1), line + 1);
    return open_section(state, name);
}

/* True if fgets filled buf without reaching the end of the line. */
static bool is_cut_short(const char *buf, int cap, FILE *file)
{
    size_t len = strlen(buf);
    if (len < (size_t)cap - 1 || buf[len - 1] == '\n')
        return false;
    int next = getc(file);
    if (next == EOF)
        return false;
    ungetc(next, file);
    return true;
}

/* inih's line reader, wrapped to count lines (the handler is not told the line number) and to
 * refuse lines too long for inih's fixed buffer, which it would otherwise split in two. */
static char *read_line(char *buf, int cap, void *stream)
{
    struct parse_state *state = stream;
    if (state->status != ESTCA_OK)
        return NULL;
    if (fgets(buf, cap, state->file) == NULL)
        return NULL;
    state->line++;
    if (is_cut_short(buf, cap, state->file)) {
        parse_fail(state, ESTCA_E_CONFIG, "line longer than %d characters", cap - 2);
        return NULL;
    }
    if (!maybe_open_section(state, buf))
        return NULL;
    return buf;
}

/* ---- keys ---- */

static const struct key_spec *find_key(const struct parse_state *state, const char *name)
{
    const char *section = state->section_kind == SECTION_CA       ? "ca"
                          : state->section_kind == SECTION_LABEL  ? "label"
                          : state->section_kind == SECTION_POLICY ? "policy"
                                                                  : state->section;
    for (size_t i = 0; i < sizeof key_specs / sizeof *key_specs; i++) {
        if (strcmp(key_specs[i].section, section) == 0 && strcmp(key_specs[i].name, name) == 0)
            return &key_specs[i];
    }
    return NULL;
}

static int set_string(struct parse_state *state, char **field, const struct key_spec *spec,
                      const char *value)
{
    if (*field != NULL)
        return parse_fail(state, ESTCA_E_CONFIG, "duplicate key '%s' in [%s]", spec->name,
                          state->section);
    if (value[0] == '\0')
        return parse_fail(state, ESTCA_E_CONFIG, "empty value for '%s' in [%s]", spec->name,
                          state->section);
    bool is_path =
        spec->kind == VALUE_PATH || (spec->kind == VALUE_KEY && strncmp(value, "pkcs11:", 7) != 0);
    *field = is_path ? join_path(state->dir, value) : strdup(value);
    if (*field == NULL)
        return parse_fail(state, ESTCA_E_NOMEM, "out of memory");
    return 1;
}

static int parse_number(struct parse_state *state, const struct key_spec *spec, const char *value,
                        long *out)
{
    char *end = NULL;
    errno = 0;
    long number = strtol(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || number < spec->min || number > spec->max) {
        char range[64];
        snprintf(range, sizeof range, "%ld..%ld", spec->min, spec->max);
        return parse_fail(state, ESTCA_E_CONFIG, "'%s' must be a number in %s", spec->name, range);
    }
    *out = number;
    return 1;
}

static int set_number(struct parse_state *state, void *field, const struct key_spec *spec,
                      const char *value)
{
    long current = spec->kind == VALUE_INT ? *(int *)field : (long)*(size_t *)field;
    if (current >= spec->min && current <= spec->max)
        return parse_fail(state, ESTCA_E_CONFIG, "duplicate key '%s' in [%s]", spec->name,
                          state->section);
    long number = 0;
    if (!parse_number(state, spec, value, &number))
        return 0;
    if (spec->kind == VALUE_INT)
        *(int *)field = (int)number;
    else
        *(size_t *)field = (size_t)number;
    return 1;
}

static int set_enum(struct parse_state *state, int *field, const struct key_spec *spec,
                    const char *value)
{
    if (*field >= spec->min && *field <= spec->max)
        return parse_fail(state, ESTCA_E_CONFIG, "duplicate key '%s' in [%s]", spec->name,
                          state->section);
    for (size_t i = 0; spec->choices[i] != NULL; i++) {
        if (strcmp(value, spec->choices[i]) == 0) {
            *field = (int)spec->min + (int)i;
            return 1;
        }
    }
    char words[128] = "";
    for (size_t i = 0, used = 0; spec->choices[i] != NULL && used < sizeof words; i++) {
        int n = snprintf(words + used, sizeof words - used, "%s%s", i > 0 ? ", " : "",
                         spec->choices[i]);
        used += n > 0 ? (size_t)n : 0;
    }
    return parse_fail(state, ESTCA_E_CONFIG, "'%s' must be one of %s, not '%s'", spec->name, words,
                      value);
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    (void)section; /* known already from the header line, see read_line */
    struct parse_state *state = user;
    if (state->status != ESTCA_OK)
        return 0;
    if (state->section_kind == SECTION_NONE)
        return parse_fail(state, ESTCA_E_CONFIG, "key '%s' outside any section", name);
    const struct key_spec *spec = find_key(state, name);
    if (spec == NULL)
        return parse_fail(state, ESTCA_E_CONFIG, "unknown key '%s' in [%s]", name, state->section);
    void *field = (char *)state->section_base + spec->offset;
    if (spec->kind == VALUE_STRING || spec->kind == VALUE_PATH || spec->kind == VALUE_KEY)
        return set_string(state, field, spec, value);
    if (spec->kind == VALUE_ENUM)
        return set_enum(state, field, spec, value);
    return set_number(state, field, spec, value);
}

/* ---- defaults and validation ---- */

static int set_default_string(char **field, const char *value)
{
    if (*field == NULL && value != NULL && (*field = strdup(value)) == NULL)
        return ESTCA_E_NOMEM;
    return ESTCA_OK;
}

/* csr_require_challenge_password is pop_linking's old name (yes: required, no: the default);
 * kept so that existing files load, but one label may not say it both ways. */
static int check_pop_linking_alias(const struct estca_config *config, estca_reason *why)
{
    for (size_t i = 0; i < config->n_labels; i++) {
        const struct config_label *label = &config->labels[i];
        if (label->pop_linking >= 0 && label->csr_require_challenge_password >= 0)
            return estca_fail(why, ESTCA_E_CONFIG,
                              "%s: [label:%s]: csr_require_challenge_password is the old name "
                              "of pop_linking (yes = required); set only pop_linking",
                              config->path, label->name);
    }
    return ESTCA_OK;
}

static int apply_defaults(struct estca_config *config)
{
    if (config->threads < 1)
        config->threads = DEFAULT_THREADS;
    if (config->token_sessions < 1)
        config->token_sessions = DEFAULT_TOKEN_SESSIONS;
    if (config->max_body == 0)
        config->max_body = DEFAULT_MAX_BODY;
    if (config->request_timeout_ms < 1)
        config->request_timeout_ms = DEFAULT_REQUEST_TIMEOUT_MS;
    /* Half the workers: one address trickling its requests cannot take them all. */
    if (config->max_connections_per_address < 0)
        config->max_connections_per_address = config->threads > 1 ? config->threads / 2 : 1;
    for (size_t i = 0; i < config->n_labels; i++) {
        struct config_label *label = &config->labels[i];
        if (label->validity_days < 1)
            label->validity_days = DEFAULT_VALIDITY_DAYS;
        if (label->csr_key_type < 0)
            label->csr_key_type = CONFIG_CSR_KEY_NONE;
        if (label->csr_hash < 0)
            label->csr_hash = CONFIG_CSR_HASH_NONE;
        if (label->pop_linking < 0)
            label->pop_linking = label->csr_require_challenge_password == 1
                                     ? CONFIG_POP_LINKING_REQUIRED
                                     : CONFIG_POP_LINKING_VERIFY_IF_PRESENT;
        label->csr_require_challenge_password = label->pop_linking == CONFIG_POP_LINKING_REQUIRED;
        if (label->manual_approval < 0)
            label->manual_approval = 0;
        if (label->serverkeygen < 0)
            label->serverkeygen = 0;
        if (label->otp < 0)
            label->otp = 0;
        if (label->retry_after_seconds < 1)
            label->retry_after_seconds = DEFAULT_RETRY_AFTER_SECONDS;
        if (label->csr_ca_request < 0)
            label->csr_ca_request = CONFIG_CA_REQUEST_REFUSE;
        if (label->rsa_min_bits < 1)
            label->rsa_min_bits = DEFAULT_RSA_MIN_BITS;
        if (label->cert_auth < 0)
            label->cert_auth = 0;
    }
    for (size_t i = 0; i < config->n_cas; i++) {
        if (config->cas[i].crl_validity_hours < 1)
            config->cas[i].crl_validity_hours = DEFAULT_CRL_VALIDITY_HOURS;
    }
    if (config->audit_checkpoint_every < 1)
        config->audit_checkpoint_every = DEFAULT_AUDIT_CHECKPOINT_EVERY;
    if (config->default_label == NULL && config->n_labels == 1 &&
        set_default_string(&config->default_label, config->labels[0].name) != ESTCA_OK)
        return ESTCA_E_NOMEM;
    if (set_default_string(&config->module_path, HSM_DEFAULT_MODULE) != ESTCA_OK ||
        set_default_string(&config->listen, DEFAULT_LISTEN) != ESTCA_OK)
        return ESTCA_E_NOMEM;
    return ESTCA_OK;
}

static int require(const struct estca_config *config, const void *value, const char *section,
                   const char *key, estca_reason *why)
{
    if (value != NULL)
        return ESTCA_OK;
    return estca_fail(why, ESTCA_E_CONFIG, "%s: [%s] needs '%s'", config->path, section, key);
}

static int validate_label_name(const struct estca_config *config, const char *name,
                               estca_reason *why)
{
    if (name_in(name, est_operations, sizeof est_operations / sizeof *est_operations))
        return estca_fail(why, ESTCA_E_CONFIG,
                          "%s: [label:%s]: a label may not be named after an EST operation",
                          config->path, name);
    if (strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") !=
        strlen(name))
        return estca_fail(why, ESTCA_E_CONFIG,
                          "%s: [label:%s]: a label name may contain only A-Z a-z 0-9 . _ -",
                          config->path, name);
    return ESTCA_OK;
}

static int validate_cas(const struct estca_config *config, estca_reason *why)
{
    for (size_t i = 0; i < config->n_cas; i++) {
        const struct config_ca *ca = &config->cas[i];
        char section[INI_MAX_LINE];
        snprintf(section, sizeof section, "ca:%s", ca->name);
        int rc = require(config, ca->key_uri, section, "key", why);
        if (rc == ESTCA_OK)
            rc = require(config, ca->certificate_file, section, "certificate", why);
        if (rc != ESTCA_OK)
            return rc;
    }
    return ESTCA_OK;
}

/* After a 202 the client re-posts later, on a new TLS connection, so a linked CSR changes
 * with the binding and is filed as a new request every time: it could never be issued. */
static int validate_pop_linking(const struct estca_config *config, const struct config_label *label,
                                estca_reason *why)
{
    if (label->pop_linking == CONFIG_POP_LINKING_REQUIRED && label->manual_approval == 1)
        return estca_fail(why, ESTCA_E_CONFIG,
                          "%s: [label:%s]: pop_linking = required cannot be combined with "
                          "approval = manual (the client's re-posted CSR carries a new "
                          "connection's binding, so it is never the approved one)",
                          config->path, label->name);
    return ESTCA_OK;
}

static int validate_labels(const struct estca_config *config, estca_reason *why)
{
    if (config->n_labels == 0)
        return estca_fail(why, ESTCA_E_CONFIG, "%s: no [label:NAME] section", config->path);
    for (size_t i = 0; i < config->n_labels; i++) {
        const struct config_label *label = &config->labels[i];
        int rc = validate_label_name(config, label->name, why);
        if (rc == ESTCA_OK)
            rc = validate_pop_linking(config, label, why);
        if (rc != ESTCA_OK)
            return rc;
        if (label->ca_name == NULL)
            return estca_fail(why, ESTCA_E_CONFIG, "%s: [label:%s] needs 'ca'", config->path,
                              label->name);
        if (config_find_ca(config, label->ca_name) == NULL)
            return estca_fail(why, ESTCA_E_CONFIG, "%s: [label:%s]: no section [ca:%s]",
                              config->path, label->name, label->ca_name);
    }
    if (config->default_label == NULL)
        return estca_fail(why, ESTCA_E_CONFIG,
                          "%s: [server] needs 'default_label' when there are several labels",
                          config->path);
    if (config_find_label(config, config->default_label) == NULL)
        return estca_fail(why, ESTCA_E_CONFIG, "%s: default_label: no section [label:%s]",
                          config->path, config->default_label);
    return ESTCA_OK;
}

static int validate(const struct estca_config *config, estca_reason *why)
{
    int rc = require(config, config->token_uri, "token", "uri", why);
    if (rc == ESTCA_OK)
        rc = require(config, config->tls_certificate_file, "server", "tls_certificate", why);
    if (rc == ESTCA_OK)
        rc = require(config, config->tls_key, "server", "tls_key", why);
    if (rc == ESTCA_OK)
        rc = require(config, config->ledger_path, "ledger", "path", why);
    if (rc == ESTCA_OK)
        rc = validate_cas(config, why);
    if (rc == ESTCA_OK)
        rc = validate_labels(config, why);
    if (rc == ESTCA_OK && config->audit_signer != NULL &&
        config_find_ca(config, config->audit_signer) == NULL)
        rc = estca_fail(why, ESTCA_E_CONFIG, "%s: [audit] signer: no section [ca:%s]", config->path,
                        config->audit_signer);
    return rc;
}

/* ---- loading ---- */

static int config_dir(const char *path, char *out, size_t cap, estca_reason *why)
{
    char absolute[PATH_MAX];
    if (realpath(path, absolute) == NULL)
        return estca_fail(why, ESTCA_E_CONFIG, "cannot open %s: %s", path, strerror(errno));
    char *slash = strrchr(absolute, '/');
    if (slash == absolute)
        slash++; /* the file is in / */
    *slash = '\0';
    snprintf(out, cap, "%s", absolute);
    return ESTCA_OK;
}

static int parse(struct parse_state *state, estca_reason *why)
{
    int rc = config_dir(state->config->path, state->dir, sizeof state->dir, why);
    if (rc != ESTCA_OK)
        return rc;
    state->file = fopen(state->config->path, "re");
    if (state->file == NULL)
        return estca_fail(why, ESTCA_E_CONFIG, "cannot open %s: %s", state->config->path,
                          strerror(errno));
    int line = ini_parse_stream(read_line, state, on_key, state);
    bool read_error = ferror(state->file);
    fclose(state->file);
    if (state->status != ESTCA_OK)
        return state->status;
    if (read_error)
        return estca_fail(why, ESTCA_E_CONFIG, "cannot read %s", state->config->path);
    if (line != 0)
        return estca_fail(why, ESTCA_E_CONFIG, "%s:%d: syntax error", state->config->path, line);
    return ESTCA_OK;
}

static struct estca_config *config_new(const char *path)
{
    struct estca_config *config = calloc(1, sizeof *config);
    if (config == NULL)
        return NULL;
    /* Outside the valid range: "not set yet", so a repeated key can be told apart. */
    config->threads = -1;
    config->request_timeout_ms = -1;
    config->max_connections_per_address = -1;
    if ((config->path = strdup(path)) == NULL) {
        free(config);
        return NULL;
    }
    return config;
}

int config_load(const char *path, struct estca_config **out, estca_reason *why)
{
    *out = NULL;
    if (path == NULL)
        return estca_fail(why, ESTCA_E_INVALID, "config_load: no path");
    struct estca_config *config = config_new(path);
    if (config == NULL)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    struct parse_state state = {.config = config, .status = ESTCA_OK, .why = why};
    int rc = parse(&state, why);
    if (rc == ESTCA_OK)
        rc = check_pop_linking_alias(config, why);
    if (rc == ESTCA_OK && apply_defaults(config) != ESTCA_OK)
        rc = estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    if (rc == ESTCA_OK)
        rc = validate(config, why);
    if (rc != ESTCA_OK) {
        config_free(config);
        return rc;
    }
    *out = config;
    return ESTCA_OK;
}

void config_free(struct estca_config *config)
{
    if (config == NULL)
        return;
    for (size_t i = 0; i < config->n_cas; i++) {
        free(config->cas[i].name);
        free(config->cas[i].key_uri);
        free(config->cas[i].certificate_file);
        free(config->cas[i].chain_file);
        free(config->cas[i].crl_url);
        free(config->cas[i].ca_issuers_url);
        free(config->cas[i].crl_file);
    }
    free(config->cas);
    for (size_t i = 0; i < config->n_labels; i++) {
        free(config->labels[i].name);
        free(config->labels[i].ca_name);
        free(config->labels[i].key_usage);
        free(config->labels[i].extended_key_usage);
        free(config->labels[i].allowed_dns);
        free(config->labels[i].subject_override);
        free(config->labels[i].client_ca);
        free(config->labels[i].client_crl);
        free(config->labels[i].ra_ca);
    }
    free(config->labels);
    for (size_t i = 0; i < config->n_policies; i++) {
        free(config->policies[i].name);
        free(config->policies[i].identities);
        free(config->policies[i].labels);
        free(config->policies[i].subject);
        free(config->policies[i].san);
    }
    free(config->policies);
    free(config->path);
    free(config->module_path);
    free(config->token_uri);
    free(config->pin_file);
    free(config->listen);
    free(config->tls_certificate_file);
    free(config->tls_key);
    free(config->default_label);
    free(config->ledger_path);
    free(config->users_file);
    free(config->crl_listen);
    free(config->metrics_listen);
    free(config->audit_path);
    free(config->audit_signer);
    free(config);
}

const struct config_ca *config_find_ca(const struct estca_config *config, const char *name)
{
    for (size_t i = 0; config != NULL && name != NULL && i < config->n_cas; i++) {
        if (strcmp(config->cas[i].name, name) == 0)
            return &config->cas[i];
    }
    return NULL;
}

const struct config_label *config_find_label(const struct estca_config *config, const char *name)
{
    for (size_t i = 0; config != NULL && name != NULL && i < config->n_labels; i++) {
        if (strcmp(config->labels[i].name, name) == 0)
            return &config->labels[i];
    }
    return NULL;
}

const struct config_ca *config_audit_signer(const struct estca_config *config)
{
    if (config->audit_signer != NULL)
        return config_find_ca(config, config->audit_signer);
    const struct config_label *label = config_find_label(config, config->default_label);
    return label != NULL ? config_find_ca(config, label->ca_name) : NULL;
}
