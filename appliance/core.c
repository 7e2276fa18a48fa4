/* The CA core's start-up and the read-only lookups the EST front makes: everything is loaded
 * and checked in core_open; afterwards the core is immutable, so many threads may use it. */
#include "core_internal.h"

#include "authz.h"
#include "client_trust.h"

#include <openssl/obj_mac.h>
#include <stdlib.h>
#include <string.h>

const struct ca_instance *core_find_ca(const struct ca_core *core, const char *name)
{
    for (size_t i = 0; i < core->n_cas; i++) {
        if (strcmp(core->cas[i].name, name) == 0)
            return &core->cas[i];
    }
    return NULL;
}

static int load_cas(struct ca_core *core, const struct estca_config *config, estca_reason *why)
{
    core->cas = calloc(config->n_cas, sizeof *core->cas);
    if (core->cas == NULL && config->n_cas > 0)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    for (size_t i = 0; i < config->n_cas; i++) {
        /* Counted first, so that core_free clears a half-loaded instance too. */
        core->n_cas++;
        int rc = ca_instance_load(&core->cas[i], &config->cas[i], core->token, why);
        if (rc != ESTCA_OK)
            return rc;
    }
    return ESTCA_OK;
}

static void csr_attrs_from_config(const struct config_label *source, struct core_csr_attrs *out)
{
    static const int rsa_bits[] = {
        [CONFIG_CSR_KEY_RSA_2048] = 2048,
        [CONFIG_CSR_KEY_RSA_3072] = 3072,
        [CONFIG_CSR_KEY_RSA_4096] = 4096,
    };
    static const int hash_nids[] = {
        [CONFIG_CSR_HASH_NONE] = NID_undef,
        [CONFIG_CSR_HASH_SHA256] = NID_sha256,
        [CONFIG_CSR_HASH_SHA384] = NID_sha384,
        [CONFIG_CSR_HASH_SHA512] = NID_sha512,
    };
    *out = (struct core_csr_attrs){.key_algorithm = CORE_CSR_KEY_ANY, .hash_nid = NID_undef};
    switch (source->csr_key_type) {
    case CONFIG_CSR_KEY_RSA_2048:
    case CONFIG_CSR_KEY_RSA_3072:
    case CONFIG_CSR_KEY_RSA_4096:
        out->key_algorithm = CORE_CSR_KEY_RSA;
        out->rsa_bits = rsa_bits[source->csr_key_type];
        break;
    case CONFIG_CSR_KEY_EC_P256:
        out->key_algorithm = CORE_CSR_KEY_EC;
        out->ec_curve_nid = NID_X9_62_prime256v1;
        break;
    case CONFIG_CSR_KEY_EC_P384:
        out->key_algorithm = CORE_CSR_KEY_EC;
        out->ec_curve_nid = NID_secp384r1;
        break;
    default:
        break;
    }
    if (source->csr_hash > 0 && source->csr_hash <= CONFIG_CSR_HASH_SHA512)
        out->hash_nid = hash_nids[source->csr_hash];
    /* csr_require_challenge_password is pop_linking's old name; a configuration built by hand
     * may set only it. */
    if (source->pop_linking == CONFIG_POP_LINKING_REQUIRED ||
        source->csr_require_challenge_password == 1)
        out->pop_linking = CORE_POP_LINKING_REQUIRED;
    else if (source->pop_linking == CONFIG_POP_LINKING_OFF)
        out->pop_linking = CORE_POP_LINKING_OFF;
    else
        out->pop_linking = CORE_POP_LINKING_VERIFY_IF_PRESENT;
    out->challenge_password = out->pop_linking == CORE_POP_LINKING_REQUIRED;
    out->identity_linking = out->challenge_password;
    out->otp_challenge = source->otp == 1;
}

static int load_labels(struct ca_core *core, const struct estca_config *config, estca_reason *why)
{
    core->labels = calloc(config->n_labels, sizeof *core->labels);
    if (core->labels == NULL && config->n_labels > 0)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    for (size_t i = 0; i < config->n_labels; i++) {
        const struct config_label *source = &config->labels[i];
        struct core_label *label = &core->labels[i];
        core->n_labels++;
        if ((label->name = strdup(source->name)) == NULL)
            return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
        /* config_load has checked that the CA exists; a config built by hand may not have. */
        if ((label->ca = core_find_ca(core, source->ca_name)) == NULL)
            return estca_fail(why, ESTCA_E_CONFIG, "[label:%s]: no CA %s", source->name,
                              source->ca_name);
        label->validity_days = source->validity_days;
        label->manual_approval = source->manual_approval != 0;
        label->retry_after_seconds = source->retry_after_seconds;
        label->serverkeygen = source->serverkeygen != 0;
        label->otp = source->otp == 1;
        label->refuse_ca_request = source->csr_ca_request != CONFIG_CA_REQUEST_IGNORE;
        label->rsa_min_bits = source->rsa_min_bits > 0 ? source->rsa_min_bits : 2048;
        estca_reason profile_why = {{0}};
        int rc = profile_parse_key_usage(source->key_usage, &label->key_usage_bits, &profile_why);
        if (rc == ESTCA_OK)
            rc = profile_parse_extended_key_usage(source->extended_key_usage, label->eku_nids,
                                                  &label->n_eku, &profile_why);
        if (rc == ESTCA_OK && source->subject_override != NULL)
            rc = profile_parse_name(source->subject_override, &label->subject_override,
                                    &profile_why);
        if (rc == ESTCA_OK && source->allowed_dns != NULL &&
            (label->allowed_dns = strdup(source->allowed_dns)) == NULL)
            rc = estca_fail(&profile_why, ESTCA_E_NOMEM, "out of memory");
        if (rc != ESTCA_OK)
            return estca_fail(why, rc == ESTCA_E_INVALID ? ESTCA_E_CONFIG : rc, "[label:%s] %.400s",
                              source->name, profile_why.text);
        csr_attrs_from_config(source, &label->csr_attrs);
        rc = client_trust_load(config, source, label->ca->certificate, &label->client_trust, why);
        if (rc != ESTCA_OK)
            return rc;
        if (config->default_label != NULL && strcmp(label->name, config->default_label) == 0)
            core->default_label = label;
    }
    return ESTCA_OK;
}

int core_open(const struct estca_config *config, struct hsm_token *token, struct ca_core **out,
              estca_reason *why)
{
    *out = NULL;
    if (config == NULL || token == NULL)
        return estca_fail(why, ESTCA_E_INVALID, "core_open: bad arguments");
    struct ca_core *core = calloc(1, sizeof *core);
    if (core == NULL)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    core->token = token;
    int rc = load_cas(core, config, why);
    if (rc == ESTCA_OK)
        rc = load_labels(core, config, why);
    if (rc == ESTCA_OK && config->users_file != NULL)
        rc = credentials_load(config->users_file, &core->credentials, why);
    if (rc == ESTCA_OK)
        rc = ledger_open(config->ledger_path, &core->ledger, why);
    if (rc == ESTCA_OK)
        rc = core_audit_open(core, config, why);
    if (rc == ESTCA_OK)
        rc = authz_new(config, &core->authz, why);
    if (rc != ESTCA_OK) {
        core_free(core);
        return rc;
    }
    *out = core;
    return ESTCA_OK;
}

void core_free(struct ca_core *core)
{
    if (core == NULL)
        return;
    crl_publisher_free(core->crl_publisher); /* its thread uses the ledger and the CAs */
    audit_close(core->audit);                /* its last checkpoint is signed by a CA key */
    ledger_close(core->ledger);
    credentials_free(core->credentials);
    authz_free(core->authz);
    for (size_t i = 0; i < core->n_labels; i++) {
        free(core->labels[i].name);
        free(core->labels[i].allowed_dns);
        X509_NAME_free(core->labels[i].subject_override);
        client_trust_free(core->labels[i].client_trust);
    }
    free(core->labels);
    for (size_t i = 0; i < core->n_cas; i++)
        ca_instance_clear(&core->cas[i]);
    free(core->cas);
    free(core);
}

const struct core_label *core_find_label(const struct ca_core *core, const char *name)
{
    if (core == NULL)
        return NULL;
    if (name == NULL)
        return core->default_label;
    for (size_t i = 0; i < core->n_labels; i++) {
        if (strcmp(core->labels[i].name, name) == 0)
            return &core->labels[i];
    }
    return NULL;
}

size_t core_label_count(const struct ca_core *core)
{
    return core->n_labels;
}

const struct core_label *core_label_at(const struct ca_core *core, size_t index)
{
    return index < core->n_labels ? &core->labels[index] : NULL;
}

int core_label_retry_after(const struct core_label *label)
{
    return label->retry_after_seconds;
}

const char *core_label_name(const struct core_label *label)
{
    return label != NULL ? label->name : NULL;
}

STACK_OF(X509) *core_label_ca_certificates(const struct core_label *label)
{
    return label != NULL ? label->ca->chain : NULL;
}

void core_label_csr_attrs(const struct core_label *label, struct core_csr_attrs *out)
{
    if (label == NULL)
        *out = (struct core_csr_attrs){.key_algorithm = CORE_CSR_KEY_ANY, .hash_nid = NID_undef};
    else
        *out = label->csr_attrs;
}

bool core_csr_attrs_any(const struct core_csr_attrs *attrs)
{
    return attrs->key_algorithm != CORE_CSR_KEY_ANY || attrs->hash_nid != NID_undef ||
           attrs->challenge_password || attrs->identity_linking || attrs->otp_challenge;
}

int core_check_password(struct ca_core *core, const char *user, const char *password)
{
    if (core == NULL)
        return ESTCA_E_AUTH;
    int rc = core->credentials != NULL ? credentials_check(core->credentials, user, password)
                                       : ESTCA_E_AUTH;
    if (rc != ESTCA_OK)
        core_audit_login_failure(core, user);
    return rc;
}
