import ChaparCore
import Storage
import Transport

/// Where each publish goes and how its outcome comes back, on the replication thread.
///
/// A publish for a shard this node leads is proposed; one for a shard led elsewhere is
/// forwarded to the leader over the peer link; one whose shard has no known leader waits
/// (up to `noLeaderWaitMs`) for an election. Outcomes are precise about doubt:
/// - "not stored" only when it cannot be stored: no leader in time, the leader said it
///   is not the leader, or another term's entry took its log index;
/// - "outcome unknown" when the entry may still commit: the leader went silent or lost
///   its link after taking it, or it stayed uncommitted for `resolveWaitMs`.
final class PublishRouter {  // guarded by: the replication thread
    enum Origin {
        case local(PublishTicket)
        /// Forwarded by `node` under its request id.
        case remote(node: String, request: UInt64)
    }

    private struct Waiting {
        var input: AppendInput
        var ticket: PublishTicket
        var attempts: Int
        var deadline: Int64
    }

    /// The publishes proposed in one entry, in the entry's order.
    private struct Pending {
        var term: UInt64
        var origins: [Origin]
        var deadline: Int64
        /// What the entry holds, as applying it would decode it (see `proposed`).
        var inputs: [ProposedInput]
    }

    /// A publish as proposed: the record to apply and where its payload starts in the entry.
    /// Structs, not tuples, on this path: arrays of tuples are copied and destroyed element
    /// by element through the runtime's generic tuple witnesses (perf: ~10% of a leader's
    /// replication thread).
    struct ProposedInput {
        var input: AppendInput
        var payloadStart: Int
    }

    private struct Queued {
        var publish: ReplicatedPublish
        var origin: Origin
    }

    private struct Forwarded {
        var input: AppendInput
        var ticket: PublishTicket
        var shard: Int
        var node: String
        var attempts: Int
        var deadline: Int64
    }

    let context: ShardContext
    private var waiting: [Waiting] = []
    private var queued: [Int: [Queued]] = [:]
    private var pending: [Int: [UInt64: Pending]] = [:]
    private var forwarded: [UInt64: Forwarded] = [:]
    private var leaderHints: [Int: String] = [:]

    /// Where to send a request about a shard this node does not hold: the last leader a
    /// replica named while it is reachable, else any connected replica (which knows more).
    func bestReplica(_ shard: Int) -> String? {
        leaderHints[shard].flatMap { context.isConnected($0) ? $0 : nil }
            ?? context.replicas(of: shard).first { context.isConnected($0) }
    }
    private var nextRequest: UInt64 = 1
    private var settled: [(context: PublishTicket, outcome: AppendOutcome)] = []
    /// A publish bounced between nodes more often than this is refused: leadership is moving.
    static let attemptsMax = 4

    init(context: ShardContext) {
        self.context = context
    }

    var hasSettled: Bool { !settled.isEmpty }

    func takeSettled() -> [(context: PublishTicket, outcome: AppendOutcome)] {
        defer { settled = [] }
        return settled
    }

    /// Client publishes, in arrival order (taken as they are: no array of origins built).
    func route(local items: [(AppendInput, PublishTicket)], host: ShardHost, now: Int64) {
        routeInRuns(items, channel: \.0.channel, host: host, now: now) { item, shard, timestamp in
            let (input, ticket) = item
            let publish = ReplicatedPublish(channel: input.channel, producer: input.producer, timestamp: timestamp, payload: input.payload)
            return Queued(publish: publish, origin: .local(ticket))
        } elsewhere: { item, _ in
            route(item.0, .local(item.1), attempts: 0, host: host, now: now)
        }
    }

    /// Publishes other nodes forwarded here, in arrival order.
    func acceptForwarded(
        _ items: [(node: String, request: UInt64, shard: Int, publish: ReplicatedPublish)], host: ShardHost, now: Int64
    ) {
        routeInRuns(items, channel: \.publish.channel, host: host, now: now) { item, shard, timestamp in
            guard shard == item.shard else { return nil }
            var publish = item.publish
            publish.timestamp = timestamp
            return Queued(publish: publish, origin: .remote(node: item.node, request: item.request))
        } elsewhere: { item, shard in
            guard shard == item.shard else {
                let result = ForwardResult.notStored(reason: "channel is not in shard \(item.shard)", leader: "")
                return host.queue(.forwardResult(request: item.request, result: result), to: item.node)
            }
            route(item.publish.input, .remote(node: item.node, request: item.request), attempts: 0, host: host, now: now)
        }
    }

    /// Routes `items` in runs of one channel (the usual batch), looking the run's shard and
    /// leadership up once: per publish, that hashing cost more than queueing the publish.
    /// A run this node leads is queued as `queue` makes it (nil: `elsewhere` decides for
    /// that item); any other goes to `elsewhere`, with its shard.
    private func routeInRuns<Item>(
        _ items: [Item], channel: (Item) -> String, host: ShardHost, now: Int64,
        queue: (Item, Int, Int64) -> Queued?, elsewhere: (Item, Int) -> Void
    ) {
        let timestamp = WallClock.nowMs()
        var run: (channel: String, shard: Int, leads: Bool)?
        var batch: [Queued] = []
        func flush() {
            guard let shard = run?.shard, !batch.isEmpty else { return }
            queued[shard, default: []].append(contentsOf: batch)
            batch.removeAll(keepingCapacity: true)
        }
        for item in items {
            let name = channel(item)
            if run?.channel != name {
                flush()
                let shard = context.shard(of: name)
                run = (name, shard, leads(shard, host: host))
            }
            if run!.leads, let queued = queue(item, run!.shard, timestamp) {
                batch.append(queued)
            } else {
                elsewhere(item, run!.shard)
            }
        }
        flush()
    }

    /// This node leads `shard` and may take proposals for it. Reads through the group: a
    /// `let` of its `raft` would copy the whole Raft state (perf: 19% of a forwarding
    /// node's replication thread, one copy per forwarded publish).
    private func leads(_ shard: Int, host: ShardHost) -> Bool {
        guard let group = host.groups[shard] else { return false }
        return group.raft.role == .leader && group.raft.transferTarget == nil
    }

    private func route(_ input: AppendInput, _ origin: Origin, attempts: Int, host: ShardHost, now: Int64) {
        let shard = context.shard(of: input.channel)
        var leaderNode: String?
        if let group = host.groups[shard] {
            if leads(shard, host: host) {
                let publish = ReplicatedPublish(
                    channel: input.channel, producer: input.producer, timestamp: WallClock.nowMs(), payload: input.payload)
                queued[shard, default: []].append(Queued(publish: publish, origin: origin))
                return
            }
            leaderNode = group.raft.leader.flatMap { context.name(of: $0) }
        } else {
            // Not a replica: the last leader we heard of while it is reachable, else any
            // connected replica (which answers with a hint).
            leaderNode = bestReplica(shard)
        }
        switch origin {
        case .remote(let node, let request):
            // Forwarded publishes are not forwarded again: the sender retries with the hint.
            let result = ForwardResult.notStored(reason: "not the leader of shard \(shard)", leader: leaderNode ?? "")
            host.queue(.forwardResult(request: request, result: result), to: node)
        case .local(let ticket):
            if let node = leaderNode, node != context.localName, context.isConnected(node), attempts < Self.attemptsMax {
                let request = nextRequest
                nextRequest += 1
                forwarded[request] = Forwarded(
                    input: input, ticket: ticket, shard: shard, node: node, attempts: attempts + 1,
                    deadline: now + context.resolveWaitMs)
                let publish = ReplicatedPublish(
                    channel: input.channel, producer: input.producer, timestamp: 0, payload: input.payload)
                host.queue(.forward(request: request, shard: UInt32(shard), publish: publish), to: node)
            } else if attempts >= Self.attemptsMax {
                settled.append((ticket, .rejected(reason: "leadership of shard \(shard) kept moving")))
            } else {
                waiting.append(Waiting(input: input, ticket: ticket, attempts: attempts, deadline: now + context.noLeaderWaitMs))
            }
        }
    }

    /// Publishes waiting for a leader try again (each cycle, so an election is noticed).
    func retryWaiting(host: ShardHost, now: Int64) {
        guard !waiting.isEmpty else { return }
        let items = waiting
        waiting = []
        for item in items {
            if item.deadline <= now {
                let shard = context.shard(of: item.input.channel)
                settled.append((item.ticket, .rejected(reason: "shard \(shard) had no reachable leader for \(context.noLeaderWaitMs) ms")))
            } else {
                let before = waiting.count
                route(item.input, .local(item.ticket), attempts: item.attempts, host: host, now: now)
                // Still leaderless: keep the original deadline.
                if waiting.count > before { waiting[waiting.count - 1].deadline = item.deadline }
            }
        }
    }

    /// Entry data per Raft entry: a cycle's publishes for a shard travel in as few entries
    /// as this allows (one Raft entry, one log row, many publishes).
    static let entryBytesMax = 1 << 20

    /// Proposes what was queued for shards this node leads: each shard's publishes of this
    /// cycle packed into entries of up to `entryBytesMax` (a larger publish goes alone).
    /// Returns the shards it proposed to.
    @discardableResult
    func proposeQueued(host: ShardHost, now: Int64) -> [Int] {
        guard !queued.isEmpty else { return [] }
        let batches = queued
        queued = [:]
        var proposed: [Int] = []
        for (shard, items) in batches {
            var entries: [[UInt8]] = []
            var origins: [[Origin]] = []
            var inputs: [[ProposedInput]] = []
            // Sized for the cycle's publishes up front: growing from small by doubling
            // copied each ~100 KiB entry about twice over.
            let capacity = min(Self.entryBytesMax, items.reduce(0) { $0 + $1.publish.payload.count + $1.publish.channel.utf8.count + 32 })
            var writer = ByteWriter(capacity: capacity)
            var packed: [Origin] = []
            var packedInputs: [ProposedInput] = []
            packed.reserveCapacity(items.count)
            packedInputs.reserveCapacity(items.count)
            for item in items {
                let publish = item.publish
                if !packed.isEmpty && writer.count + publish.payload.count + 64 > Self.entryBytesMax {
                    entries.append(writer.finish())
                    origins.append(packed)
                    inputs.append(packedInputs)
                    writer = ByteWriter(capacity: capacity)
                    packed = []
                    packedInputs = []
                }
                let payloadStart = publish.encodeInEntry(&writer)
                packed.append(item.origin)
                packedInputs.append(ProposedInput(input: publish.input, payloadStart: payloadStart))
            }
            entries.append(writer.finish())
            origins.append(packed)
            inputs.append(packedInputs)
            let before = host.groups[shard]!.lastIndex
            if host.groups[shard]!.raft.propose(batch: entries) {
                proposed.append(shard)
                let term = host.groups[shard]!.raft.term
                for (offset, list) in origins.enumerated() {
                    pending[shard, default: [:]][before + 1 + UInt64(offset)] = Pending(
                        term: term, origins: list, deadline: now + context.resolveWaitMs, inputs: inputs[offset])
                }
            } else {
                for item in items { route(item.publish.input, item.origin, attempts: 1, host: host, now: now) }
            }
        }
        return proposed
    }

    /// The publishes this leader proposed at (`shard`, `index`) in `term`, still pending:
    /// exactly what that entry holds (an index and term name one entry), so applying it
    /// need not decode and copy back what was encoded here. Nil when not known here.
    func proposed(shard: Int, index: UInt64, term: UInt64) -> [ProposedInput]? {
        guard let entry = pending[shard]?[index], entry.term == term, !entry.inputs.isEmpty else { return nil }
        return entry.inputs
    }

    /// The entry at (`shard`, `index`) of `term` was applied with `outcomes`, one per
    /// publish it held (empty: not a publish entry). Publishes proposed there in another
    /// term were overwritten: not stored.
    func applied(
        shard: Int, index: UInt64, term: UInt64, outcomes: [AppendOutcome],
        settled report: inout [(context: PublishTicket, outcome: AppendOutcome)], host: ShardHost
    ) {
        guard let entry = pending[shard]?.removeValue(forKey: index) else { return }
        for (position, origin) in entry.origins.enumerated() {
            let result: AppendOutcome
            if entry.term == term, position < outcomes.count { result = outcomes[position] } else {
                result = .rejected(reason: "leadership of shard \(shard) changed before the publish was replicated")
            }
            deliver(origin, result, into: &report, host: host)
        }
    }

    private func deliver(
        _ origin: Origin, _ outcome: AppendOutcome, into report: inout [(context: PublishTicket, outcome: AppendOutcome)],
        host: ShardHost
    ) {
        switch origin {
        case .local(let ticket): report.append((ticket, outcome))
        case .remote(let node, let request): host.queue(.forwardResult(request: request, result: ForwardResult(outcome)), to: node)
        }
    }

    func resolve(request: UInt64, _ result: ForwardResult, host: ShardHost, now: Int64) {
        guard let item = forwarded.removeValue(forKey: request) else { return }
        if case .notStored(_, let leader) = result, !leader.isEmpty, leader != item.node, context.isConnected(leader) {
            leaderHints[item.shard] = leader
            return route(item.input, .local(item.ticket), attempts: item.attempts, host: host, now: now)
        }
        if case .notStored = result, item.attempts < Self.attemptsMax {
            // Definitely not stored (no leader there, or its term ended first): try again,
            // a bounded number of times, once a leader is known.
            leaderHints[item.shard] = nil
            waiting.append(Waiting(input: item.input, ticket: item.ticket, attempts: item.attempts, deadline: now + context.noLeaderWaitMs))
            return
        }
        settled.append((item.ticket, result.outcome))
    }

    func linkDown(_ node: String, host: ShardHost) {
        for (request, item) in forwarded where item.node == node {
            forwarded[request] = nil
            settled.append((item.ticket, .unknown(reason: "lost the connection to \(node), the leader of shard \(item.shard)")))
        }
        for (shard, hint) in leaderHints where hint == node { leaderHints[shard] = nil }
    }

    /// Gives up on what waited too long.
    func expire(now: Int64, host: ShardHost) {
        for (request, item) in forwarded where item.deadline <= now {
            forwarded[request] = nil
            settled.append((item.ticket, .unknown(reason: "\(item.node), the leader of shard \(item.shard), did not answer in time")))
        }
        var report: [(context: PublishTicket, outcome: AppendOutcome)] = []
        for (shard, entries) in pending {
            for (index, entry) in entries where entry.deadline <= now {
                pending[shard]![index] = nil
                for origin in entry.origins {
                    deliver(origin, .unknown(reason: "not committed within \(context.resolveWaitMs) ms"), into: &report, host: host)
                }
            }
        }
        settled += report
    }

    /// On shutdown: nothing queued here will be resolved.
    func failAll(host: ShardHost, reason: String) {
        for item in waiting { settled.append((item.ticket, .rejected(reason: reason))) }
        waiting = []
        for (_, item) in forwarded { settled.append((item.ticket, .unknown(reason: reason))) }
        forwarded = [:]
        var report: [(context: PublishTicket, outcome: AppendOutcome)] = []
        for (_, entries) in pending {
            for (_, entry) in entries { for origin in entry.origins { deliver(origin, .unknown(reason: reason), into: &report, host: host) } }
        }
        pending = [:]
        settled += report
    }
}
