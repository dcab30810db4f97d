/* The node's settings: defaults, postern.conf (inih), command-line flags
 * over both, and the seeds file (docs/CONFIG.md). */
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"
#include "pst_config.h"
#include "pst_error.h"

void pst_config_defaults(pst_node_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->network = PST_NETWORK_PUBLIC;
    cfg->log_level = PST_LOG_INFO;
    cfg->pow_bits = PST_DEFAULT_POW_BITS;
    snprintf(cfg->advertise, sizeof cfg->advertise, "auto");
    cfg->republish_s = PST_DEFAULT_REPUBLISH_S;
    cfg->record_lifetime_s = PST_DEFAULT_RECORD_LIFETIME_S;
    cfg->default_seeds = true;
    cfg->message_lifetime_s = PST_DEFAULT_MESSAGE_LIFETIME_S;
    cfg->max_message_bytes = PST_DEFAULT_MAX_MESSAGE_BYTES;
    cfg->inbox_poll_s = PST_DEFAULT_INBOX_POLL_S;
    cfg->renotify_s = PST_DEFAULT_RENOTIFY_S;
    cfg->fetch_idle_timeout_s = PST_DEFAULT_FETCH_IDLE_S;
    cfg->fetch_total_timeout_s = PST_DEFAULT_FETCH_TOTAL_S;
    cfg->fetch_conns_per_ip = PST_DEFAULT_FETCH_CONNS_PER_IP;
    cfg->vouch_depth = PST_DEFAULT_VOUCH_DEPTH;
    cfg->pow_escalate_s = PST_DEFAULT_POW_ESCALATE_S;
    cfg->hints = true;
    cfg->hint_rate = PST_DEFAULT_HINT_RATE;
    cfg->hint_put_delay_s = PST_DEFAULT_HINT_PUT_DELAY_S;
    cfg->inbox_listen = true;
    cfg->smtp_port = PST_DEFAULT_SMTP_PORT;
    snprintf(cfg->smtp_address, sizeof cfg->smtp_address, "%s", PST_DEFAULT_SMTP_ADDRESS);
    cfg->smtp_idle_timeout_s = PST_DEFAULT_SMTP_IDLE_S;
    cfg->smtp_total_timeout_s = PST_DEFAULT_SMTP_TOTAL_S;
    cfg->smtp_max_sessions = PST_DEFAULT_SMTP_SESSIONS;
    snprintf(cfg->lmtp_path, sizeof cfg->lmtp_path, "%s", PST_DEFAULT_LMTP_PATH);
    cfg->smarthost_giveup_s = PST_DEFAULT_SMARTHOST_GIVEUP_S;
    cfg->smarthost_retry_s = PST_DEFAULT_SMARTHOST_RETRY_S;
    cfg->smarthost_stamp_bits = PST_DEFAULT_SMARTHOST_STAMP_BITS;
}

void pst_config_flags_init(pst_config_flags *f) {
    memset(f, 0, sizeof *f);
    pst_config_defaults(&f->values);
}

int pst_config__parse_u64(const char *s, uint64_t max, uint64_t *out) {
    if (s == NULL || *s == '\0' || *s == '-')
        return PST_E_INVAL;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 0); /* accepts 0x... for network ids */
    if (errno != 0 || *end != '\0' || v > max)
        return PST_E_INVAL;
    *out = v;
    return PST_OK;
}

int pst_config__parse_bool(const char *s, bool *out) {
    if (!strcasecmp(s, "1") || !strcasecmp(s, "yes") || !strcasecmp(s, "true") ||
        !strcasecmp(s, "on")) {
        *out = true;
        return PST_OK;
    }
    if (!strcasecmp(s, "0") || !strcasecmp(s, "no") || !strcasecmp(s, "false") ||
        !strcasecmp(s, "off")) {
        *out = false;
        return PST_OK;
    }
    return PST_E_INVAL;
}

int pst_config_split_hostport(const char *s, char *host, size_t hostcap, char *port,
                              size_t portcap) {
    const char *colon;
    const char *h = s;
    size_t hlen;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return PST_E_INVAL;
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return PST_E_INVAL;
        hlen = (size_t)(colon - s);
        if (memchr(s, ':', hlen) != NULL) /* bare IPv6 needs brackets */
            return PST_E_INVAL;
    }
    uint64_t p;
    if (hlen == 0 || hlen >= hostcap || pst_config__parse_u64(colon + 1, 65535, &p) != PST_OK ||
        p == 0 || strlen(colon + 1) >= portcap)
        return PST_E_INVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    snprintf(port, portcap, "%s", colon + 1);
    return PST_OK;
}

int pst_config_add_seed(pst_node_config *cfg, const char *seed) {
    char host[PST_SEED_STRLEN], port[8];
    if (strlen(seed) >= PST_SEED_STRLEN ||
        pst_config_split_hostport(seed, host, sizeof host, port, sizeof port) != PST_OK)
        return PST_E_INVAL;
    for (unsigned i = 0; i < cfg->nseeds; i++)
        if (strcmp(cfg->seeds[i], seed) == 0)
            return PST_OK;
    if (cfg->nseeds >= PST_SEEDS_MAX)
        return PST_E_BUSY;
    snprintf(cfg->seeds[cfg->nseeds++], PST_SEED_STRLEN, "%s", seed);
    return PST_OK;
}

bool pst_config__name_is(const char *name, const char *underscored) {
    if (!strcmp(name, underscored))
        return true;
    size_t i = 0;
    for (; name[i] && underscored[i]; i++)
        if (name[i] != (underscored[i] == '_' ? '-' : underscored[i]))
            return false;
    return name[i] == underscored[i];
}

/* One setting by name, shared by the INI file and the flags. */
static int apply_setting(pst_node_config *cfg, const char *name, const char *value, char *err,
                         size_t errcap) {
    uint64_t v;
    bool b;
    if (!strcmp(name, "port") || !strcmp(name, "fetch-port") || !strcmp(name, "fetch_port")) {
        if (pst_config__parse_u64(value, 65535, &v) != PST_OK) {
            snprintf(err, errcap, "%s must be a port number 0-65535 (0 = any free port)", name);
            return PST_E_INVAL;
        }
        if (!strcmp(name, "port"))
            cfg->port = (uint16_t)v;
        else
            cfg->fetch_port = (uint16_t)v;
    } else if (!strcmp(name, "network")) {
        if (pst_config__parse_u64(value, UINT32_MAX, &v) != PST_OK) {
            snprintf(err, errcap, "network must be a 32-bit number (decimal or 0x hex)");
            return PST_E_INVAL;
        }
        cfg->network = (uint32_t)v;
    } else if (!strcmp(name, "seed")) {
        int rc = pst_config_add_seed(cfg, value);
        if (rc != PST_OK) {
            snprintf(err, errcap, "seed '%s' must be HOST:PORT (IPv6 as [ADDR]:PORT)%s", value,
                     rc == PST_E_BUSY ? "; too many seeds" : "");
            return PST_E_INVAL;
        }
    } else if (!strcmp(name, "seeds-file") || !strcmp(name, "seeds_file")) {
        snprintf(cfg->seeds_file, sizeof cfg->seeds_file, "%s", value);
    } else if (!strcmp(name, "log-level") || !strcmp(name, "log_level")) {
        if (pst_log_parse_level(value, &cfg->log_level) != PST_OK) {
            snprintf(err, errcap, "log level must be error, warn, info or debug");
            return PST_E_INVAL;
        }
    } else if (!strcmp(name, "peer-discovery") || !strcmp(name, "peer_discovery")) {
        if (pst_config__parse_bool(value, &b) != PST_OK) {
            snprintf(err, errcap, "%s must be yes or no", name);
            return PST_E_INVAL;
        }
        cfg->peer_discovery = b;
    } else if (!strcmp(name, "default-seeds") || !strcmp(name, "default_seeds")) {
        if (pst_config__parse_bool(value, &b) != PST_OK) {
            snprintf(err, errcap, "%s must be yes or no", name);
            return PST_E_INVAL;
        }
        cfg->default_seeds = b;
    } else if (!strcmp(name, "pow-bits") || !strcmp(name, "pow_bits")) {
        if (pst_config__parse_u64(value, 40, &v) != PST_OK) {
            snprintf(err, errcap, "pow bits must be 0-40");
            return PST_E_INVAL;
        }
        cfg->pow_bits = (unsigned)v;
    } else if (!strcmp(name, "advertise")) {
        if (strlen(value) == 0 || strlen(value) >= sizeof cfg->advertise) {
            snprintf(err, errcap, "advertise must be a host name or address, or auto");
            return PST_E_INVAL;
        }
        snprintf(cfg->advertise, sizeof cfg->advertise, "%s", value);
    } else if (!strcmp(name, "republish") || !strcmp(name, "republish_s")) {
        if (pst_config__parse_u64(value, 590, &v) != PST_OK || v < 1) {
            snprintf(err, errcap,
                     "republish must be 1-590 seconds (OpenDHT expires values at 600)");
            return PST_E_INVAL;
        }
        cfg->republish_s = (uint32_t)v;
    } else if (!strcmp(name, "record-lifetime") || !strcmp(name, "record_lifetime")) {
        if (pst_config__parse_u64(value, 30u * 86400u, &v) != PST_OK || v < 600) {
            snprintf(err, errcap, "record lifetime must be 600 s to 30 days");
            return PST_E_INVAL;
        }
        cfg->record_lifetime_s = (uint32_t)v;
    } else if (!strcmp(name, "message-lifetime") || !strcmp(name, "message_lifetime")) {
        if (pst_config__parse_u64(value, 90u * 86400u, &v) != PST_OK || v < 60) {
            snprintf(err, errcap, "message lifetime must be 60 s to 90 days");
            return PST_E_INVAL;
        }
        cfg->message_lifetime_s = (uint32_t)v;
    } else if (!strcmp(name, "max-message-size") || !strcmp(name, "max_message_size")) {
        if (pst_config__parse_u64(value, 64ull * 1024 * 1024, &v) != PST_OK || v < 1024) {
            snprintf(err, errcap, "max message size must be 1 KiB to 64 MiB (in bytes)");
            return PST_E_INVAL;
        }
        cfg->max_message_bytes = v;
    } else if (!strcmp(name, "inbox-poll") || !strcmp(name, "inbox_poll")) {
        if (pst_config__parse_u64(value, 3600, &v) != PST_OK || v < 1) {
            snprintf(err, errcap, "inbox poll must be 1-3600 seconds");
            return PST_E_INVAL;
        }
        cfg->inbox_poll_s = (uint32_t)v;
    } else if (!strcmp(name, "renotify")) {
        if (pst_config__parse_u64(value, 590, &v) != PST_OK || v < 1) {
            snprintf(err, errcap, "renotify must be 1-590 seconds");
            return PST_E_INVAL;
        }
        cfg->renotify_s = (uint32_t)v;
    } else if (!strcmp(name, "fetch_idle_timeout") || !strcmp(name, "fetch-idle-timeout")) {
        if (pst_config__parse_u64(value, 3600, &v) != PST_OK || v < 1) {
            snprintf(err, errcap, "fetch idle timeout must be 1-3600 seconds");
            return PST_E_INVAL;
        }
        cfg->fetch_idle_timeout_s = (uint32_t)v;
    } else if (!strcmp(name, "fetch_total_timeout") || !strcmp(name, "fetch-total-timeout")) {
        if (pst_config__parse_u64(value, 86400, &v) != PST_OK || v < 1) {
            snprintf(err, errcap, "fetch total timeout must be 1-86400 seconds");
            return PST_E_INVAL;
        }
        cfg->fetch_total_timeout_s = (uint32_t)v;
    } else if (!strcmp(name, "pow_escalate") || !strcmp(name, "pow-escalate")) {
        if (pst_config__parse_u64(value, 30u * 86400u, &v) != PST_OK) {
            snprintf(err, errcap, "pow escalate must be 0 (never) to 30 days, in seconds");
            return PST_E_INVAL;
        }
        cfg->pow_escalate_s = (uint32_t)v;
    } else if (!strcmp(name, "vouch_depth") || !strcmp(name, "vouch-depth")) {
        if (pst_config__parse_u64(value, 2, &v) != PST_OK) {
            snprintf(err, errcap, "vouch depth must be 0, 1 or 2");
            return PST_E_INVAL;
        }
        cfg->vouch_depth = (unsigned)v;
    } else if (!strcmp(name, "fetch_conns_per_ip") || !strcmp(name, "fetch-conns-per-ip")) {
        if (pst_config__parse_u64(value, 1024, &v) != PST_OK || v < 1) {
            snprintf(err, errcap, "fetch connections per IP must be 1-1024");
            return PST_E_INVAL;
        }
        cfg->fetch_conns_per_ip = (uint32_t)v;
    } else {
        return pst_config__apply_mail_setting(cfg, name, value, err, errcap);
    }
    return PST_OK;
}

int pst_config_flag(pst_config_flags *f, const char *name, const char *value, char *err,
                    size_t errcap) {
    if (!strcmp(name, "home")) {
        snprintf(f->values.home, sizeof f->values.home, "%s", value);
        f->home = true;
        return PST_OK;
    }
    int rc = apply_setting(&f->values, name, value, err, errcap);
    if (rc != PST_OK)
        return rc;
    if (!strcmp(name, "port"))
        f->port = true;
    else if (!strcmp(name, "fetch-port"))
        f->fetch_port = true;
    else if (!strcmp(name, "network"))
        f->network = true;
    else if (!strcmp(name, "seed"))
        f->seeds = true;
    else if (!strcmp(name, "seeds-file"))
        f->seeds_file = true;
    else if (!strcmp(name, "log-level"))
        f->log_level = true;
    else if (!strcmp(name, "peer-discovery"))
        f->peer_discovery = true;
    else if (!strcmp(name, "advertise"))
        f->advertise = true;
    else if (!strcmp(name, "pow-bits"))
        f->pow_bits = true;
    else if (!strcmp(name, "republish"))
        f->republish = true;
    else if (!strcmp(name, "inbox-poll"))
        f->inbox_poll = true;
    else if (!strcmp(name, "renotify"))
        f->renotify = true;
    else if (!strcmp(name, "max-message-size"))
        f->max_message_size = true;
    else if (!strcmp(name, "message-lifetime"))
        f->message_lifetime = true;
    else if (!strcmp(name, "pow-escalate"))
        f->pow_escalate = true;
    else if (!strcmp(name, "smtp-port"))
        f->smtp_port = true;
    else if (!strcmp(name, "smtp-address"))
        f->smtp_address = true;
    else if (!strcmp(name, "smtp-idle-timeout"))
        f->smtp_idle_timeout = true;
    else if (!strcmp(name, "smtp-total-timeout"))
        f->smtp_total_timeout = true;
    else if (!strcmp(name, "smtp-max-sessions"))
        f->smtp_max_sessions = true;
    else if (!strcmp(name, "lmtp"))
        f->lmtp = true;
    else if (!strcmp(name, "lmtp-unknown"))
        f->lmtp_unknown = true;
    else if (!strcmp(name, "smarthost"))
        f->smarthost = true;
    else if (!strcmp(name, "smarthost-tls"))
        f->smarthost_tls = true;
    else if (!strcmp(name, "smarthost-auth-file"))
        f->smarthost_auth_file = true;
    else if (!strcmp(name, "smarthost-ca-file"))
        f->smarthost_ca_file = true;
    else if (!strcmp(name, "smarthost-giveup"))
        f->smarthost_giveup = true;
    else if (!strcmp(name, "smarthost-retry"))
        f->smarthost_retry = true;
    else if (!strcmp(name, "smarthost-stamp-bits"))
        f->smarthost_stamp_bits = true;
    else if (!strcmp(name, "lmtp-authserv-id"))
        f->lmtp_authserv_id = true;
    return PST_OK;
}

typedef struct {
    pst_node_config *cfg;
    char *err;
    size_t errcap;
    const char *path;
    int rc;
} ini_ctx;

/* inih as packaged is built without line numbers in the handler: it returns
 * the line of the first rejected setting, and we add it to the message. */
static int on_ini_setting(void *user, const char *section, const char *name, const char *value) {
    ini_ctx *c = user;
    char why[256] = "";
    /* Settings may sit at the top or in a [node] section. */
    if (section[0] != '\0' && strcmp(section, "node") != 0) {
        snprintf(c->err, c->errcap, "unknown section [%s] (use [node] or none)", section);
        c->rc = PST_E_INVAL;
        return 0;
    }
    int rc = apply_setting(c->cfg, name, value, why, sizeof why);
    if (rc == PST_E_NOTFOUND) {
        snprintf(c->err, c->errcap, "unknown setting '%s' (see docs/CONFIG.md)", name);
        c->rc = PST_E_INVAL;
        return 0;
    }
    if (rc != PST_OK) {
        snprintf(c->err, c->errcap, "%s", why);
        c->rc = rc;
        return 0;
    }
    return 1;
}

static int load_seeds_file(pst_node_config *cfg, const char *path, char *err, size_t errcap) {
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errcap, "cannot open seeds file %s: %s", path, strerror(errno));
        return PST_E_IO;
    }
    char line[512];
    int lineno = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        lineno++;
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        char *end = p + strcspn(p, "#\r\n");
        while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        *end = '\0';
        if (*p == '\0')
            continue;
        if (pst_config_add_seed(cfg, p) != PST_OK) {
            snprintf(err, errcap, "%s:%d: seed '%s' must be HOST:PORT", path, lineno, p);
            fclose(f);
            return PST_E_INVAL;
        }
    }
    fclose(f);
    return PST_OK;
}

int pst_config_load(pst_node_config *cfg, const pst_config_flags *flags, char *err, size_t errcap) {
    pst_config_defaults(cfg);
    int rc = pst_home_resolve(flags->home ? flags->values.home : NULL, cfg->home, sizeof cfg->home);
    if (rc != PST_OK) {
        snprintf(err, errcap, "cannot find a home directory: set --home, POSTERN_HOME or HOME");
        return rc;
    }
    char path[PST_PATH_MAX];
    if (pst_home_path(cfg->home, PST_FILE_CONFIG, path, sizeof path) != PST_OK)
        return PST_E_NOSPACE;
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        char why[512] = "";
        ini_ctx c = {cfg, why, sizeof why, path, PST_OK};
        int line = ini_parse_file(f, on_ini_setting, &c);
        fclose(f);
        if (c.rc != PST_OK) {
            snprintf(err, errcap, "%s:%d: %s", path, line, why);
            return c.rc;
        }
        if (line != 0) {
            snprintf(err, errcap, "%s:%d: syntax error", path, line);
            return PST_E_INVAL;
        }
    }
    const pst_node_config *v = &flags->values;
    if (flags->port)
        cfg->port = v->port;
    if (flags->fetch_port)
        cfg->fetch_port = v->fetch_port;
    if (flags->network)
        cfg->network = v->network;
    if (flags->log_level)
        cfg->log_level = v->log_level;
    if (flags->peer_discovery)
        cfg->peer_discovery = v->peer_discovery;
    if (flags->advertise)
        snprintf(cfg->advertise, sizeof cfg->advertise, "%s", v->advertise);
    if (flags->pow_bits)
        cfg->pow_bits = v->pow_bits;
    if (flags->republish)
        cfg->republish_s = v->republish_s;
    if (flags->inbox_poll)
        cfg->inbox_poll_s = v->inbox_poll_s;
    if (flags->renotify)
        cfg->renotify_s = v->renotify_s;
    if (flags->max_message_size)
        cfg->max_message_bytes = v->max_message_bytes;
    if (flags->message_lifetime)
        cfg->message_lifetime_s = v->message_lifetime_s;
    if (flags->pow_escalate)
        cfg->pow_escalate_s = v->pow_escalate_s;
    if (flags->smtp_port) {
        cfg->smtp_port = v->smtp_port;
        cfg->smtp_port_any = v->smtp_port_any;
        cfg->smtp_port_chosen = true;
    }
    if (flags->smtp_address)
        snprintf(cfg->smtp_address, sizeof cfg->smtp_address, "%s", v->smtp_address);
    if (flags->smtp_idle_timeout)
        cfg->smtp_idle_timeout_s = v->smtp_idle_timeout_s;
    if (flags->smtp_total_timeout)
        cfg->smtp_total_timeout_s = v->smtp_total_timeout_s;
    if (flags->smtp_max_sessions)
        cfg->smtp_max_sessions = v->smtp_max_sessions;
    if (flags->lmtp)
        snprintf(cfg->lmtp_path, sizeof cfg->lmtp_path, "%s", v->lmtp_path);
    if (flags->lmtp_unknown)
        cfg->lmtp_reject_unknown = v->lmtp_reject_unknown;
    if (flags->smarthost)
        snprintf(cfg->smarthost, sizeof cfg->smarthost, "%s", v->smarthost);
    if (flags->smarthost_tls)
        cfg->smarthost_tls = v->smarthost_tls;
    if (flags->smarthost_auth_file)
        snprintf(cfg->smarthost_auth_file, sizeof cfg->smarthost_auth_file, "%s",
                 v->smarthost_auth_file);
    if (flags->smarthost_ca_file)
        snprintf(cfg->smarthost_ca_file, sizeof cfg->smarthost_ca_file, "%s", v->smarthost_ca_file);
    if (flags->smarthost_giveup)
        cfg->smarthost_giveup_s = v->smarthost_giveup_s;
    if (flags->smarthost_retry)
        cfg->smarthost_retry_s = v->smarthost_retry_s;
    if (flags->smarthost_stamp_bits)
        cfg->smarthost_stamp_bits = v->smarthost_stamp_bits;
    if (flags->lmtp_authserv_id)
        snprintf(cfg->lmtp_authserv_id, sizeof cfg->lmtp_authserv_id, "%s", v->lmtp_authserv_id);
    if (flags->seeds_file)
        snprintf(cfg->seeds_file, sizeof cfg->seeds_file, "%s", v->seeds_file);
    for (unsigned i = 0; i < v->nseeds; i++) {
        if (pst_config_add_seed(cfg, v->seeds[i]) != PST_OK) {
            snprintf(err, errcap, "too many seeds (at most %d)", PST_SEEDS_MAX);
            return PST_E_INVAL;
        }
    }
    if (cfg->seeds_file[0] != '\0') {
        rc = load_seeds_file(cfg, cfg->seeds_file, err, errcap);
        if (rc != PST_OK)
            return rc;
    }
    /* The built-in seed belongs to the public network only: a private
     * network never leaks a bootstrap packet to the internet. */
    if (cfg->network == PST_NETWORK_PUBLIC && cfg->default_seeds)
        (void)pst_config_add_seed(cfg, PST_DEFAULT_SEED);
    return PST_OK;
}
