/* The smarthost queue, worker thread: one recipient's try. The copy for the
 * Internet gets an X-Hashcash v1 stamp minted for its recipient address
 * (the classic tool's format, pst_hashcash_mint) as its first header line;
 * libcurl's SMTP client (a well-kept one, rather than a second SMTP client
 * of our own) does the dialogue, dot-stuffing and TLS; the stored message
 * has LF line ends (the send's header filter), which become CRLF on the way
 * out. Past its give-up time, or refused for good (a 5xx), the recipient
 * gets a bounce into the sender's INBOX: a readable notice, the original
 * attached as message/rfc822. Touches no loop handle and no store. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pst_mailmsg.h"
#include "pst_mint.h"

#include "relay_int.h"

#define RELAY_IO_CHUNK 16384u

typedef struct {
    int fd;
    char prefix[PST_HASHCASH_STAMP_MAX + 32];
    size_t prefix_len, prefix_off;
    uint8_t in[RELAY_IO_CHUNK];
    size_t in_len, in_off;
    bool lf_pending; /* a '\r' went out for a '\n': the '\n' is next */
    bool failed;
} upload;

/* libcurl's read callback: the stamp line, then the message with each LF
 * sent as CRLF. */
static size_t on_read(char *out, size_t size, size_t nitems, void *user) {
    upload *u = user;
    size_t cap = size * nitems, n = 0;
    while (n < cap && u->prefix_off < u->prefix_len)
        out[n++] = u->prefix[u->prefix_off++];
    while (n < cap) {
        if (u->lf_pending) {
            out[n++] = '\n';
            u->lf_pending = false;
            continue;
        }
        if (u->in_off == u->in_len) {
            ssize_t r = read(u->fd, u->in, sizeof u->in);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0) {
                u->failed = true;
                return CURL_READFUNC_ABORT;
            }
            if (r == 0)
                break;
            u->in_len = (size_t)r;
            u->in_off = 0;
        }
        uint8_t c = u->in[u->in_off++];
        if (c == '\n') {
            out[n++] = '\r';
            u->lf_pending = true;
        } else {
            out[n++] = (char)c;
        }
    }
    return n;
}

static int on_progress(void *user, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
    (void)dt, (void)dn, (void)ut, (void)un;
    struct pst_relay *r = user;
    return atomic_load(&r->cancel) != 0; /* nonzero aborts the transfer */
}

static int open_body(const struct pst_relay *r, char *path, size_t cap) {
    char hex[2 * PST_HASH_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, r->row.msg_id, PST_HASH_BYTES);
    if (snprintf(path, cap, "%s/%s", r->dir, hex) >= (int)cap)
        return -1;
    return open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
}

static void set_result(struct pst_relay *r, relay_result res, const char *fmt, const char *a,
                       const char *b) {
    r->result = res;
    snprintf(r->err, sizeof r->err, fmt, a, b);
}

/* The failures of TLS itself: the handshake, the certificate or its name,
 * the CA file, STARTTLS not offered or refused. */
static bool is_tls_failure(CURLcode cc) {
    switch (cc) {
    case CURLE_USE_SSL_FAILED:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        return true;
    default:
        return false;
    }
}

/* Mints the stamp and talks to the smarthost. true when it refused for
 * good (a 5xx): the caller bounces. */
static bool try_send(struct pst_relay *r, const pst_node_config *cfg) {
    upload *u = calloc(1, sizeof *u);
    char path[PST_PATH_MAX];
    if (u == NULL) {
        set_result(r, RELAY_RETRY, "out of memory%s%s", "", "");
        return false;
    }
    u->fd = open_body(r, path, sizeof path);
    if (u->fd < 0) {
        /* the copy is gone (disk trouble): nothing can be sent any more */
        set_result(r, RELAY_BOUNCED, "the queued copy %.200s cannot be read: %.60s", path,
                   strerror(errno));
        free(u);
        return false;
    }
    /* an address the stamp format cannot carry (a ':' in a quoted local
     * part, too long) goes without a stamp rather than not at all */
    if (cfg->smarthost_stamp_bits > 0 && pst_hashcash_field_valid(r->row.rcpt, false)) {
        char stamp[PST_HASHCASH_STAMP_MAX + 1];
        pst_hashcash_mint_params p;
        memset(&p, 0, sizeof p);
        p.bits = cfg->smarthost_stamp_bits;
        p.resource = r->row.rcpt;
        p.now = r->now;
        randombytes_buf(p.rand, sizeof p.rand);
        p.cancel = &r->cancel;
        int rc = pst_hashcash_mint(&p, stamp, sizeof stamp);
        if (rc != PST_OK) {
            set_result(r, RELAY_RETRY, "cannot mint the X-Hashcash stamp: %s%s", pst_strerror(rc),
                       "");
            close(u->fd);
            free(u);
            return false;
        }
        u->prefix_len = (size_t)snprintf(u->prefix, sizeof u->prefix, "X-Hashcash: %s\r\n", stamp);
    }
    char from[PST_STORE_ADDRESS_MAX + 3], to[PST_STORE_ADDRESS_MAX + 3];
    char errbuf[CURL_ERROR_SIZE] = "";
    snprintf(from, sizeof from, "<%s>", r->row.sender);
    snprintf(to, sizeof to, "<%s>", r->row.rcpt);
    struct curl_slist *rcpts = curl_slist_append(NULL, to);
    CURL *c = curl_easy_init();
    bool permanent = false;
    if (c == NULL || rcpts == NULL) {
        set_result(r, RELAY_RETRY, "cannot start libcurl%s%s", "", "");
    } else {
        curl_easy_setopt(c, CURLOPT_URL, r->url);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
        curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
        curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpts);
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, u);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, RELAY_CONNECT_TIMEOUT_S);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, RELAY_TRANSFER_TIMEOUT_S);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, r);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
        /* STARTTLS or nothing: never a silent fall back to clear text.
         * The peer's certificate and host name are always checked (also
         * libcurl's defaults, set here so no later change drops them). */
        if (cfg->smarthost_tls != PST_SMARTHOST_TLS_NONE)
            curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
        if (cfg->smarthost_ca_file[0] != '\0')
            curl_easy_setopt(c, CURLOPT_CAINFO, cfg->smarthost_ca_file);
        if (r->cred != NULL) {
            char *colon = strchr(r->cred, ':');
            *colon = '\0'; /* restored below: the worker is the only user meanwhile */
            curl_easy_setopt(c, CURLOPT_USERNAME, r->cred);
            curl_easy_setopt(c, CURLOPT_PASSWORD, colon + 1);
            *colon = ':';
        }
        CURLcode cc = curl_easy_perform(c);
        long code = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        if (cc == CURLE_OK) {
            r->result = RELAY_SENT;
        } else if (is_tls_failure(cc)) {
            /* this node's configuration (smarthost_tls, smarthost_ca_file)
             * or the smarthost's certificate, not the message: retried,
             * whatever the last SMTP code was, and nothing went in clear */
            set_result(r, RELAY_RETRY,
                       "TLS to the smarthost failed (check smarthost_tls and "
                       "smarthost_ca_file): %.200s%s",
                       errbuf[0] ? errbuf : curl_easy_strerror(cc), "");
        } else {
            char what[64];
            snprintf(what, sizeof what, "%.40s (SMTP %ld)", curl_easy_strerror(cc), code);
            set_result(r, RELAY_RETRY, "%s: %.200s", what, errbuf[0] ? errbuf : cfg->smarthost);
            /* a 5xx refuses this message for good; a refused login is
             * this node's configuration, fixed by its user: retried */
            permanent = code >= 500 && code < 600 && cc != CURLE_LOGIN_DENIED;
        }
    }
    if (c)
        curl_easy_cleanup(c);
    curl_slist_free_all(rcpts);
    close(u->fd);
    free(u);
    return permanent;
}

/* ---- the bounce ---------------------------------------------------------- */

static void bounce(struct pst_relay *r, const char *why) {
    const pst_store_relay_row *row = &r->row;
    uint8_t id[PST_HASH_BYTES];
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, sizeof id);
    crypto_generichash_update(&h, (const uint8_t *)"postern-bounce", 14);
    crypto_generichash_update(&h, row->msg_id, PST_HASH_BYTES);
    crypto_generichash_update(&h, (const uint8_t *)row->rcpt, strlen(row->rcpt));
    crypto_generichash_final(&h, id, sizeof id);
    char base[PST_MAILDIR_BASE_BUFSIZE], path[PST_PATH_MAX], errs[256];
    pst_maildir_base_name(id, base);
    char reason[RELAY_ERR_MAX];
    snprintf(reason, sizeof reason, "%s", why);
    int fd = open_body(r, path, sizeof path);
    pst_maildir_writer *w = calloc(1, sizeof *w);
    int rc = w == NULL ? PST_E_NOMEM : pst_maildir_create(r->maildir, "", errs, sizeof errs);
    if (rc == PST_OK)
        rc = pst_maildir_open(w, r->maildir, "", base);
    if (rc != PST_OK) {
        set_result(r, RELAY_NO_BOUNCE, "cannot write the bounce: %s%s", pst_strerror(rc), "");
        if (fd >= 0)
            close(fd);
        free(w);
        return;
    }
    char date[PST_MAILMSG_DATE_BUFSIZE], hex[17], head[4096];
    (void)pst_mailmsg_format_date(r->now, date);
    sodium_bin2hex(hex, sizeof hex, id, 8);
    char tried[32] = "never";
    if (row->attempts > 0)
        snprintf(tried, sizeof tried, "%u time%s", row->attempts, row->attempts == 1 ? "" : "s");
    int hl = snprintf(head, sizeof head,
                      "From: Postern mail delivery <mailer-daemon@postern.invalid>\n"
                      "To: <%s>\n"
                      "Subject: Undelivered mail returned to sender: %s\n"
                      "Date: %s\n"
                      "Message-ID: <bounce-%s@postern.invalid>\n"
                      "Auto-Submitted: auto-replied\n"
                      "MIME-Version: 1.0\n"
                      "Content-Type: multipart/mixed; boundary=\"postern-bounce-%s\"\n"
                      "\n"
                      "--postern-bounce-%s\n"
                      "Content-Type: text/plain; charset=utf-8\n"
                      "\n"
                      "Your node could not deliver your message to <%s>\n"
                      "through the smarthost %s, and has given up.\n"
                      "\n"
                      "Reason: %s\n"
                      "Tried: %s; the give-up time (smarthost_giveup) is %u seconds after\n"
                      "submission.\n"
                      "\n"
                      "Your message is attached. Other recipients are not affected.\n"
                      "\n"
                      "--postern-bounce-%s\n"
                      "Content-Type: message/rfc822\n"
                      "Content-Disposition: attachment\n"
                      "\n",
                      row->sender, row->rcpt, date, hex, hex, hex, row->rcpt,
                      r->node->cfg.smarthost, reason, tried, r->node->cfg.smarthost_giveup_s, hex);
    rc = pst_maildir_write(w, head, hl < (int)sizeof head ? (size_t)hl : sizeof head - 1);
    uint8_t buf[RELAY_IO_CHUNK];
    for (ssize_t n = 1; rc == PST_OK && fd >= 0 && n > 0;) {
        n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            n = 1;
        else if (n < 0)
            rc = PST_E_IO;
        else if (n > 0)
            rc = pst_maildir_write(w, buf, (size_t)n);
    }
    if (rc == PST_OK) {
        hl = snprintf(head, sizeof head, "\n--postern-bounce-%s--\n", hex);
        rc = pst_maildir_write(w, head, (size_t)hl);
    }
    pst_maildir_loc loc;
    if (rc == PST_OK)
        rc = pst_maildir_commit(w, &loc);
    else
        pst_maildir_abort(w);
    if (fd >= 0)
        close(fd);
    free(w);
    if (rc == PST_OK || rc == PST_E_EXISTS) /* EXISTS: a crash came after the last bounce */
        set_result(r, RELAY_BOUNCED, "%s%s", reason, "");
    else
        set_result(r, RELAY_NO_BOUNCE, "cannot write the bounce: %s%s", pst_strerror(rc), "");
}

void pst_relay__work(uv_work_t *w) {
    struct pst_relay *r = w->data;
    const pst_node_config *cfg = &r->node->cfg;
    if (r->give_up) {
        char why[RELAY_ERR_MAX];
        snprintf(why, sizeof why, "not delivered within the give-up time%s%.240s",
                 r->row.error[0] ? "; last error: " : "", r->row.error);
        bounce(r, why);
        return;
    }
    if (try_send(r, cfg) || r->result == RELAY_BOUNCED) {
        char why[RELAY_ERR_MAX];
        snprintf(why, sizeof why, "the smarthost refused it: %.260s", r->err);
        bounce(r, why);
    }
}
