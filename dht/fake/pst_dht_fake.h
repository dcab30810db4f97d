/* pst_dht_fake: an in-process DHT behind pst_dht.h, for tests only.
 *
 * dht_fake.c implements every function of pst_dht.h without OpenDHT: the
 * pst_dht instances of one process that share a network id share one
 * in-memory network (values per slot, listeners), so two or three nodes in
 * one test process talk to each other. It is built as its own static
 * library (tests/unit/meson.build) and never links into posternd or postern.
 * docs/dht.md ("The fake DHT") says what it models and what it does not.
 *
 * The contract of pst_dht.h holds: every callback runs on the caller's loop,
 * from uv_run(), never from inside the call that registered it; done exactly
 * once; no callback when the call returned an error; PST_E_CLOSED on close.
 * Network semantics, in short: a put stores the value at once (identical
 * bytes at one slot are one value whose lifetime restarts) and reports it to
 * every listener of the slot; a get reports what the slot holds; get and put
 * end with PST_OK when another instance runs on the network, else PST_E_IO
 * (the value is still stored, as a lone OpenDHT node keeps it locally); a
 * ping of "127.0.0.1:PORT" (or "localhost", "::1") answers PST_OK when
 * another instance of the network has that port, else PST_E_TIMEOUT. A
 * network and its values are freed when its last instance closes.
 *
 * The functions below steer orderings a real network rarely produces. Call
 * them from the loop thread, between uv_run() calls or from callbacks. */
#ifndef PST_DHT_FAKE_H
#define PST_DHT_FAKE_H

#include <stdbool.h>
#include <stdint.h>

#include "pst_dht.h"

#define PST_DHT_FAKE_LIFETIME_MS 600000u /* a value expires this long after its last put */

/* The running instance of network whose stats say port4 == port (the port a
 * node reports in `status`), or NULL. */
pst_dht *pst_dht_fake_find(uint32_t network, uint16_t port);

/* Expires every value at slot now: removed, and each listener of the slot
 * gets it with expired = true. Returns how many values expired. */
unsigned pst_dht_fake_expire(uint32_t network, const uint8_t slot[PST_SLOT_BYTES]);

/* Sets how long a value lives after its last put (default
 * PST_DHT_FAKE_LIFETIME_MS; values already stored keep their expiry). */
void pst_dht_fake_set_lifetime(uint32_t network, uint32_t ms);

/* Duplicate delivery: while on, every value a get or a listen reports on
 * network is reported twice in a row. */
void pst_dht_fake_twice(uint32_t network, bool on);

/* Hands every value at slot to every listener of the slot again, as a
 * verbatim re-put would (without counting as a put). Returns the values. */
unsigned pst_dht_fake_redeliver(uint32_t network, const uint8_t slot[PST_SLOT_BYTES]);

/* Holds what d would receive (values of gets and listens, and the done of
 * gets, puts and pings) on slot, or on every slot when slot is NULL, until
 * pst_dht_fake_release. Held operations do not time out. A second hold
 * replaces the first one's filter. */
void pst_dht_fake_hold(pst_dht *d, const uint8_t *slot);
/* Events d holds now. */
unsigned pst_dht_fake_held(const pst_dht *d);
/* Ends the hold and hands what was held to the loop: in the order it came,
 * or with reverse the values in reverse order (the done callbacks still after
 * the values of their operation). Returns how many events were released. */
unsigned pst_dht_fake_release(pst_dht *d, bool reverse);

/* Ends the hold like pst_dht_fake_release, but the values held are lost on
 * the way (a packet OpenDHT never got): only the done callbacks are handed
 * to the loop. Returns how many values were lost. */
unsigned pst_dht_fake_lose(pst_dht *d);

/* d's listens go deaf (as a listen OpenDHT lost): they report nothing more,
 * but their handles stay valid for pst_dht_listen_cancel. Returns how many. */
unsigned pst_dht_fake_drop_listens(pst_dht *d);

/* Puts made on network at slot (NULL: at any slot) since the network began. */
uint64_t pst_dht_fake_puts(uint32_t network, const uint8_t *slot);

/* Gets made on network at slot since the network began. */
uint64_t pst_dht_fake_gets(uint32_t network, const uint8_t slot[PST_SLOT_BYTES]);

/* Values stored at slot now (expired ones not counted). */
unsigned pst_dht_fake_values(uint32_t network, const uint8_t slot[PST_SLOT_BYTES]);

#endif
