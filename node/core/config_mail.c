/* The settings of the mail world's doors: SMTP submission, LMTP and the
 * smarthost (docs/SMTP.md, docs/LMTP.md, docs/SMARTHOST.md), read like
 * every other setting (config.c calls in here for the names it does not
 * know). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"
#include "pst_authres.h"
#include "pst_config.h"
#include "pst_error.h"

/* The smarthost settings (docs/SMARTHOST.md). */
static int apply_smarthost_setting(pst_node_config *cfg, const char *name, const char *value,
                                   char *err, size_t errcap) {
    uint64_t v;
    if (pst_config__name_is(name, "smarthost")) {
        char host[PST_SMARTHOST_STRLEN], port[8];
        uint64_t p;
        if (strlen(value) >= sizeof cfg->smarthost ||
            pst_config_split_hostport(value, host, sizeof host, port, sizeof port) != PST_OK ||
            pst_config__parse_u64(port, 65535, &p) != PST_OK || p == 0) {
            snprintf(err, errcap, "%s must be HOST:PORT (e.g. smtp.example.org:587)", name);
            return PST_E_INVAL;
        }
        snprintf(cfg->smarthost, sizeof cfg->smarthost, "%s", value);
    } else if (pst_config__name_is(name, "smarthost_tls")) {
        if (!strcmp(value, "none"))
            cfg->smarthost_tls = PST_SMARTHOST_TLS_NONE;
        else if (!strcmp(value, "starttls"))
            cfg->smarthost_tls = PST_SMARTHOST_TLS_STARTTLS;
        else if (!strcmp(value, "tls"))
            cfg->smarthost_tls = PST_SMARTHOST_TLS_TLS;
        else {
            snprintf(err, errcap, "%s must be none, starttls or tls", name);
            return PST_E_INVAL;
        }
    } else if (pst_config__name_is(name, "smarthost_auth_file")) {
        if (value[0] == '\0' || strlen(value) >= sizeof cfg->smarthost_auth_file) {
            snprintf(err, errcap, "%s must be a file path", name);
            return PST_E_INVAL;
        }
        snprintf(cfg->smarthost_auth_file, sizeof cfg->smarthost_auth_file, "%s", value);
    } else if (pst_config__name_is(name, "smarthost_ca_file")) {
        if (value[0] == '\0' || strlen(value) >= sizeof cfg->smarthost_ca_file) {
            snprintf(err, errcap, "%s must be a file path", name);
            return PST_E_INVAL;
        }
        snprintf(cfg->smarthost_ca_file, sizeof cfg->smarthost_ca_file, "%s", value);
    } else if (pst_config__name_is(name, "smarthost_giveup") ||
               pst_config__name_is(name, "smarthost_retry")) {
        if (pst_config__parse_u64(value, 30u * 86400u, &v) != PST_OK || v < 1) {
            snprintf(err, errcap, "%s must be 1-2592000 seconds", name);
            return PST_E_INVAL;
        }
        if (pst_config__name_is(name, "smarthost_giveup"))
            cfg->smarthost_giveup_s = (uint32_t)v;
        else
            cfg->smarthost_retry_s = (uint32_t)v;
    } else if (pst_config__name_is(name, "smarthost_stamp_bits")) {
        if (pst_config__parse_u64(value, 30, &v) != PST_OK) {
            snprintf(err, errcap, "%s must be 0-30 (0: no X-Hashcash)", name);
            return PST_E_INVAL;
        }
        cfg->smarthost_stamp_bits = (unsigned)v;
    } else {
        return PST_E_NOTFOUND;
    }
    return PST_OK;
}

/* The SMTP submission and LMTP settings (docs/SMTP.md, docs/LMTP.md), then
 * the smarthost's. */
int pst_config__apply_mail_setting(pst_node_config *cfg, const char *name, const char *value,
                                   char *err, size_t errcap) {
    uint64_t v;
    bool b;
    if (pst_config__name_is(name, "hints") || pst_config__name_is(name, "inbox_listen")) {
        if (pst_config__parse_bool(value, &b) != PST_OK) {
            snprintf(err, errcap, "%s must be yes or no", name);
            return PST_E_INVAL;
        }
        if (pst_config__name_is(name, "hints"))
            cfg->hints = b;
        else
            cfg->inbox_listen = b;
    } else if (pst_config__name_is(name, "hint_rate")) {
        if (pst_config__parse_u64(value, 100000, &v) != PST_OK || v < 1) {
            snprintf(err, errcap, "%s must be 1-100000 hints a second", name);
            return PST_E_INVAL;
        }
        cfg->hint_rate = (uint32_t)v;
    } else if (pst_config__name_is(name, "hint_put_delay")) {
        if (pst_config__parse_u64(value, 60, &v) != PST_OK) {
            snprintf(err, errcap, "%s must be 0-60 seconds", name);
            return PST_E_INVAL;
        }
        cfg->hint_put_delay_s = (uint32_t)v;
    } else if (pst_config__name_is(name, "smtp_port")) {
        cfg->smtp_port_chosen = true;
        if (!strcmp(value, "any")) {
            cfg->smtp_port = 0;
            cfg->smtp_port_any = true;
            return PST_OK;
        }
        if (pst_config__parse_u64(value, 65535, &v) != PST_OK) {
            snprintf(err, errcap, "%s must be a port number 1-65535, 0 (off) or any", name);
            return PST_E_INVAL;
        }
        cfg->smtp_port = (uint16_t)v;
        cfg->smtp_port_any = false;
    } else if (pst_config__name_is(name, "smtp_address")) {
        unsigned char a[16];
        if (strlen(value) >= sizeof cfg->smtp_address ||
            (inet_pton(AF_INET, value, a) != 1 && inet_pton(AF_INET6, value, a) != 1)) {
            snprintf(err, errcap, "%s must be an IPv4 or IPv6 address (default %s)", name,
                     PST_DEFAULT_SMTP_ADDRESS);
            return PST_E_INVAL;
        }
        snprintf(cfg->smtp_address, sizeof cfg->smtp_address, "%s", value);
    } else if (pst_config__name_is(name, "smtp_idle_timeout") ||
               pst_config__name_is(name, "smtp_total_timeout")) {
        if (pst_config__parse_u64(value, 86400, &v) != PST_OK || v < 1) {
            snprintf(err, errcap, "%s must be 1-86400 seconds", name);
            return PST_E_INVAL;
        }
        if (pst_config__name_is(name, "smtp_idle_timeout"))
            cfg->smtp_idle_timeout_s = (uint32_t)v;
        else
            cfg->smtp_total_timeout_s = (uint32_t)v;
    } else if (pst_config__name_is(name, "smtp_max_sessions")) {
        if (pst_config__parse_u64(value, 1024, &v) != PST_OK || v < 1) {
            snprintf(err, errcap, "%s must be 1-1024", name);
            return PST_E_INVAL;
        }
        cfg->smtp_max_sessions = (uint32_t)v;
    } else if (pst_config__name_is(name, "lmtp")) {
        /* a unix socket path: sun_path holds 107 bytes */
        if (strcmp(value, "off") != 0 && (value[0] == '\0' || strlen(value) > 107)) {
            snprintf(err, errcap, "%s must be a socket path of 1-107 bytes, or off", name);
            return PST_E_INVAL;
        }
        snprintf(cfg->lmtp_path, sizeof cfg->lmtp_path, "%s", strcmp(value, "off") ? value : "");
    } else if (pst_config__name_is(name, "lmtp_unknown")) {
        if (strcmp(value, "folder") != 0 && strcmp(value, "reject") != 0) {
            snprintf(err, errcap, "%s must be folder or reject", name);
            return PST_E_INVAL;
        }
        cfg->lmtp_reject_unknown = strcmp(value, "reject") == 0;
    } else if (pst_config__name_is(name, "lmtp_authserv_id")) {
        if (value[0] != '\0' && !pst_authres_id_ok(value)) {
            snprintf(err, errcap,
                     "%s must be the mail server's authserv-id (its host name): 1-%u bytes of "
                     "printable ASCII without white space, ';', '(', ')' or '\"'",
                     name, PST_AUTHRES_ID_MAX);
            return PST_E_INVAL;
        }
        snprintf(cfg->lmtp_authserv_id, sizeof cfg->lmtp_authserv_id, "%s", value);
    } else {
        return apply_smarthost_setting(cfg, name, value, err, errcap);
    }
    return PST_OK;
}
