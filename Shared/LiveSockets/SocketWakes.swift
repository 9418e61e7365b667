import NIOCore

/// Sockets whose handlers must be woken to write what was queued for them, gathered while a batch
/// of frames is queued (`LiveConnection.send(_:waking:)`) and woken together by `fire()`: one task
/// on each event loop wakes all of that loop's sockets, where waking each socket on its own would
/// put one task (and often one wake-up of the loop's thread) on its loop per frame.
public struct SocketWakes: Sendable {
    private var byLoop: [ObjectIdentifier: (loop: any EventLoop, connections: [LiveConnection])] = [:]

    public init() {}

    mutating func add(_ connection: LiveConnection) {
        let loop = connection.eventLoop
        byLoop[ObjectIdentifier(loop), default: (loop, [])].connections.append(connection)
    }

    /// Wakes every socket added, on its event loop. Every batch that adds sockets must end here:
    /// a socket added and never woken writes nothing more until it is closed.
    public func fire() {
        for (loop, connections) in byLoop.values {
            loop.execute {
                for connection in connections { connection.wakeNow() }
            }
        }
    }
}
