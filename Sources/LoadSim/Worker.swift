import ChaparCore
import Transport
#if canImport(Glibc)
import Glibc
#endif

/// One simulator event loop and the connections it drives. Everything here runs on
/// that loop's thread; the orchestrator talks to it with `syncCall`.
final class Worker: @unchecked Sendable {  // guarded by: loop thread
    let loop: EventLoop
    let plan: LoadPlan
    let target: Target
    var connections: [SimConnection] = []
    var oracle: Oracle
    var stats = RunStats()
    var ackedMax: [ChannelPublisher: UInt64] = [:]
    var random: SeededRandom
    private(set) var notes: [String] = []
    private var scratch: [UInt8]
    /// When the bytes being handled were read: the delivery time of their messages.
    var receivedAt: Int64 = 0

    private var publishing = false
    private var startMicros: Int64 = 0
    private var endMicros: Int64 = 0
    private var rampMicros: Int64 = 0
    private var ratePublishers: [(SimConnection, Int)] = []
    private var maxPublishers: [(SimConnection, Int)] = []
    private var dropped: Set<Int> = []
    private(set) var readyCount = 0
    private(set) var subscribedCount = 0
    static let tickMs: Int64 = 1

    init(loop: EventLoop, plan: LoadPlan, target: Target, seed: UInt64) {
        self.loop = loop
        self.plan = plan
        self.target = target
        self.random = SeededRandom(seed: seed)
        let channelNames = plan.channels.map(\.name)
        self.oracle = Oracle(channelName: { channelNames[Int($0)] })
        let sizeMax = plan.publishers.reduce(PayloadStamp.bytes) { current, publisher in
            switch publisher.size {
            case .fixed(let n): max(current, n)
            case .uniform(_, let high): max(current, high)
            }
        }
        scratch = (0..<sizeMax).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 17) }
    }

    func nowMicros() -> Int64 { MonotonicClock.nowNs() / 1000 }

    func channelName(_ index: UInt32) -> String { plan.channels[Int(index)].name }

    func channelIndex(_ name: String) -> UInt32? { plan.channelIndexByName[name] }

    func note(_ text: String) {
        if notes.count < 50 { notes.append(text) }
    }

    /// Adds the connections this worker owns (call once, before `connectAll`).
    func adopt(ids: [Int], subscriptions: [[UInt32]]) {
        var byConnection: [Int: [LoadPlan.Publisher]] = [:]
        for publisher in plan.publishers { byConnection[publisher.connection, default: []].append(publisher) }
        for id in ids {
            let channels = id < plan.scenario.users ? subscriptions[id] : []
            let connection = SimConnection(id: id, worker: self, addresses: target.addresses, channels: channels)
            connection.publishers = (byConnection[id] ?? []).map { PublisherState(plan: $0) }
            for index in connection.publishers.indices {
                if connection.publishers[index].plan.rate == nil { maxPublishers.append((connection, index)) }
                else { ratePublishers.append((connection, index)) }
            }
            connections.append(connection)
        }
    }

    /// Connects every connection except late joiners.
    func connectAll() {
        for connection in connections where !plan.lateUsers.contains(connection.id) { connection.connect() }
    }

    /// Connections expected ready before publishing starts.
    var expectedAtStart: Int { connections.filter { !plan.lateUsers.contains($0.id) }.count }

    // MARK: Events from connections

    func connectionReady(_ connection: SimConnection) {
        readyCount += 1
        if connection.channels.isEmpty { subscribedCount += 1 }
        if publishing { for index in connection.publishers.indices { publisherFreed(connection, index) } }
    }

    func connectionSubscribed(_ connection: SimConnection) {
        subscribedCount += 1
    }

    func connectionFailed(_ connection: SimConnection, _ reason: String) {
        stats.errors += 1
        note("connection \(connection.id): \(reason)")
        scheduleReconnect(connection, afterMs: target.addresses.count > 1 ? 100 : 1000)
    }

    func connectionClosed(_ connection: SimConnection, error: SystemError?) {
        readyCount -= 1
        if connection.isSubscribedEverywhere || connection.channels.isEmpty { subscribedCount -= 1 }
        if dropped.remove(connection.id) != nil { return }  // a simulated drop reconnects on its own schedule
        guard publishing || nowMicros() < endMicros else { return }
        stats.errors += 1
        note("connection \(connection.id) closed: \(error?.description ?? "by the server")")
        scheduleReconnect(connection, afterMs: 500)
    }

    private func scheduleReconnect(_ connection: SimConnection, afterMs delay: Int64) {
        loop.schedule(afterMs: delay) { [self] in
            guard publishing else { return }
            stats.reconnects += 1
            connection.connect()
        }
    }

    func delivered(to connection: SimConnection, offset: UInt64?, payload: UnsafeRawBufferPointer) {
        guard let stamp = PayloadStamp(reading: payload) else {
            stats.errors += 1
            note("connection \(connection.id): a delivered payload lacks the simulator's stamp")
            return
        }
        stats.delivered += 1
        stats.deliveredBytes += UInt64(payload.count)
        stats.deliverLatency.record(UInt64(max(0, receivedAt - stamp.sentMicros)))
        let subscriber = UInt32(connection.id)
        if let offset {
            oracle.observe(StreamKey(subscriber: subscriber, channel: stamp.channel, publisher: 0), position: offset)
        } else {
            oracle.observe(StreamKey(subscriber: subscriber, channel: stamp.channel, publisher: stamp.publisher),
                           position: stamp.sequence)
        }
    }

    func forgetStreams(subscriber: Int, channel: UInt32) {
        oracle.forget(subscriber: UInt32(subscriber), channel: channel)
    }

    /// Appends one publish frame to `bytes` (the connection's coalescing buffer: the frame
    /// is built where it is sent from, not in an array of its own).
    func encodePublish(_ codec: TargetCodec, channel: UInt32, size: Int, stamp: PayloadStamp, correlation: UInt32, into bytes: inout [UInt8]) {
        scratch.withUnsafeMutableBytes { raw in
            let payload = UnsafeMutableRawBufferPointer(rebasing: raw[..<size])
            stamp.write(into: payload)
            codec.publish(channelName(channel), payload: UnsafeRawBufferPointer(payload), correlation: correlation, into: &bytes)
        }
    }

    // MARK: Publishing

    /// Starts the schedule: open-loop publishers from `start`, window publishers at once.
    func start(atMicros start: Int64, durationMicros: Int64, rampMicros: Int64) {
        startMicros = start
        endMicros = start + durationMicros
        self.rampMicros = rampMicros
        publishing = true
        for (connection, index) in ratePublishers {
            connection.publishers[index].nextDue = start + gapMicros(connection.publishers[index])
        }
        let delay = max(0, (start - nowMicros()) / 1000)
        loop.schedule(afterMs: delay) { [self] in
            for (connection, index) in maxPublishers { publisherFreed(connection, index) }
            tick()
        }
        scheduleEvents()
    }

    /// The open-loop gap before the next message of a publisher, at its full rate.
    private func gapMicros(_ publisher: PublisherState) -> Int64 {
        guard let rate = publisher.plan.rate else { return 0 }
        let mean = 1_000_000 / rate
        let gap = publisher.plan.poisson ? -log(1 - random.nextUnit()) * mean : mean
        return max(1, Int64(gap))
    }

    /// During ramp-up a scheduled message is kept with probability elapsed/ramp
    /// (thinning), so the offered rate grows linearly from zero to the full rate.
    private func keepDuringRamp(at time: Int64) -> Bool {
        guard rampMicros > 0, time < startMicros + rampMicros else { return true }
        return random.nextUnit() < Double(time - startMicros) / Double(rampMicros)
    }

    private func tick() {
        guard publishing else { return }
        let now = nowMicros()
        let horizon = min(now, endMicros)
        for (connection, index) in ratePublishers {
            var due = connection.publishers[index].nextDue
            var sent = false
            while due <= horizon {
                if keepDuringRamp(at: due) {
                    stats.offered += 1
                    if connection.publish(index, sentMicros: due) { sent = true }
                }
                due += gapMicros(connection.publishers[index])
            }
            connection.publishers[index].nextDue = due
            if sent { connection.endBurst() }
        }
        if now >= endMicros {
            publishing = false
            return
        }
        loop.schedule(afterMs: Self.tickMs) { [self] in tick() }
    }

    /// A publish window slot came free: a window publisher sends again.
    func publisherFreed(_ connection: SimConnection, _ index: Int) {
        guard publishing, connection.publishers[index].plan.rate == nil, nowMicros() < endMicros else { return }
        var sent = false
        while connection.publish(index, sentMicros: nowMicros()) {
            stats.offered += 1
            sent = true
        }
        if sent { connection.endBurst() }
    }

    /// Storms, churn and late joiners, on this worker's share of the users.
    private func scheduleEvents() {
        let scenario = plan.scenario
        let users = connections.filter { $0.id < scenario.users }
        if let storm = scenario.storm {
            loop.schedule(afterMs: max(0, (startMicros - nowMicros()) / 1000 + Int64(storm.atSeconds * 1000))) { [self] in
                let victims = users.filter { $0.state == .ready && Double(($0.id &* 2_654_435_761) % 1000) < storm.fraction * 1000 }
                for victim in victims { drop(victim, reconnectAfterMs: Int64(storm.reconnectDelayMs)) }
                note("storm: dropped \(victims.count) connections")
            }
        }
        if let churn = scenario.churn, churn.disconnectsPerSecond > 0, !users.isEmpty {
            let share = churn.disconnectsPerSecond * Double(users.count) / Double(scenario.users)
            let intervalMs = max(1, Int64(1000 / share))
            func churnOnce() {
                guard publishing else { return }
                let candidates = users.filter { $0.state == .ready }
                if let victim = candidates.isEmpty ? nil : candidates[Int(random.next() % UInt64(candidates.count))] {
                    drop(victim, reconnectAfterMs: Int64(churn.reconnectDelayMs))
                }
                loop.schedule(afterMs: intervalMs) { churnOnce() }
            }
            loop.schedule(afterMs: max(0, (startMicros - nowMicros()) / 1000) + intervalMs) { churnOnce() }
        }
        if let late = scenario.lateJoiners {
            loop.schedule(afterMs: max(0, (startMicros - nowMicros()) / 1000 + Int64(late.atSeconds * 1000))) { [self] in
                for connection in connections where plan.lateUsers.contains(connection.id) {
                    connection.fromHistory = true
                    connection.connect()
                }
            }
        }
    }

    private func drop(_ connection: SimConnection, reconnectAfterMs delay: Int64) {
        dropped.insert(connection.id)
        connection.drop()
        loop.schedule(afterMs: delay) { [self] in
            stats.reconnects += 1
            connection.connect()
        }
    }

    // MARK: Reporting

    /// This second's counters, reset for the next.
    func takeStats() -> RunStats {
        defer { stats = RunStats() }
        return stats
    }

    var inflight: Int {
        connections.reduce(0) { total, connection in total + connection.publishers.reduce(0) { $0 + $1.inflight } }
    }

    var isPublishing: Bool { publishing }

    func closeAll() {
        publishing = false
        for connection in connections { dropped.insert(connection.id); connection.drop() }
    }
}
