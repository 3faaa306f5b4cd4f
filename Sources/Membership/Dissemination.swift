/// Updates waiting to be piggybacked, one per member (a newer update about a member
/// replaces the older one). Packets take the least-sent first; an update is dropped
/// after `limit` transmissions (SWIM's infection-style dissemination).
struct Dissemination: Sendable {
    private struct Entry: Sendable {
        var message: GossipMessage
        var transmits: Int
        /// Insertion order, to break ties deterministically.
        var order: UInt64
    }

    private var entries: [String: Entry] = [:]
    private var counter: UInt64 = 0

    var isEmpty: Bool { entries.isEmpty }
    var count: Int { entries.count }

    mutating func enqueue(_ message: GossipMessage) {
        guard let subject = message.subject else { return }
        counter += 1
        entries[subject] = Entry(message: message, transmits: 0, order: counter)
    }

    /// Up to `max` updates for one packet, counting this transmission; those that reach
    /// `limit` transmissions leave the queue. `skipping` names a member whose update the
    /// packet already carries.
    mutating func take(max: Int, limit: Int, skipping: String? = nil) -> [GossipMessage] {
        guard max > 0, !entries.isEmpty else { return [] }
        var chosen: [String] = []
        let rest = entries.filter { $0.key != skipping }
            .sorted { ($0.value.transmits, $0.value.order) < ($1.value.transmits, $1.value.order) }
        for (key, _) in rest.prefix(max) { chosen.append(key) }
        var messages: [GossipMessage] = []
        for key in chosen {
            messages.append(entries[key]!.message)
            entries[key]!.transmits += 1
            if entries[key]!.transmits >= limit { entries[key] = nil }
        }
        return messages
    }
}
