/* Postern's OpenDHT value types: the only C++ in the tree (docs/dht.md, "On
 * the public network"). OpenDHT's C wrapper has no registerType, so this
 * file reaches the C++ objects behind its handles: libopendht-c 2.4.12
 * creates a dht_runner with `new dht::DhtRunner()` and a dht_value as
 * `new std::shared_ptr<dht::Value>(...)` (c/opendht.cpp). The second fact is
 * checked at run time before anything relies on it (types_usable below). */
#include <opendht/dhtrunner.h>
#include <opendht/value.h>

#include <opendht/opendht_c.h>

#include <chrono>
#include <cstring>
#include <memory>

#include "dht_types.h"
extern "C" {
#include "pst_error.h"
#include "pst_record.h" /* proto/ is C without C++ guards */
}

namespace {

using ValueSp = std::shared_ptr<dht::Value>;

/* What a storing node that knows our types holds, per type: what Postern
 * itself would put there. Cheap on purpose: it runs on OpenDHT's thread for
 * every store request, so a size check and a look at the record's first
 * bytes (proto/'s pst_record_peek_type), never a signature. */
bool fits(uint16_t type, const dht::Value &v) {
    if (v.data.empty() || v.data.size() > PST_DHT_VALUE_MAX)
        return false;
    return pst_dht__type_of(v.data.data(), v.data.size()) == type;
}

/* refused: the pst_dht's counter, which outlives the runner (close deletes
 * the runner first); written from OpenDHT's thread, hence the atomic add. */
dht::StorePolicy store_policy(uint16_t type, uint64_t *refused) {
    return
        [type, refused](dht::InfoHash, ValueSp &v, const dht::InfoHash &, const dht::SockAddr &) {
            if (v && fits(type, *v))
                return true;
            __atomic_fetch_add(refused, 1, __ATOMIC_RELAXED);
            return false;
        };
}

/* dht_value_new is `new std::shared_ptr<dht::Value>(make_shared<Value>(data,
 * size))` in 2.4.12: check it on a probe before casting a real value. */
bool probe_value_layout() noexcept {
    static const uint8_t probe[] = {'p', 's', 't', 0x5a, 0xa5};
    dht_value *cv = dht_value_new(probe, sizeof probe);
    if (!cv)
        return false;
    bool ok = false;
    const ValueSp *sp = reinterpret_cast<const ValueSp *>(cv);
    if (*sp && (*sp)->data.size() == sizeof probe &&
        std::memcmp((*sp)->data.data(), probe, sizeof probe) == 0 &&
        (*sp)->type == dht::ValueType::USER_DATA.id) {
        dht_data_view dv = dht_value_get_data(cv);
        ok = dv.data == (*sp)->data.data() && dv.size == sizeof probe;
    }
    dht_value_unref(cv);
    return ok;
}

} // namespace

extern "C" {

uint16_t pst_dht__type_of(const uint8_t *val, size_t len) {
    pst_rec_type rt;
    if (len > PST_DHT_VALUE_MAX || pst_record_peek_type(val, len, &rt) != PST_OK)
        return 0;
    switch (rt) {
    case PST_REC_KEY:
    case PST_REC_ADDRESS_CLAIM:
    case PST_REC_REVOCATION:
        return PST_DHT_TYPE_RECORD;
    case PST_REC_NOTIFICATION:
    case PST_REC_NOTIFICATION_DEV:
        return PST_DHT_TYPE_NOTIFICATION;
    case PST_REC_ENDORSEMENT:
        return PST_DHT_TYPE_VOUCH;
    case PST_REC_DEVICE_LIST:
        return PST_DHT_TYPE_DEVLIST;
    default:
        return 0;
    }
}

bool pst_dht__types_register(void *runner, uint64_t *refused) {
    if (!runner || !refused || !probe_value_layout())
        return false;
    auto *r = reinterpret_cast<dht::DhtRunner *>(runner);
    /* 600 s: the lifetime every re-put cadence is built for (republish 300 s,
     * notifications up to 590 s), the same as USER_DATA's, so a value lives
     * as long on a node that knows our types as on one that does not. The
     * default edit policy (refuse) stays: a value id cannot be given other
     * bytes, a re-put of the same bytes only refreshes it. */
    const auto life = std::chrono::seconds(600);
    /* Nothing may throw into C (out of memory would): a failure leaves the
     * values untyped, and a type registered before it only refuses values
     * that carry its id and break its policy. */
    try {
        r->registerType({PST_DHT_TYPE_RECORD, "postern-record", life,
                         store_policy(PST_DHT_TYPE_RECORD, refused)});
        r->registerType({PST_DHT_TYPE_NOTIFICATION, "postern-notification", life,
                         store_policy(PST_DHT_TYPE_NOTIFICATION, refused)});
        r->registerType(
            {PST_DHT_TYPE_VOUCH, "postern-vouch", life, store_policy(PST_DHT_TYPE_VOUCH, refused)});
        r->registerType({PST_DHT_TYPE_DEVLIST, "postern-devlist", life,
                         store_policy(PST_DHT_TYPE_DEVLIST, refused)});
    } catch (...) {
        return false;
    }
    return true;
}

void pst_dht__store_size(void *runner, uint64_t *values, uint64_t *bytes) {
    *values = *bytes = 0;
    if (!runner)
        return;
    try {
        auto held = reinterpret_cast<dht::DhtRunner *>(runner)->getStoreSize();
        *bytes = held.first;
        *values = held.second;
    } catch (...) {
        /* nothing known: zeros */
    }
}

void pst_dht__value_set_type(dht_value *v, uint16_t type) {
    if (v)
        (*reinterpret_cast<ValueSp *>(v))->type = type;
}

uint16_t pst_dht__value_type(const dht_value *v) {
    return v ? (*reinterpret_cast<const ValueSp *>(v))->type : 0;
}

} // extern "C"
