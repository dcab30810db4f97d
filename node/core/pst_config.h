/* Node configuration: defaults, DIR/postern.conf (INI, parsed by inih), and
 * command-line flags. Flags win over the file, the file over defaults. */
#ifndef PST_NODE_CONFIG_H
#define PST_NODE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "pst_home.h"
#include "pst_log.h"

#define PST_SEEDS_MAX 32
#define PST_SEED_STRLEN 263 /* host (<= 253) + ':' + port, NUL */
#define PST_ADVERTISE_STRLEN 256

/* OpenDHT network 0 is the public OpenDHT network (the one Jami uses); it is
 * Postern's public network and the default. Tests always pass a private id. */
#define PST_NETWORK_PUBLIC 0u
#define PST_DEFAULT_SEED "bootstrap.jami.net:4222"
#define PST_DEFAULT_POW_BITS 20u
#define PST_DEFAULT_REPUBLISH_S 300u           /* OpenDHT drops values after 600 s */
#define PST_DEFAULT_RECORD_LIFETIME_S 604800u  /* a key record is valid 7 days */
#define PST_DEFAULT_MESSAGE_LIFETIME_S 604800u /* a message is kept 7 days */
#define PST_DEFAULT_MAX_MESSAGE_BYTES (25ull * 1024 * 1024)
#define PST_DEFAULT_INBOX_POLL_S 60u
#define PST_DEFAULT_RENOTIFY_S 30u
#define PST_DEFAULT_FETCH_IDLE_S 30u
#define PST_DEFAULT_FETCH_TOTAL_S 600u
#define PST_DEFAULT_FETCH_CONNS_PER_IP 8u
#define PST_DEFAULT_VOUCH_DEPTH 1u
#define PST_DEFAULT_POW_ESCALATE_S 3600u
/* OpenDHT takes 1,024 requests a second from one address: hints cost no more */
#define PST_DEFAULT_HINT_RATE 1000u
#define PST_DEFAULT_HINT_PUT_DELAY_S 2u
/* SMTP submission (docs/SMTP.md): on by default, on loopback only */
#define PST_DEFAULT_SMTP_PORT 1587u
#define PST_DEFAULT_SMTP_ADDRESS "127.0.0.1"
#define PST_DEFAULT_SMTP_IDLE_S 300u   /* RFC 5321 4.5.3.2.7: at least 5 minutes */
#define PST_DEFAULT_SMTP_TOTAL_S 3600u /* any session ends after this */
#define PST_DEFAULT_SMTP_SESSIONS 8u   /* concurrent sessions */
#define PST_SMTP_ADDRESS_STRLEN 64
/* LMTP (docs/LMTP.md): a unix socket in the home */
#define PST_DEFAULT_LMTP_PATH "lmtp.sock"
/* Internet mail out through a smarthost (docs/SMARTHOST.md) */
#define PST_DEFAULT_SMARTHOST_GIVEUP_S (4u * 86400u) /* then a bounce to the sender */
#define PST_DEFAULT_SMARTHOST_RETRY_S 60u            /* first retry; doubles up to 1 h */
#define PST_DEFAULT_SMARTHOST_STAMP_BITS 20u         /* X-Hashcash bits per recipient */
#define PST_SMARTHOST_STRLEN 262u                    /* host:port */

typedef enum {
    PST_SMARTHOST_TLS_NONE = 0,
    PST_SMARTHOST_TLS_STARTTLS,
    PST_SMARTHOST_TLS_TLS,
} pst_smarthost_tls;

typedef struct {
    char home[PST_PATH_MAX];
    uint16_t port;       /* UDP port of the DHT; 0 = ephemeral */
    uint16_t fetch_port; /* TCP port of the fetch server; 0 = ephemeral */
    uint32_t network;    /* OpenDHT network id */
    char seeds[PST_SEEDS_MAX][PST_SEED_STRLEN];
    unsigned nseeds;
    char seeds_file[PST_PATH_MAX];
    pst_log_level log_level;
    bool peer_discovery;
    unsigned pow_bits;
    char advertise[PST_ADVERTISE_STRLEN]; /* host published in endpoints; "auto" */
    uint32_t republish_s;
    uint32_t record_lifetime_s;
    bool default_seeds; /* add PST_DEFAULT_SEED (public network only) */
    /* mail */
    uint32_t message_lifetime_s;    /* a sent message is kept and notified this long */
    uint64_t max_message_bytes;     /* largest message we send or accept (ciphertext) */
    uint32_t inbox_poll_s;          /* periodic get of our inbox slot (listen can miss) */
    uint32_t renotify_s;            /* first re-put of a notification; doubles up to 590 s */
    uint32_t fetch_idle_timeout_s;  /* a silent peer is dropped after this */
    uint32_t fetch_total_timeout_s; /* any fetch connection ends after this */
    uint32_t fetch_conns_per_ip;    /* concurrent fetch connections from one address */
    uint32_t pow_escalate_s;        /* --pow auto: stamp an unanswered stampless notification after
                                       this long; 0 = never */
    bool hints;                     /* send and take direct hints (docs/MAIL.md, "Hints") */
    uint32_t hint_rate;             /* hints taken per second from one address (and as a burst) */
    uint32_t hint_put_delay_s;      /* a hinted notification's first put waits this long */
    bool inbox_listen;              /* listen on our inbox slot; off only to test the other paths */
    /* SMTP submission: smtp_port 0 = off, unless smtp_port_any (an ephemeral
     * port, shown by `status`) */
    uint16_t smtp_port;
    bool smtp_port_any;
    /* smtp_port came from the file or a flag: a taken port is then fatal;
     * the default port taken only turns submission off, with a warning */
    bool smtp_port_chosen;
    char smtp_address[PST_SMTP_ADDRESS_STRLEN]; /* the listener's address */
    uint32_t smtp_idle_timeout_s;
    uint32_t smtp_total_timeout_s;
    uint32_t smtp_max_sessions;
    /* LMTP: the socket ("" = off; relative to the home unless absolute) and
     * where mail without a valid stamp goes: .Legacy, or refused */
    char lmtp_path[PST_PATH_MAX];
    bool lmtp_reject_unknown;
    /* the smarthost ("" = none: Internet recipients are refused) */
    char smarthost[PST_SMARTHOST_STRLEN];
    pst_smarthost_tls smarthost_tls;
    char smarthost_auth_file[PST_PATH_MAX]; /* "user:password", mode 0600; "" = no AUTH */
    char smarthost_ca_file[PST_PATH_MAX];   /* PEM CAs for TLS; "" = the system's store */
    uint32_t smarthost_giveup_s;
    uint32_t smarthost_retry_s;
    unsigned smarthost_stamp_bits;
    /* the authserv-id of the mail server in front: only its
     * Authentication-Results earn a contact's tier ("" = none ever does) */
    char lmtp_authserv_id[256];
    /* trust */
    unsigned vouch_depth; /* 0: vouches ignored; 1: vouched by a trusted contact = known; 2:
                             also vouched by someone such a vouch names */
} pst_node_config;

/* Fills cfg with defaults; home is resolved later. */
void pst_config_defaults(pst_node_config *cfg);

/* Which settings the command line gave; they override the file. */
typedef struct {
    pst_node_config values;
    bool home, port, fetch_port, network, seeds, seeds_file, log_level, peer_discovery, advertise,
        pow_bits, republish, inbox_poll, renotify, max_message_size, message_lifetime, pow_escalate;
    bool smtp_port, smtp_address, smtp_idle_timeout, smtp_total_timeout, smtp_max_sessions;
    bool lmtp, lmtp_unknown, lmtp_authserv_id;
    bool smarthost, smarthost_tls, smarthost_auth_file, smarthost_giveup, smarthost_retry,
        smarthost_stamp_bits, smarthost_ca_file;
} pst_config_flags;

void pst_config_flags_init(pst_config_flags *f);

/* Handles one common flag by its long name (without "--") and value.
 * Returns 0 when handled, PST_E_NOTFOUND when the name is not a common flag,
 * PST_E_INVAL (with a message in err) when the value is bad. */
int pst_config_flag(pst_config_flags *f, const char *name, const char *value, char *err,
                    size_t errcap);

/* Builds the final configuration: defaults, then DIR/postern.conf if it
 * exists, then the seeds file, then the flags. Resolves the home directory
 * (flag, POSTERN_HOME, ~/.local/share/postern). Errors name the file and
 * line in err. */
int pst_config_load(pst_node_config *cfg, const pst_config_flags *flags, char *err, size_t errcap);

/* Adds one "host:port" seed (validated); PST_E_BUSY when the list is full. */
int pst_config_add_seed(pst_node_config *cfg, const char *seed);

/* Splits "host:port" or "[v6]:port" into host and port strings. */
int pst_config_split_hostport(const char *s, char *host, size_t hostcap, char *port,
                              size_t portcap);

#endif
