// librabbitmq (rabbitmq-c 0.11) as Swift sees it, plus tiny shims for what Swift cannot call
// directly: amqp_login is variadic, and building an amqp_table_t by hand is pointer-heavy.
#ifndef SWIFTCHAT_CRABBITMQ_SHIM_H
#define SWIFTCHAT_CRABBITMQ_SHIM_H

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <stdint.h>
#include <string.h>
#include <sys/time.h>

/// amqp_login with SASL PLAIN (amqp_login itself is variadic).
static inline amqp_rpc_reply_t swiftchat_amqp_login_plain(amqp_connection_state_t state,
                                                          const char *vhost, int channel_max,
                                                          int frame_max, int heartbeat,
                                                          const char *user,
                                                          const char *password) {
    return amqp_login(state, vhost, channel_max, frame_max, heartbeat, AMQP_SASL_METHOD_PLAIN,
                      user, password);
}

/// Declares a durable queue. `quorum` adds x-queue-type=quorum; a positive `delivery_limit` adds
/// x-delivery-limit; a non-empty `dead_letter_exchange` adds x-dead-letter-exchange (and the
/// routing key, when non-empty); `transient` makes a classic exclusive auto-delete queue; `single_active_consumer` lets one consumer at a time receive (order is kept, another takes over when it goes). Returns 0 on success; the RPC reply tells why otherwise.
static inline int swiftchat_amqp_declare_queue(amqp_connection_state_t state,
                                               amqp_channel_t channel, const char *name,
                                               int quorum, int64_t delivery_limit,
                                               const char *dead_letter_exchange,
                                               const char *dead_letter_routing_key,
                                               int transient, int single_active_consumer) {
    amqp_table_entry_t entries[5];
    int count = 0;
    if (quorum) {
        entries[count].key = amqp_cstring_bytes("x-queue-type");
        entries[count].value.kind = AMQP_FIELD_KIND_UTF8;
        entries[count].value.value.bytes = amqp_cstring_bytes("quorum");
        count++;
    }
    if (delivery_limit > 0) {
        entries[count].key = amqp_cstring_bytes("x-delivery-limit");
        entries[count].value.kind = AMQP_FIELD_KIND_I64;
        entries[count].value.value.i64 = delivery_limit;
        count++;
    }
    if (dead_letter_exchange != NULL && dead_letter_exchange[0] != '\0') {
        entries[count].key = amqp_cstring_bytes("x-dead-letter-exchange");
        entries[count].value.kind = AMQP_FIELD_KIND_UTF8;
        entries[count].value.value.bytes = amqp_cstring_bytes(dead_letter_exchange);
        count++;
        if (dead_letter_routing_key != NULL && dead_letter_routing_key[0] != '\0') {
            entries[count].key = amqp_cstring_bytes("x-dead-letter-routing-key");
            entries[count].value.kind = AMQP_FIELD_KIND_UTF8;
            entries[count].value.value.bytes = amqp_cstring_bytes(dead_letter_routing_key);
            count++;
        }
    }
    if (single_active_consumer) {
        entries[count].key = amqp_cstring_bytes("x-single-active-consumer");
        entries[count].value.kind = AMQP_FIELD_KIND_BOOLEAN;
        entries[count].value.value.boolean = 1;
        count++;
    }
    amqp_table_t arguments;
    arguments.num_entries = count;
    arguments.entries = entries;
    // transient: not durable, exclusive to this connection, deleted with it.
    amqp_queue_declare_ok_t *ok = amqp_queue_declare(state, channel, amqp_cstring_bytes(name),
                                                     0, transient ? 0 : 1, transient ? 1 : 0,
                                                     transient ? 1 : 0, arguments);
    return ok == NULL ? -1 : 0;
}

/// Reads the x-delivery-count header of a delivery (quorum queues set it on redelivery); 0 when absent.
static inline int64_t swiftchat_amqp_delivery_count(const amqp_basic_properties_t *properties) {
    if (!(properties->_flags & AMQP_BASIC_HEADERS_FLAG)) return 0;
    for (int i = 0; i < properties->headers.num_entries; i++) {
        const amqp_table_entry_t *entry = &properties->headers.entries[i];
        if (entry->key.len == 16 && memcmp(entry->key.bytes, "x-delivery-count", 16) == 0) {
            switch (entry->value.kind) {
            case AMQP_FIELD_KIND_I64: return entry->value.value.i64;
            case AMQP_FIELD_KIND_U64: return (int64_t)entry->value.value.u64;
            case AMQP_FIELD_KIND_I32: return entry->value.value.i32;
            case AMQP_FIELD_KIND_U32: return entry->value.value.u32;
            case AMQP_FIELD_KIND_I16: return entry->value.value.i16;
            case AMQP_FIELD_KIND_U16: return entry->value.value.u16;
            case AMQP_FIELD_KIND_I8: return entry->value.value.i8;
            case AMQP_FIELD_KIND_U8: return entry->value.value.u8;
            default: return 0;
            }
        }
    }
    return 0;
}

/// A timeval for the wait calls (Swift's `timeval` init differs across platforms).
static inline struct timeval swiftchat_timeval_ms(int64_t milliseconds) {
    struct timeval tv;
    tv.tv_sec = (time_t)(milliseconds / 1000);
    tv.tv_usec = (suseconds_t)((milliseconds % 1000) * 1000);
    return tv;
}

// Method ids and property flags are cast macros, which Swift does not import.
static const amqp_method_number_t swiftchat_amqp_basic_ack_method = AMQP_BASIC_ACK_METHOD;
static const amqp_method_number_t swiftchat_amqp_basic_nack_method = AMQP_BASIC_NACK_METHOD;
static const amqp_method_number_t swiftchat_amqp_basic_return_method = AMQP_BASIC_RETURN_METHOD;
static const amqp_method_number_t swiftchat_amqp_basic_cancel_method = AMQP_BASIC_CANCEL_METHOD;
static const amqp_method_number_t swiftchat_amqp_channel_close_method = AMQP_CHANNEL_CLOSE_METHOD;
static const amqp_method_number_t swiftchat_amqp_connection_close_method = AMQP_CONNECTION_CLOSE_METHOD;
static const amqp_flags_t swiftchat_amqp_publish_flags =
    AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
    AMQP_BASIC_TYPE_FLAG;
static const amqp_flags_t swiftchat_amqp_message_id_flag = AMQP_BASIC_MESSAGE_ID_FLAG;
static const amqp_flags_t swiftchat_amqp_type_flag = AMQP_BASIC_TYPE_FLAG;

/// The server's reason when it closed the channel or the connection; NULL text otherwise.
static inline uint16_t swiftchat_amqp_close_reason(amqp_rpc_reply_t reply, amqp_bytes_t *text) {
    text->len = 0;
    text->bytes = NULL;
    if (reply.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION || reply.reply.decoded == NULL) return 0;
    if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        amqp_connection_close_t *close = (amqp_connection_close_t *)reply.reply.decoded;
        *text = close->reply_text;
        return close->reply_code;
    }
    if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_t *close = (amqp_channel_close_t *)reply.reply.decoded;
        *text = close->reply_text;
        return close->reply_code;
    }
    return 0;
}

#endif
