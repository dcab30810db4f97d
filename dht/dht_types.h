/* Postern's OpenDHT value types (dht_types.cpp, the one C++ file): private
 * to dht/, for dht.c and its tests. docs/dht.md ("On the public network")
 * says what a type changes where, docs/PROTOCOL.md lists the ids. */
#ifndef PST_DHT_TYPES_H
#define PST_DHT_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <opendht/opendht_c.h>

#ifdef __cplusplus
extern "C" {
#endif

/* OpenDHT value type ids (16 bits, carried in every value on the wire).
 * OpenDHT's own types use 0-8 and Jami's are small numbers too: ours sit in
 * a high block of their own. 0 (USER_DATA) is anything else we put. */
enum {
    PST_DHT_TYPE_RECORD = 0x7050,       /* key record, address claim, revocation */
    PST_DHT_TYPE_NOTIFICATION = 0x7051, /* Notification, NotificationDev (outer) */
    PST_DHT_TYPE_VOUCH = 0x7052,        /* Endorsement */
    PST_DHT_TYPE_DEVLIST = 0x7053,      /* DeviceList */
};

/* The type id Postern puts val under: one of PST_DHT_TYPE_*, from the record
 * type in its first bytes (pst_record_peek_type), or 0 when it is no record
 * of those kinds or over PST_DHT_VALUE_MAX. Pure; reads at most len bytes. */
uint16_t pst_dht__type_of(const uint8_t *val, size_t len);

/* Registers the four types (600 s, a store policy that takes only values of
 * at most PST_DHT_VALUE_MAX bytes whose record type is the type's) on a
 * running runner, so this node stores at our slots only what Postern puts.
 * Returns false, registering nothing, when the C wrapper's value handle is
 * not the std::shared_ptr<dht::Value> this file casts it to (checked on a
 * probe value): values must then not be tagged either. Only on a runner
 * that runs (dht_runner_run_config succeeded: OpenDHT's DhtRunner
 * dereferences its Dht); takes OpenDHT's lock and registers at once, so
 * never from inside an OpenDHT callback. */
bool pst_dht__types_register(void *runner, uint64_t *refused);

/* What the runner's own store holds for the network (every slot, its own
 * puts included): values and their bytes. Takes OpenDHT's lock: never from
 * inside an OpenDHT callback. */
void pst_dht__store_size(void *runner, uint64_t *values, uint64_t *bytes);

/* Sets / reads the type id of a value handle. Only after
 * pst_dht__types_register returned true once in this process. */
void pst_dht__value_set_type(dht_value *v, uint16_t type);
uint16_t pst_dht__value_type(const dht_value *v);

#ifdef __cplusplus
}
#endif
#endif
