import ChaparCore
import Membership

/// One measured run of the membership protocol: converge, then run under loss while
/// members crash and one changes its metadata, and report what SWIM/Lifeguard did.
public struct MembershipExperiment: Sendable {
    public var members: Int
    public var loss: Double
    public var lifeguard: Bool
    public var seed: UInt64
    /// Virtual seconds of the measured phase.
    public var durationSeconds: UInt64
    public var crashes: Int

    public init(members: Int, loss: Double, lifeguard: Bool, seed: UInt64, durationSeconds: UInt64, crashes: Int) {
        self.members = members
        self.loss = loss
        self.lifeguard = lifeguard
        self.seed = seed
        self.durationSeconds = durationSeconds
        self.crashes = crashes
    }

    public struct Result: Sendable {
        /// Crash → first member declares it dead, and → every live member has, ms.
        public var firstDetectionMs: [UInt64]
        public var fullDetectionMs: [UInt64]
        /// Live members declared dead (observer, subject pairs), and the exposure.
        public var falseDeaths: Int
        public var memberHours: Double
        /// Metadata change → seen by every live member, in protocol periods.
        public var disseminationPeriods: Double?
        public var bytesPerMemberPerSecond: Double
        public var convergedAfterMs: UInt64

        public var falseDeathsPerMemberHour: Double { memberHours > 0 ? Double(falseDeaths) / memberHours : 0 }
    }

    public func run() -> Result {
        var config = MembershipConfig()
        config.lifeguard = lifeguard
        let simulator = MembershipSimulator(seed: seed, nodes: members, config: config, network: NetworkModel(loss: 0))
        simulator.joinAll()
        var converged: UInt64 = 0
        while !simulator.everyoneSeesAlive(Array(0..<members)) && converged < 300_000 {
            simulator.run(for: 500)
            converged += 500
        }
        // Let the join's gossip drain, so the figures describe a steady cluster.
        simulator.run(for: 60_000)
        simulator.network = NetworkModel(loss: loss)
        let start = simulator.now
        let bytesBefore = simulator.bytesSent.reduce(0, +)
        let duration = durationSeconds * 1000
        // Crashes spread over the first two thirds, so each has time to be detected.
        var random = SeededRandom(seed: seed ^ 0x5eed)
        var victims: [Int] = []
        while victims.count < min(crashes, members / 4) {
            let candidate = 1 + Int(random.next() % UInt64(members - 1))
            if !victims.contains(candidate) { victims.append(candidate) }
        }
        var crashTimes: [Int: UInt64] = [:]
        let spacing = victims.isEmpty ? duration : duration * 2 / 3 / UInt64(victims.count)
        // A metadata change a quarter in, by a member that will not crash.
        let changer = (0..<members).first { !victims.contains($0) && $0 != 0 } ?? 0
        var changeAt: UInt64?
        var changedIncarnation: UInt64 = 0
        var nextCrash = 0
        while simulator.now < start + duration {
            let elapsed = simulator.now - start
            if nextCrash < victims.count && elapsed >= UInt64(nextCrash) * spacing + spacing / 2 {
                simulator.crash(victims[nextCrash])
                crashTimes[victims[nextCrash]] = simulator.now
                nextCrash += 1
            }
            if changeAt == nil && elapsed >= duration / 4 {
                var machine = simulator.nodes[changer].machine
                var info = machine.local
                info.mapEpoch += 1
                _ = machine.update(info, now: simulator.now)
                simulator.replace(changer, with: machine)
                changeAt = simulator.now
                changedIncarnation = machine.incarnation
            }
            simulator.run(for: 100)
        }
        let bytes = simulator.bytesSent.reduce(0, +) - bytesBefore
        var result = Result(
            firstDetectionMs: [], fullDetectionMs: [], falseDeaths: 0, memberHours: 0, disseminationPeriods: nil,
            bytesPerMemberPerSecond: Double(bytes) / Double(members) / Double(durationSeconds), convergedAfterMs: converged)
        let measured = simulator.events.filter { $0.time > start }
        for (victim, crashedAt) in crashTimes {
            let name = MembershipSimulator.info(victim).id
            let deaths = measured.filter { $0.subject == name && $0.status == .dead && $0.time >= crashedAt }
            if let first = deaths.map(\.time).min() { result.firstDetectionMs.append(first - crashedAt) }
            let observers = Set(deaths.map(\.observer))
            let live = simulator.runningIndices.filter { $0 != victim }
            if live.allSatisfy({ observers.contains($0) }), let last = deaths.map(\.time).max() {
                result.fullDetectionMs.append(last - crashedAt)
            }
        }
        // A "dead" about a member that was running at that moment is a false positive.
        for event in measured where event.status == .dead {
            let index = Int(event.subject.dropFirst("node-".count)) ?? -1
            if let crashedAt = crashTimes[index], event.time >= crashedAt { continue }
            result.falseDeaths += 1
        }
        result.memberHours = Double(members) * Double(durationSeconds) / 3600
        if let changeAt {
            // Per observer, the first time it held the new incarnation; the slowest counts.
            let name = MembershipSimulator.info(changer).id
            var firstSeen: [Int: UInt64] = [:]
            for event in measured where event.subject == name && event.incarnation >= changedIncarnation && event.time >= changeAt {
                if firstSeen[event.observer] == nil { firstSeen[event.observer] = event.time }
            }
            let live = simulator.runningIndices.filter { $0 != changer }
            if live.allSatisfy({ firstSeen[$0] != nil }), let last = firstSeen.values.max() {
                result.disseminationPeriods = Double(last - changeAt) / Double(config.probeIntervalMs)
            }
        }
        return result
    }
}
