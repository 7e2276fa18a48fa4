/* The core's use of the audit log (audit.h): which decisions it records and with what. Every
 * issuance outcome (issued, pending, refused with the reason), every failed password check
 * and refused one-time code, and what estcad notes (start, token faults). Never a secret:
 * passwords, codes and keys are not passed here. */
#include "core_internal.h"

#include <openssl/bn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int core_audit_open(struct ca_core *core, const struct estca_config *config, estca_reason *why)
{
    if (config->audit_path == NULL)
        return ESTCA_OK;
    const struct config_ca *signer = config_audit_signer(config);
    const struct ca_instance *ca = signer != NULL ? core_find_ca(core, signer->name) : NULL;
    char name[160];
    snprintf(name, sizeof name, "ca:%s", ca != NULL ? ca->name : "-");
    return audit_open(config->audit_path, ca != NULL ? ca->key : NULL, name,
                      (unsigned)config->audit_checkpoint_every, &core->audit, why);
}

static void append(const struct ca_core *core, const char *event, json_t *fields)
{
    estca_reason ignored;
    if (core->audit != NULL && fields != NULL)
        audit_append(core->audit, event, fields, &ignored);
    json_decref(fields);
}

static char *serial_hex(X509 *certificate)
{
    BIGNUM *serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(certificate), NULL);
    char *hex = serial != NULL ? BN_bn2hex(serial) : NULL;
    BN_free(serial);
    return hex;
}

int core_audit_issuance(struct ca_core *core, const char *operation, const struct core_label *label,
                        const char *requester, int rc, X509 *certificate, const estca_reason *why)
{
    if (core == NULL || core->audit == NULL)
        return rc;
    json_t *fields = json_pack("{s:s, s:s, s:s}", "operation", operation, "label",
                               label != NULL ? label->name : "-", "requester",
                               requester != NULL ? requester : "-");
    if (rc == ESTCA_OK && certificate != NULL) {
        char *serial = serial_hex(certificate);
        char subject[256];
        X509_NAME_oneline(X509_get_subject_name(certificate), subject, sizeof subject);
        json_object_set_new(fields, "result", json_string("issued"));
        json_object_set_new(fields, "ca", json_string(label->ca->name));
        json_object_set_new(fields, "serial", json_string(serial != NULL ? serial : "?"));
        json_object_set_new(fields, "subject", json_string(subject));
        OPENSSL_free(serial);
    } else {
        json_object_set_new(fields, "result",
                            json_string(rc == ESTCA_E_PENDING ? "pending" : "refused"));
        json_object_set_new(fields, "status", json_string(estca_status_name(rc)));
        json_object_set_new(fields, "reason", json_string(why != NULL ? why->text : ""));
    }
    /* RFC 7030 §3.7: the EST front does not compare an RA's CSR with its own TLS channel
     * (the device made it on another); the record says so. */
    if (requester != NULL && strncmp(requester, "ra:", 3) == 0 && label != NULL &&
        label->csr_attrs.pop_linking != CORE_POP_LINKING_OFF)
        json_object_set_new(fields, "pop_linking",
                            json_string("not compared: RA request (RFC 7030 section 3.7)"));
    append(core, operation, fields);
    return rc;
}

void core_audit_authz(struct ca_core *core, const char *operation, const struct core_label *label,
                      const char *identity, const char *policy, int rc, const char *reason)
{
    if (core == NULL || core->audit == NULL)
        return;
    append(core, "authorization",
           json_pack(
               "{s:s, s:s, s:s, s:s, s:s, s:s}", "operation", operation != NULL ? operation : "-",
               "label", label != NULL ? label->name : "-", "identity",
               identity != NULL ? identity : "-", "policy", policy != NULL ? policy : "-", "result",
               rc == ESTCA_OK ? "allowed" : "refused", "reason", reason != NULL ? reason : ""));
}

void core_audit_login_failure(const struct ca_core *core, const char *user)
{
    append(core, "login-failed", json_pack("{s:s}", "user", user != NULL ? user : ""));
}

void core_audit_otp_refused(const struct ca_core *core, const struct core_label *label,
                            const char *who, const char *reason)
{
    append(core, "otp-refused",
           json_pack("{s:s, s:s, s:s}", "label", label != NULL ? label->name : "-", "credential",
                     who != NULL ? who : "-", "reason", reason != NULL ? reason : ""));
}

void core_audit_note(struct ca_core *core, const char *event, const char *detail)
{
    if (core == NULL || event == NULL)
        return;
    append(core, event, json_pack("{s:s}", "detail", detail != NULL ? detail : ""));
}

void core_audit_refusal(struct ca_core *core, const char *operation, const struct core_label *label,
                        const char *requester, const char *peer, int http_status,
                        const char *reason)
{
    if (core == NULL || core->audit == NULL)
        return;
    append(core, operation,
           json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:s}", "operation", operation, "label",
                     label != NULL ? label->name : "-", "requester",
                     requester != NULL ? requester : "-", "peer", peer != NULL ? peer : "-",
                     "result", "refused", "http_status", http_status, "reason",
                     reason != NULL ? reason : ""));
}
