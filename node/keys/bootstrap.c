/* Joining the network: every seed is handed to OpenDHT (which keeps trying
 * on its own) and pinged, so that we know whether anyone answered. When no
 * seed answers the node says so in one line, keeps running standalone and
 * pings again with exponential backoff until one does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pst_keys.h"
#include "pst_log.h"

typedef struct {
    pst_node *node;
    char seed[PST_SEED_STRLEN];
} ping_ctx;

static void schedule_retry(pst_node *n);

static void round_finished(pst_node *n) {
    if (n->bootstrapped || n->stopping)
        return;
    if (!n->warned_alone) {
        /* a one-shot's user hears it once, in the answer (lookup.c) */
        pst_log(n->mode == PST_NODE_ONESHOT ? PST_LOG_DEBUG : PST_LOG_WARN,
                "no seed answered (%u tried): running standalone; will retry with backoff "
                "and join as soon as one answers (check --seed / the seeds file and that "
                "the network id matches)",
                n->cfg.nseeds);
        n->warned_alone = true;
    }
    schedule_retry(n);
}

static void on_ping(void *user, int status) {
    ping_ctx *p = user;
    pst_node *n = p->node;
    n->seeds_pending--;
    if (status == PST_OK) {
        n->seeds_answered++;
        if (!n->bootstrapped) {
            n->bootstrapped = true;
            pst_log_info("joined the network through seed %s", p->seed);
            if (!n->stopping && n->id != NULL) {
                pst_publish_now(n);   /* puts made while alone reach the network now */
                n->publish_round = 0; /* and the fast re-puts start over */
            }
        }
    } else {
        pst_log_debug("seed %s did not answer: %s", p->seed, pst_strerror(status));
    }
    free(p);
    if (n->seeds_pending == 0 && status != PST_E_CLOSED)
        round_finished(n);
}

static void ping_all(pst_node *n) {
    n->seeds_answered = 0;
    for (unsigned i = 0; i < n->cfg.nseeds; i++) {
        char host[PST_SEED_STRLEN], port[8];
        if (pst_config_split_hostport(n->cfg.seeds[i], host, sizeof host, port, sizeof port) !=
            PST_OK)
            continue;
        (void)pst_dht_bootstrap(&n->dht, host, port);
        ping_ctx *p = calloc(1, sizeof *p);
        if (p == NULL)
            continue;
        p->node = n;
        snprintf(p->seed, sizeof p->seed, "%s", n->cfg.seeds[i]);
        if (pst_dht_ping(&n->dht, host, port, on_ping, p) != PST_OK) {
            free(p);
            continue;
        }
        n->seeds_pending++;
    }
    if (n->seeds_pending == 0)
        round_finished(n);
}

static void on_retry(uv_timer_t *t) {
    pst_node *n = t->data;
    if (!n->bootstrapped && !n->stopping && n->seeds_pending == 0)
        ping_all(n);
}

static void schedule_retry(pst_node *n) {
    uint32_t wait = n->bootstrap_backoff_ms;
    n->bootstrap_backoff_ms =
        wait * 2 > PST_BOOTSTRAP_BACKOFF_MAX_MS ? PST_BOOTSTRAP_BACKOFF_MAX_MS : wait * 2;
    pst_log_debug("next bootstrap attempt in %u ms", wait);
    uv_timer_start(&n->bootstrap_timer, on_retry, wait, 0);
}

void pst_bootstrap_start(pst_node *n) {
    uv_timer_init(n->loop, &n->bootstrap_timer);
    n->bootstrap_timer.data = n;
    pst_node_handle_ref(n);
    n->bootstrap_backoff_ms = PST_BOOTSTRAP_BACKOFF_MIN_MS;
    if (n->cfg.nseeds == 0) {
        /* not "joined": that takes another node's answer (pst_node_joined) */
        pst_log(n->mode == PST_NODE_ONESHOT ? PST_LOG_DEBUG : PST_LOG_INFO,
                "no seeds configured: running standalone; other nodes can bootstrap from this "
                "one");
        n->bootstrapped = true;
        return;
    }
    ping_all(n);
}

/* "a, b and c" for up to PST_SEEDS_SHOWN seeds, then "(N in all)". */
#define PST_SEEDS_SHOWN 3u

static void seeds_text(const pst_node *n, char *buf, size_t cap) {
    size_t len = 0;
    buf[0] = '\0';
    unsigned shown = n->cfg.nseeds < PST_SEEDS_SHOWN ? n->cfg.nseeds : PST_SEEDS_SHOWN;
    for (unsigned i = 0; i < shown && len < cap; i++) {
        const char *sep = i == 0 ? "" : i + 1 == shown && shown == n->cfg.nseeds ? " and " : ", ";
        int w = snprintf(buf + len, cap - len, "%s%s", sep, n->cfg.seeds[i]);
        if (w < 0)
            break;
        len += (size_t)w;
    }
    if (n->cfg.nseeds > shown && len < cap)
        snprintf(buf + len, cap - len, ", ... (%u in all)", n->cfg.nseeds);
}

const char *pst_bootstrap_describe_alone(const pst_node *n, char *why, size_t whycap, char *advice,
                                         size_t advicecap) {
    if (n->cfg.nseeds == 0) {
        if (n->mode == PST_NODE_ONESHOT) {
            snprintf(why, whycap, "no seed given, so there was no node to ask");
            snprintf(advice, advicecap,
                     "pass --seed HOST:PORT of a running node (or list seeds in postern.conf) "
                     "and check --network (%u)",
                     n->cfg.network);
        } else {
            struct pst_dht_stats ds;
            pst_dht_stats(&n->dht, &ds);
            snprintf(why, whycap, "this node has no seed and no other node has answered it");
            snprintf(advice, advicecap,
                     "restart it with --seed HOST:PORT of a running node, or start another node "
                     "with --seed pointing at this one (UDP port %u, network %u)",
                     ds.port4, n->cfg.network);
        }
        return "no_seed";
    }
    if (n->seeds_answered == 0) {
        char list[3 * PST_SEED_STRLEN + 64];
        seeds_text(n, list, sizeof list);
        snprintf(why, whycap, "no seed answered (%s tried)", list);
        snprintf(advice, advicecap,
                 "check --seed and --network (%u), and that the seed%s running and reachable "
                 "over UDP",
                 n->cfg.network, n->cfg.nseeds == 1 ? " is" : "s are");
        return "no_seed_answered";
    }
    snprintf(why, whycap, "no other node answered this node's last get or put");
    snprintf(advice, advicecap, "%s",
             n->mode == PST_NODE_ONESHOT
                 ? "try again in a moment"
                 : "try again in a moment; if it lasts, the seeds answer but route to nobody: "
                   "check 'postern status'");
    return "no_answer";
}
