import Membership
import Simulation
import Testing

/// Seeds every simulation test runs in CI; `CHAPAR_SIM_SEEDS=N` in the environment
/// runs N seeds instead (the long sweep). A failure names its seed.
let simulationSeeds: [UInt64] = {
    if let text = ProcessInfo_environment("CHAPAR_SIM_SEEDS"), let count = UInt64(text) { return Array(1...count) }
    return [1, 2, 3]
}()

func ProcessInfo_environment(_ name: String) -> String? {
    guard let value = getenv(name) else { return nil }
    return String(cString: value)
}

/// A running cluster of `count` nodes that all see each other alive.
func convergedCluster(seed: UInt64, nodes count: Int, network: NetworkModel = NetworkModel(), config: MembershipConfig = MembershipConfig()) -> MembershipSimulator {
    let simulator = MembershipSimulator(seed: seed, nodes: count, config: config, network: network)
    simulator.joinAll()
    var waited: UInt64 = 0
    while !simulator.everyoneSeesAlive(Array(0..<count)) && waited < 120_000 {
        simulator.run(for: 500)
        waited += 500
    }
    return simulator
}

func replay(_ seed: UInt64, _ test: String, _ detail: String = "") -> Comment {
    "\(detail) [seed \(seed); replay: swift test --filter \(test) with simulationSeeds = [\(seed)]]"
}

@Suite struct SimulationTests {
    @Test(arguments: simulationSeeds)
    func joiningMemberBecomesKnownToAllWithinLogarithmicPeriods(_ seed: UInt64) {
        let simulator = MembershipSimulator(seed: seed, nodes: 64)
        simulator.crash(63)  // not started yet
        for index in 1..<63 { simulator.join(index, seeds: [MembershipSimulator.info(0).gossip]) }
        simulator.run(for: 60_000)
        #expect(simulator.everyoneSeesAlive(Array(0..<63)), replay(seed, "joiningMember", "the first 63 converged"))
        simulator.restart(63, seeds: [MembershipSimulator.info(Int(seed % 63)).gossip])
        // Infection-style spread reaches almost everyone in about log2(64) = 6 periods;
        // the rare member it misses is repaired by the next push-pull round.
        simulator.run(for: 12_000)
        let knowing = (0..<63).filter { simulator.status(of: 63, seenBy: $0) == .alive }.count
        #expect(knowing >= 57, replay(seed, "joiningMember", "\(knowing) of 63 know the joiner after 12 periods"))
        #expect((0..<63).allSatisfy { simulator.status(of: $0, seenBy: 63) == .alive }, "the joiner knows everyone")
        simulator.run(for: MembershipConfig().pushPullIntervalMs)
        #expect(simulator.everyoneSeesAlive(Array(0..<64)), replay(seed, "joiningMember", "all know it after a push-pull round"))
    }

    @Test(arguments: simulationSeeds)
    func massJoinThroughOneSeedConverges(_ seed: UInt64) {
        let simulator = MembershipSimulator(seed: seed, nodes: 64)
        simulator.joinAll()
        var elapsed: UInt64 = 0
        while !simulator.everyoneSeesAlive(Array(0..<64)) && elapsed < 60_000 {
            simulator.run(for: 100)
            elapsed += 100
        }
        #expect(elapsed <= 12_000, replay(seed, "massJoin", "converged after \(elapsed) ms"))
    }

    @Test(arguments: simulationSeeds)
    func crashedMemberIsDeclaredDeadByEveryLiveMemberWithinTheBound(_ seed: UInt64) {
        let simulator = convergedCluster(seed: seed, nodes: 20)
        let config = MembershipConfig()
        let crashedAt = simulator.now
        simulator.crash(7)
        // Bound: a probe reaches it within two periods (shuffled round-robin, 19 probers),
        // the suspicion runs at most its ceiling, dissemination takes a few gossip rounds.
        let bound = 2 * config.probeIntervalMs + config.suspicionBounds(members: 20).max + 10 * config.gossipIntervalMs
        simulator.run(for: bound)
        for observer in simulator.runningIndices {
            #expect(simulator.status(of: 7, seenBy: observer) == .dead, replay(seed, "crashedMember", "node \(observer)"))
        }
        let detections = simulator.events.filter { $0.subject == "node-7" && $0.status == .dead }.map { $0.time - crashedAt }
        #expect(detections.count == 19)
    }

    @Test(arguments: simulationSeeds)
    func tenPercentLossNeverKillsALiveMember(_ seed: UInt64) {
        let simulator = convergedCluster(seed: seed, nodes: 16, network: NetworkModel(loss: 0.10))
        let start = simulator.now
        simulator.run(for: 180_000)
        let falseDeaths = simulator.events.filter { $0.time > start && $0.status == .dead }
        #expect(falseDeaths.isEmpty, replay(seed, "tenPercentLoss", "\(falseDeaths.prefix(3))"))
    }

    @Test(arguments: simulationSeeds)
    func pausedMemberRefutesSuspicionWhenItResumes(_ seed: UInt64) {
        let simulator = convergedCluster(seed: seed, nodes: 12)
        let before = simulator.nodes[3].machine.incarnation
        simulator.pause(3)
        simulator.run(for: 3_500)
        simulator.resume(3)
        simulator.run(for: 10_000)
        #expect(simulator.everyoneSeesAlive(Array(0..<12)), replay(seed, "pausedMember"))
        #expect(!simulator.events.contains { $0.subject == "node-3" && $0.status == .dead }, replay(seed, "pausedMember"))
        let suspected = simulator.events.contains { $0.subject == "node-3" && $0.status == .suspect }
        if suspected { #expect(simulator.nodes[3].machine.incarnation > before, "it refuted with a higher incarnation") }
    }

    @Test(arguments: simulationSeeds)
    func restartedMemberRejoinsAliveWithAHigherIncarnation(_ seed: UInt64) {
        let simulator = convergedCluster(seed: seed, nodes: 10)
        simulator.crash(4)
        simulator.run(for: 40_000)
        #expect(simulator.status(of: 4, seenBy: 0) == .dead, replay(seed, "restartedMember"))
        simulator.restart(4, seeds: [MembershipSimulator.info(0).gossip])
        simulator.run(for: 10_000)
        #expect(simulator.everyoneSeesAlive(Array(0..<10)), replay(seed, "restartedMember"))
        #expect((simulator.nodes[0].machine.member("node-4")?.incarnation ?? 0) > 1)
    }

    @Test(arguments: simulationSeeds)
    func metadataUpdatesConverge(_ seed: UInt64) {
        let simulator = convergedCluster(seed: seed, nodes: 24)
        var machine = simulator.nodes[5].machine
        var updated = machine.local
        updated.draining = true
        updated.mapEpoch = 42
        _ = machine.update(updated, now: simulator.now)
        simulator.replace(5, with: machine)
        simulator.run(for: 5_000)
        for observer in simulator.runningIndices where observer != 5 {
            let seen = simulator.nodes[observer].machine.member("node-5")?.info
            #expect(seen?.draining == true && seen?.mapEpoch == 42, replay(seed, "metadataUpdates", "node \(observer)"))
        }
    }

    @Test(arguments: simulationSeeds)
    func viewsConvergeAfterAPartitionHeals(_ seed: UInt64) {
        let simulator = convergedCluster(seed: seed, nodes: 12)
        simulator.partition(Array(0..<6), Array(6..<12))
        simulator.run(for: 60_000)
        #expect(simulator.status(of: 9, seenBy: 1) == .dead, "the sides declared each other dead")
        simulator.heal()
        simulator.run(for: 90_000)
        #expect(simulator.everyoneSeesAlive(Array(0..<12)), replay(seed, "viewsConverge"))
    }

    @Test(arguments: simulationSeeds)
    func oneWayPartitionIsSurvivedThroughIndirectProbes(_ seed: UInt64) {
        let simulator = convergedCluster(seed: seed, nodes: 12)
        // 0 cannot reach 1 directly, but others can: indirect probes keep 1 alive.
        simulator.partition([0], [1], oneWay: true)
        let start = simulator.now
        simulator.run(for: 60_000)
        let deaths = simulator.events.filter { $0.time > start && $0.status == .dead }
        #expect(deaths.isEmpty, replay(seed, "oneWayPartition", "\(deaths.prefix(3))"))
    }
}

#if canImport(Glibc)
import Glibc
#endif

@Suite struct NetworkFaultTests {
    /// Duplicated and heavily reordered datagrams (0-400 ms delays) and one slow link
    /// (up to 450 ms, near the probe timeout) never kill a live member.
    @Test(arguments: simulationSeeds)
    func duplicationReorderingAndASlowLinkKillNobody(_ seed: UInt64) {
        let simulator = convergedCluster(seed: seed, nodes: 12)
        simulator.network = NetworkModel(delayMsMin: 0, delayMsMax: 400, loss: 0, duplication: 0.2)
        simulator.linkDelays[Link(from: 2, to: 5)] = 300...450
        simulator.linkDelays[Link(from: 5, to: 2)] = 300...450
        let start = simulator.now
        simulator.run(for: 120_000)
        let deaths = simulator.events.filter { $0.time > start && $0.status == .dead }
        #expect(deaths.isEmpty, replay(seed, "duplicationReordering", "\(deaths.prefix(3))"))
        #expect(simulator.everyoneSeesAlive(Array(0..<12)), replay(seed, "duplicationReordering"))
    }
}
