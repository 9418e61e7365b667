import BlockingExecutor
import CRabbitMQ
import EventContracts
import Foundation
import ServiceConfig

/// One librabbitmq connection with one channel, confined to a thread of its own.
///
/// librabbitmq blocks and is not thread-safe: every method of this actor runs on its
/// `DedicatedThread`, never on the cooperative pool. Any error leaves the connection unusable;
/// the owner closes it and opens a new one (`EventPublisher` and `EventConsumer` do that).
actor AMQPConnection {
    private let thread: DedicatedThread
    private let configuration: AMQPConfiguration
    /// The heartbeat interval asked for at login; 0 asks for none.
    private let heartbeatSeconds: Int
    private var state: amqp_connection_state_t?
    private let channel: amqp_channel_t = 1
    /// Publisher-confirm delivery tags count from 1 per channel.
    private var lastPublishTag: UInt64 = 0

    nonisolated var unownedExecutor: UnownedSerialExecutor { thread.unownedExecutor }

    /// `heartbeats: false` for a publisher's connection. librabbitmq sends heartbeats only from
    /// inside its own calls, so the broker would drop a publisher that has been idle for two
    /// intervals, and the next publish after a quiet spell would pay a reconnect. A publisher
    /// needs none: every publish waits for its confirm with a deadline, so a dead connection shows
    /// itself there and the publish goes out again on a new one.
    init(configuration: AMQPConfiguration, heartbeats: Bool = true) {
        self.thread = DedicatedThread()
        self.configuration = configuration
        self.heartbeatSeconds = heartbeats ? configuration.heartbeatSeconds : 0
    }

    var isOpen: Bool { state != nil }

    // MARK: Lifecycle

    /// Connects, logs in and opens channel 1.
    func open() throws(EventBusError) {
        precondition(state == nil, "open() on an open connection")
        guard let connection = amqp_new_connection() else {
            throw EventBusError(.connectionFailed, "could not allocate a connection")
        }
        guard let socket = amqp_tcp_socket_new(connection) else {
            amqp_destroy_connection(connection)
            throw EventBusError(.connectionFailed, "could not create a TCP socket")
        }
        var timeout = swiftchat_timeval_ms(Int64(configuration.connectTimeout.milliseconds))
        let status = amqp_socket_open_noblock(socket, configuration.host, Int32(configuration.port), &timeout)
        guard status == AMQP_STATUS_OK.rawValue else {
            amqp_destroy_connection(connection)
            throw EventBusError(.connectionFailed, "connect to \(configuration.host):\(configuration.port): \(Self.statusText(status))")
        }
        let login = swiftchat_amqp_login_plain(
            connection, configuration.virtualHost, 0, 131_072, Int32(heartbeatSeconds),
            configuration.username, configuration.password
        )
        guard login.reply_type == AMQP_RESPONSE_NORMAL else {
            let reason = Self.replyText(login)
            amqp_destroy_connection(connection)
            throw EventBusError(.connectionFailed, "login: \(reason)")
        }
        // No RPC (declare, qos, consume) may hang forever on a half-dead socket.
        var rpcTimeout = swiftchat_timeval_ms(Int64(configuration.connectTimeout.milliseconds * 2))
        amqp_set_rpc_timeout(connection, &rpcTimeout)
        amqp_channel_open(connection, channel)
        let reply = amqp_get_rpc_reply(connection)
        guard reply.reply_type == AMQP_RESPONSE_NORMAL else {
            let reason = Self.replyText(reply)
            amqp_destroy_connection(connection)
            throw EventBusError(.connectionFailed, "channel.open: \(reason)")
        }
        state = connection
        lastPublishTag = 0
    }

    /// Closes politely when possible; always frees the C connection. Safe to call twice.
    func close() {
        guard let connection = state else { return }
        state = nil
        // Best effort: on a broken socket these fail fast, and the destroy below frees everything.
        var quick = swiftchat_timeval_ms(500)
        amqp_set_rpc_timeout(connection, &quick)
        _ = amqp_channel_close(connection, channel, Int32(AMQP_REPLY_SUCCESS))
        _ = amqp_connection_close(connection, Int32(AMQP_REPLY_SUCCESS))
        amqp_destroy_connection(connection)
    }

    /// Closes the connection and ends its thread. The actor must not be used afterwards.
    func shutdown() async {
        close()
        await thread.shutdown()
    }

    // MARK: Topology

    func declare(_ topology: Topology) throws(EventBusError) {
        let connection = try requireOpen()
        for exchange in topology.exchanges {
            withCStrings { strings in
                _ = amqp_exchange_declare(
                    connection, channel, strings.bytes(exchange.name), strings.bytes(exchange.kind.rawValue),
                    0, 1, 0, 0, amqp_table_t(num_entries: 0, entries: nil)
                )
            }
            try checkReply("exchange.declare \(exchange.name)")
        }
        for queue in topology.queues {
            _ = swiftchat_amqp_declare_queue(
                connection, channel, queue.name, queue.quorum ? 1 : 0, Int64(queue.deliveryLimit),
                queue.deadLetterExchange ?? "", queue.deadLetterRoutingKey ?? "", queue.transient ? 1 : 0,
                queue.singleActiveConsumer ? 1 : 0
            )
            try checkReply("queue.declare \(queue.name)")
            for binding in queue.bindings {
                withCStrings { strings in
                    _ = amqp_queue_bind(
                        connection, channel, strings.bytes(queue.name), strings.bytes(binding.exchange),
                        strings.bytes(binding.routingKey), amqp_table_t(num_entries: 0, entries: nil)
                    )
                }
                try checkReply("queue.bind \(queue.name) to \(binding.exchange)/\(binding.routingKey)")
            }
        }
    }

    /// How many consumers a queue has (a passive declare: nothing is created). A queue that does
    /// not exist closes the channel and throws.
    func consumerCount(_ name: String) throws(EventBusError) -> Int {
        let connection = try requireOpen()
        let ok = withCStrings { strings in
            amqp_queue_declare(connection, channel, strings.bytes(name), 1, 0, 0, 0, amqp_table_t(num_entries: 0, entries: nil))
        }
        try checkReply("queue.declare (passive) \(name)")
        return Int(ok?.pointee.consumer_count ?? 0)
    }

    /// Tells the broker this connection is alive. librabbitmq sends heartbeats only from inside its
    /// own calls, so a consumer that holds a batch for long (a slow handler, an outage) calls this
    /// meanwhile; otherwise the broker drops the connection and hands the batch to another.
    func sendHeartbeat() throws(EventBusError) {
        let connection = try requireOpen()
        var frame = amqp_frame_t()
        frame.frame_type = UInt8(AMQP_FRAME_HEARTBEAT)
        frame.channel = 0
        let status = amqp_send_frame(connection, &frame)
        guard status == AMQP_STATUS_OK.rawValue else { throw EventBusError(.connectionLost, "heartbeat: \(Self.statusText(status))") }
    }

    /// Deletes a queue (tests and tooling); returns the number of messages it held.
    func deleteQueue(_ name: String) throws(EventBusError) -> Int {
        let connection = try requireOpen()
        let ok = withCStrings { strings in amqp_queue_delete(connection, channel, strings.bytes(name), 0, 0) }
        try checkReply("queue.delete \(name)")
        return Int(ok?.pointee.message_count ?? 0)
    }

    // MARK: Publishing

    /// Puts the channel in confirm mode; required before `publish`.
    func enableConfirms() throws(EventBusError) {
        let connection = try requireOpen()
        amqp_confirm_select(connection, channel)
        try checkReply("confirm.select")
    }

    /// Publishes every message (persistent, mandatory) and waits for the broker's verdict on each.
    func publish(_ messages: [OutgoingMessage], confirmTimeout: Duration) throws(EventBusError) -> [PublishOutcome] {
        let connection = try requireOpen()
        guard !messages.isEmpty else { return [] }
        let firstTag = lastPublishTag + 1
        for message in messages {
            let status = withCStrings { strings in
                var properties = amqp_basic_properties_t()
                properties._flags = swiftchat_amqp_publish_flags
                properties.content_type = strings.bytes("application/json")
                properties.delivery_mode = 2  // persistent
                properties.message_id = strings.bytes(message.messageId)
                properties.type = strings.bytes(message.type)
                return message.body.withUnsafeBytes { buffer in
                    amqp_basic_publish(
                        connection, channel, strings.bytes(message.exchange), strings.bytes(message.routingKey),
                        1, 0, &properties,
                        amqp_bytes_t(len: buffer.count, bytes: UnsafeMutableRawPointer(mutating: buffer.baseAddress))
                    )
                }
            }
            guard status == AMQP_STATUS_OK.rawValue else {
                throw EventBusError(.connectionLost, "basic.publish: \(Self.statusText(status))")
            }
            lastPublishTag += 1
        }
        return try awaitConfirms(firstTag: firstTag, messages: messages, timeout: confirmTimeout)
    }

    /// Reads acks, nacks and returns until every tag in `firstTag...lastPublishTag` is settled.
    private func awaitConfirms(firstTag: UInt64, messages: [OutgoingMessage], timeout: Duration) throws(EventBusError) -> [PublishOutcome] {
        let connection = try requireOpen()
        var outcomes = [PublishOutcome?](repeating: nil, count: messages.count)
        var returnedIDs = Set<String>()
        var settled = 0
        let deadline = ContinuousClock.now + timeout

        func settle(tag: UInt64, multiple: Bool, outcome: PublishOutcome) {
            let range = multiple ? firstTag...tag : tag...tag
            for settledTag in range where settledTag >= firstTag {
                let index = Int(settledTag - firstTag)
                guard index < outcomes.count, outcomes[index] == nil else { continue }
                if outcome == .confirmed, returnedIDs.contains(messages[index].messageId) {
                    outcomes[index] = .unroutable
                } else {
                    outcomes[index] = outcome
                }
                settled += 1
            }
        }

        while settled < messages.count {
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero else {
                throw EventBusError(.confirmTimeout, "\(messages.count - settled) of \(messages.count) publishes unconfirmed")
            }
            var frame = amqp_frame_t()
            var wait = swiftchat_timeval_ms(Int64(max(1, remaining.milliseconds)))
            let status = amqp_simple_wait_frame_noblock(connection, &frame, &wait)
            if status == AMQP_STATUS_TIMEOUT.rawValue { continue }
            guard status == AMQP_STATUS_OK.rawValue else {
                throw EventBusError(.connectionLost, "waiting for confirms: \(Self.statusText(status))")
            }
            guard frame.frame_type == UInt8(AMQP_FRAME_METHOD) else { continue }
            let method = frame.payload.method
            switch method.id {
            case swiftchat_amqp_basic_ack_method:
                let ack = method.decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
                settle(tag: ack.delivery_tag, multiple: ack.multiple != 0, outcome: .confirmed)
            case swiftchat_amqp_basic_nack_method:
                let nack = method.decoded.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
                settle(tag: nack.delivery_tag, multiple: nack.multiple != 0, outcome: .nacked)
            case swiftchat_amqp_basic_return_method:
                // basic.return precedes the ack of the same message; its content carries the id.
                var returned = amqp_message_t()
                let reply = amqp_read_message(connection, frame.channel, &returned, 0)
                guard reply.reply_type == AMQP_RESPONSE_NORMAL else {
                    throw EventBusError(.connectionLost, "reading a returned message: \(Self.replyText(reply))")
                }
                if returned.properties._flags & swiftchat_amqp_message_id_flag != 0 {
                    returnedIDs.insert(Self.string(returned.properties.message_id))
                }
                amqp_destroy_message(&returned)
            case swiftchat_amqp_channel_close_method, swiftchat_amqp_connection_close_method:
                throw EventBusError(.channelClosed, "the broker closed the channel while confirming")
            default:
                continue
            }
        }
        amqp_maybe_release_buffers(connection)
        return outcomes.map { $0 ?? .nacked }
    }

    // MARK: Consuming

    func startConsuming(queue: String, prefetch: Int) throws(EventBusError) {
        let connection = try requireOpen()
        amqp_basic_qos(connection, channel, 0, UInt16(clamping: prefetch), 0)
        try checkReply("basic.qos")
        withCStrings { strings in
            _ = amqp_basic_consume(
                connection, channel, strings.bytes(queue), amqp_bytes_t(len: 0, bytes: nil),
                0, 0, 0, amqp_table_t(num_entries: 0, entries: nil)
            )
        }
        try checkReply("basic.consume \(queue)")
    }

    /// Waits up to `timeout` for a first delivery, then takes whatever else is already buffered,
    /// up to `limit`. Empty when nothing arrived in time.
    func nextDeliveries(limit: Int, timeout: Duration) throws(EventBusError) -> [Delivery] {
        var deliveries: [Delivery] = []
        guard let first = try nextDelivery(timeout: timeout) else { return deliveries }
        deliveries.append(first)
        while deliveries.count < limit, let next = try nextDelivery(timeout: .zero) {
            deliveries.append(next)
        }
        return deliveries
    }

    private func nextDelivery(timeout: Duration) throws(EventBusError) -> Delivery? {
        let connection = try requireOpen()
        amqp_maybe_release_buffers(connection)
        var envelope = amqp_envelope_t()
        var wait = swiftchat_timeval_ms(Int64(timeout.milliseconds))
        let reply = amqp_consume_message(connection, &envelope, &wait, 0)
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            defer { amqp_destroy_envelope(&envelope) }
            let message = envelope.message
            let body =
                message.body.len > 0 && message.body.bytes != nil
                ? Data(bytes: message.body.bytes, count: message.body.len)
                : Data()
            var properties = message.properties
            return Delivery(
                deliveryTag: envelope.delivery_tag,
                exchange: Self.string(envelope.exchange),
                routingKey: Self.string(envelope.routing_key),
                messageId: properties._flags & swiftchat_amqp_message_id_flag != 0 ? Self.string(properties.message_id) : nil,
                type: properties._flags & swiftchat_amqp_type_flag != 0 ? Self.string(properties.type) : nil,
                redelivered: envelope.redelivered != 0,
                deliveryCount: Int(swiftchat_amqp_delivery_count(&properties)),
                body: body
            )
        case AMQP_RESPONSE_LIBRARY_EXCEPTION where reply.library_error == AMQP_STATUS_TIMEOUT.rawValue:
            return nil
        case AMQP_RESPONSE_LIBRARY_EXCEPTION where reply.library_error == AMQP_STATUS_UNEXPECTED_STATE.rawValue:
            // A frame other than a delivery: a close or a consumer cancel ends this connection.
            var frame = amqp_frame_t()
            let status = amqp_simple_wait_frame(connection, &frame)
            guard status == AMQP_STATUS_OK.rawValue else {
                throw EventBusError(.connectionLost, "consume: \(Self.statusText(status))")
            }
            if frame.frame_type == UInt8(AMQP_FRAME_METHOD) {
                switch frame.payload.method.id {
                case swiftchat_amqp_channel_close_method, swiftchat_amqp_connection_close_method:
                    throw EventBusError(.channelClosed, "the broker closed the consuming channel")
                case swiftchat_amqp_basic_cancel_method:
                    throw EventBusError(.channelClosed, "the broker cancelled the consumer (queue deleted?)")
                default:
                    break
                }
            }
            return nil
        default:
            throw EventBusError(.connectionLost, "consume: \(Self.replyText(reply))")
        }
    }

    func ack(_ deliveryTag: UInt64, multiple: Bool = false) throws(EventBusError) {
        let status = amqp_basic_ack(try requireOpen(), channel, deliveryTag, multiple ? 1 : 0)
        guard status == AMQP_STATUS_OK.rawValue else {
            throw EventBusError(.connectionLost, "basic.ack: \(Self.statusText(status))")
        }
    }

    /// Negative acknowledgement: requeue to retry, or not to dead-letter it.
    func nack(_ deliveryTag: UInt64, requeue: Bool) throws(EventBusError) {
        let status = amqp_basic_nack(try requireOpen(), channel, deliveryTag, 0, requeue ? 1 : 0)
        guard status == AMQP_STATUS_OK.rawValue else {
            throw EventBusError(.connectionLost, "basic.nack: \(Self.statusText(status))")
        }
    }

    // MARK: Helpers

    private func requireOpen() throws(EventBusError) -> amqp_connection_state_t {
        guard let state else { throw EventBusError(.connectionLost, "the connection is closed") }
        return state
    }

    private func checkReply(_ operation: String) throws(EventBusError) {
        let reply = amqp_get_rpc_reply(try requireOpen())
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            throw EventBusError(.channelClosed, "\(operation): \(Self.replyText(reply))")
        default:
            throw EventBusError(.connectionLost, "\(operation): \(Self.replyText(reply))")
        }
    }

    private static func statusText(_ status: Int32) -> String {
        String(cString: amqp_error_string2(status))
    }

    private static func replyText(_ reply: amqp_rpc_reply_t) -> String {
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return "ok"
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            return statusText(reply.library_error)
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            var text = amqp_bytes_t()
            let code = swiftchat_amqp_close_reason(reply, &text)
            return "server closed (\(code)): \(string(text))"
        default:
            return "no reply"
        }
    }

    fileprivate static func string(_ bytes: amqp_bytes_t) -> String {
        guard bytes.len > 0, let pointer = bytes.bytes else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: pointer, count: bytes.len), as: UTF8.self)
    }
}

/// C strings that stay alive for the duration of one call into librabbitmq.
final class CStringArena {
    private var pointers: [UnsafeMutablePointer<CChar>] = []

    func bytes(_ string: String) -> amqp_bytes_t {
        let pointer = strdup(string)!
        pointers.append(pointer)
        return amqp_bytes_t(len: strlen(pointer), bytes: UnsafeMutableRawPointer(pointer))
    }

    deinit {
        for pointer in pointers { free(pointer) }
    }
}

func withCStrings<Result>(_ body: (CStringArena) throws -> Result) rethrows -> Result {
    let arena = CStringArena()
    return try withExtendedLifetime(arena) { try body(arena) }
}
