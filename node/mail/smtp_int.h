/* SMTP submission and LMTP, private to node/mail/: the listeners and each
 * session's connection, timers and input (smtp_server.c, shared by both),
 * submission's commands and AUTH (smtp_session.c), the message from DATA
 * into the spool and on into the send operation (smtp_data.c), the password
 * file (smtp_password.c); LMTP's unix socket (lmtp_server.c), its commands
 * (lmtp_session.c), its DATA into the Maildir (lmtp_data.c) and the
 * contact tier a message earns (lmtp_tier.c).
 * docs/SMTP.md and docs/LMTP.md are the user's side of it. */
#ifndef PST_SMTP_INT_H
#define PST_SMTP_INT_H

#include <sodium.h>
#include <uv.h>

#include "pst_log.h"
#include "pst_mail.h"
#include "pst_smtp.h"

#define SMTP_RBUF 8192u                   /* unprocessed input kept per session */
#define SMTP_WRITE_QUEUE_MAX 65536u       /* replies not yet taken: input waits */
#define SMTP_MESSAGES_MAX 100u            /* messages per session */
#define SMTP_RCPTS_MAX PST_SEND_RCPTS_MAX /* recipients per message (30) */
#define SMTP_AUTH_FAILURES_MAX 3u         /* then the session is closed */
#define SMTP_SESSIONS_HARD_MAX 1024u      /* beyond the setting: closed unanswered */
#define SMTP_BACKLOG 16
#define SMTP_SPOOL_BUF 65536u /* DATA is written to the spool in pieces this big */
/* A message up to this size is spooled in memory (a memfd), not in a file
 * on the disk: the file would cost an inode allocation and a deletion per
 * message for bytes that need no durability (the outbox copy is the durable
 * one). Bigger ones move to DIR/spool/ as they pass it. */
#define SMTP_MEM_SPOOL_MAX (1024u * 1024u)
#define SMTP_HEADER_KEEP 65536u /* header bytes kept to tell To/Cc from Bcc */
#define SMTP_HOSTNAME "localhost"
#define SMTP_REPLY_MAX 512u
#define SMTP_LINGER_MS 5000u /* a last reply the client does not take: closed after */

typedef enum {
    SS_CMD = 0,    /* reading commands */
    SS_AUTH_PLAIN, /* the next line is AUTH PLAIN's response */
    SS_AUTH_USER,  /* AUTH LOGIN: the user name */
    SS_AUTH_PASS,  /* AUTH LOGIN: the password */
    SS_DATA,       /* message bytes */
    SS_WAIT,       /* a lookup or the send runs: input waits */
    SS_CLOSING,    /* the last reply goes out, then the connection closes */
} smtp_state;

typedef struct {
    char addr[PST_SMTP_PATH_MAX + 1]; /* as given in RCPT TO */
    char query[PST_ADDRESS_MAX + 1];  /* what send looks up: fingerprint or address */
} smtp_rcpt;

struct pst_smtp_server;
struct lmtp_msg; /* lmtp_data.c: one LMTP message on its way into the Maildir */

typedef struct smtp_session {
    struct smtp_session *prev, *next;
    struct pst_smtp_server *srv;
    pst_node *node;
    union { /* srv->lmtp: a unix socket connection, else TCP */
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } conn;
    uv_timer_t timer;
    int refs; /* handles, writes, a lookup or send in flight */
    bool closing, reading;
    bool timed_out; /* smtp_total_timeout came while the node worked for it */
    uint64_t deadline_ms;
    smtp_state state;
    pst_smtp_in in;
    uint8_t rbuf[SMTP_RBUF];
    size_t roff, rlen; /* unprocessed input: rbuf[roff..rlen) */
    /* session */
    bool greeted, esmtp, authed;
    unsigned auth_failures, messages;
    char login_user[PST_SMTP_AUTH_FIELD_MAX + 1];
    /* transaction */
    bool have_mail, smtputf8;
    unsigned n_rcpts;
    smtp_rcpt rcpts[SMTP_RCPTS_MAX];
    smtp_rcpt pending; /* RCPT being looked up */
    /* DATA */
    int spool_fd;
    char spool_path[PST_PATH_MAX];
    uint8_t *spool_buf; /* SMTP_SPOOL_BUF */
    size_t spool_len;
    bool spool_failed;
    bool spool_mem;       /* spool_fd is a memfd, spool_path empty */
    uint64_t spool_total; /* bytes written to spool_fd */
    uint8_t *hdr;         /* first SMTP_HEADER_KEEP bytes of the message */
    size_t hdr_len;
    pst_send_op *op; /* the send started from this session, until its done */
    /* LMTP: the envelope sender and the message being written */
    char mail_from[PST_SMTP_PATH_MAX + 1];
    struct lmtp_msg *lm;
} smtp_session;

struct pst_smtp_server {
    pst_node *node;
    union {
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } listener;
    bool lmtp;        /* LMTP on a unix socket (else submission over TCP) */
    const char *name; /* "smtp" or "lmtp": counters and logs */
    bool closing;
    int refs; /* the listener and each session */
    unsigned n_sessions;
    smtp_session *head;
};

/* smtp_server.c */
/* A listener of either kind, its handle initialised (not bound), holding a
 * node handle reference; NULL when out of memory. */
struct pst_smtp_server *pst_smtp__server_new(pst_node *n, bool lmtp);
/* Starts accepting on the bound listener (uv_listen's result). */
int pst_smtp__server_listen(struct pst_smtp_server *srv);
/* Closes every session and the listener; frees at the last reference. */
void pst_smtp__server_close(struct pst_smtp_server *srv);
/* Queues one reply line (text without CRLF, a printf format); the session
 * closes once it has gone out when the state is SS_CLOSING. */
void pst_smtp__reply(smtp_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Queues a whole multi-line reply (lines with their CRLF). */
void pst_smtp__reply_raw(smtp_session *s, const char *text, size_t len);
/* The reply queued next is the last: the session closes once it has gone
 * out, or after SMTP_LINGER_MS when the client does not take it. */
void pst_smtp__end(smtp_session *s);
/* Ends the session now (no reply). */
void pst_smtp__close(smtp_session *s);
/* Drops a reference taken for an operation; frees at the last one. */
void pst_smtp__unref(smtp_session *s);
/* The node works for the client (a lookup or the send): SS_WAIT, input
 * waits, the idle timeout stops, the total one still runs (a recipient
 * lookup is then abandoned with 421, a send not yet committed is cancelled;
 * docs/SMTP.md). */
void pst_smtp__wait(smtp_session *s);
/* The wait (a lookup or the send) is over: input resumes. */
void pst_smtp__resume(smtp_session *s);
/* The largest message accepted (SIZE), in bytes. */
uint64_t pst_smtp__size_limit(const pst_node *n);

/* smtp_session.c: one event of the input machine, of either kind of
 * session (an LMTP session's lines and DATA go on to lmtp_*.c). */
/* who is our fingerprint (when bare_fingerprint_ok), FINGERPRINT@postern.invalid
 * for ours, or one of our addresses (compared normalised, without regard to
 * case). */
bool pst_smtp__is_own(const pst_node *n, const char *who, bool bare_fingerprint_ok);
void pst_smtp__event(smtp_session *s, const pst_smtp_event *ev);
/* Forgets the transaction (MAIL, RCPTs, spool). */
void pst_smtp__reset(smtp_session *s);

/* smtp_data.c */
/* After DATA's checks: opens the spool file and replies 354 (or refuses). */
void pst_smtp__data_begin(smtp_session *s);
void pst_smtp__data_bytes(smtp_session *s, const uint8_t *p, size_t n);
void pst_smtp__data_end(smtp_session *s, const pst_smtp_event *ev);
/* The session ends while its spool file is open or its send runs. */
void pst_smtp__data_abort(smtp_session *s);

/* The refusal of a message that broke one of DATA's rules (too big, a bare
 * CR or LF, a NUL, a non-ASCII header when !utf8_header_ok, a header
 * section over SMTP_HEADER_KEEP) with a counter reason, or NULL. */
const char *pst_smtp__data_refusal(const pst_smtp_event *ev, bool utf8_header_ok,
                                   const char **reason);

/* EHLO or LHLO: the session starts over and the extensions are listed
 * (LMTP's without AUTH); HELO: plain SMTP. */
void pst_smtp__greet(smtp_session *s, const pst_smtp_cmd *c);
/* MAIL's checks both kinds share (nested, messages per session, SIZE over
 * the limit): true when it refused (and replied). */
bool pst_smtp__mail_refused(smtp_session *s, const pst_smtp_cmd *c);
/* The transaction starts: 250. */
void pst_smtp__mail_accept(smtp_session *s, const pst_smtp_cmd *c);
/* The commands both kinds of session answer alike: DATA (its checks, then
 * the kind's own data_begin), RSET, NOOP, QUIT, VRFY, HELP; any other is
 * 502 (not offered). */
void pst_smtp__common_command(smtp_session *s, const pst_smtp_cmd *c);

/* lmtp_session.c: one parsed LMTP command (smtp_session.c parses it). */
void pst_lmtp__command(smtp_session *s, const pst_smtp_cmd *c);
/* lmtp_data.c */
void pst_lmtp__data_begin(smtp_session *s);
void pst_lmtp__data_bytes(smtp_session *s, const uint8_t *p, size_t n);
void pst_lmtp__data_end(smtp_session *s, const pst_smtp_event *ev);
/* Drops the message being written (its tmp file goes); safe when none. */
void pst_lmtp__data_abort(smtp_session *s);
/* lmtp_tier.c: the tier of the contact whose address is the message's From:
 * when the mail server's Authentication-Results vouches for it, else 0.
 * hdr[0..len) is the header section, scratch (cap >= len + 1) room to read
 * it. */
pst_store_tier pst_lmtp__contact_tier(pst_node *n, const uint8_t *hdr, size_t len, char *scratch,
                                      size_t cap);

/* smtp_password.c: given against HOME/smtp.password, in constant time. */
bool pst_smtp__password_ok(const char *home, const char *given);

#endif
