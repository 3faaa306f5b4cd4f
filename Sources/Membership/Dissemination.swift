/// Updates waiting to be piggybacked, one per member (a newer update about a member
/// replaces the older one). Packets take the least-sent first, oldest first among
/// equals; an update is dropped after `limit` transmissions (SWIM's infection-style
/// dissemination).
///
/// Entries sit in buckets by transmission count, each a FIFO, so taking k updates costs
/// O(k) however many are queued (after a join, every member queues the whole cluster).
struct Dissemination: Sendable {
    private struct Entry: Sendable {
        var message: GossipMessage
        var transmits: Int
        var version: UInt64
    }

    /// The live entry per member.
    private var entries: [String: Entry] = [:]
    /// Per transmission count, (member, version) in insertion order; stale versions are
    /// skipped when met.
    private var buckets: [[(subject: String, version: UInt64)]] = []
    private var heads: [Int] = []
    private var version: UInt64 = 0

    var isEmpty: Bool { entries.isEmpty }
    var count: Int { entries.count }

    mutating func enqueue(_ message: GossipMessage) {
        guard let subject = message.subject else { return }
        version += 1
        entries[subject] = Entry(message: message, transmits: 0, version: version)
        push(subject, version: version, bucket: 0)
    }

    private mutating func push(_ subject: String, version: UInt64, bucket: Int) {
        while buckets.count <= bucket {
            buckets.append([])
            heads.append(0)
        }
        buckets[bucket].append((subject, version))
    }

    /// Up to `max` updates for one packet, counting this transmission; those that reach
    /// `limit` transmissions leave the queue. `skipping` names a member whose update the
    /// packet already carries.
    mutating func take(max: Int, limit: Int, skipping: String? = nil) -> [GossipMessage] {
        guard max > 0, !entries.isEmpty else { return [] }
        var messages: [GossipMessage] = []
        var requeue: [(String, UInt64, Int)] = []
        var skipped: [(String, UInt64, Int)] = []
        var bucket = 0
        while messages.count < max && bucket < buckets.count {
            guard heads[bucket] < buckets[bucket].count else {
                buckets[bucket] = []
                heads[bucket] = 0
                bucket += 1
                continue
            }
            let (subject, version) = buckets[bucket][heads[bucket]]
            heads[bucket] += 1
            guard var entry = entries[subject], entry.version == version, entry.transmits == bucket else { continue }
            if subject == skipping {
                skipped.append((subject, version, bucket))
                continue
            }
            messages.append(entry.message)
            entry.transmits += 1
            if entry.transmits >= limit {
                entries[subject] = nil
            } else {
                entries[subject] = entry
                requeue.append((subject, version, entry.transmits))
            }
        }
        for (subject, version, bucket) in skipped { push(subject, version: version, bucket: bucket) }
        for (subject, version, bucket) in requeue { push(subject, version: version, bucket: bucket) }
        return messages
    }
}
