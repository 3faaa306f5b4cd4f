import Synchronization
import Transport

/// The live peer links' writers by node: where the replication thread sends its frames,
/// from its own thread. Loop 0 adds a link's writer once the link is authenticated and
/// removes it when the link closes.
final class PeerOutbox: Sendable {
    private let writers = Mutex<[String: SocketWriter]>([:])

    func set(_ writer: SocketWriter, for node: String) {
        writers.withLock { $0[node] = writer }
    }

    /// Removes `writer` if it is still the node's (a newer link may have replaced it).
    func remove(_ writer: SocketWriter, for node: String) {
        writers.withLock { if $0[node] === writer { $0[node] = nil } }
    }

    /// Each node's frames in one write. A node with no link gets nothing: Raft resends,
    /// and forwards were checked against the links before they were routed.
    func send(_ frames: [String: [PeerFrame]]) {
        for (node, list) in frames where !list.isEmpty {
            guard let writer = writers.withLock({ $0[node] }) else { continue }
            writer.write(PeerFrame.encoded(list))
        }
    }
}
