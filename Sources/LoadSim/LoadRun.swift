import ChaparCore
import Transport
#if canImport(Glibc)
import Glibc
#endif

/// Runs one scenario against one target: builds the plan, connects every simulated
/// client, publishes on schedule for the duration, drains, and checks the oracle.
public final class LoadRun {
    public let plan: LoadPlan
    public let target: Target
    public let workerCount: Int
    /// After the window, in-flight messages are waited for as long as any keep arriving (a
    /// run whose publisher outpaced its subscribers leaves them a backlog to read), until
    /// none came for a second or this long passed; nil: 10 s or twice the window, the more.
    public var drainSecondsMax: Double?
    public var setupSecondsMax: Double = 60

    public init(scenario: Scenario, target: Target, workers: Int, runId: String) {
        plan = LoadPlan(scenario: scenario, runId: runId)
        self.target = target
        workerCount = max(1, workers)
    }

    /// Runs to completion. `progress` gets each second's stats as the run goes.
    public func execute(settings: [String: String], progress: (Int, RunStats, Double) -> Void) throws -> RunReport {
        let group = try EventLoopGroup(count: workerCount, name: "loadsim")
        defer { group.shutdown() }
        let workers: [Worker] = group.loops.map { loop in
            group.sync(on: loop.index) { [plan, target] in Worker(loop: loop, plan: plan, target: target, seed: plan.scenario.seed &+ UInt64(loop.index)) }
        }
        let subscriptions = plan.subscriptionsByUser()
        for (index, worker) in workers.enumerated() {
            let ids = Array(stride(from: index, to: plan.connectionCount, by: workerCount))
            group.sync(on: index) { worker.adopt(ids: ids, subscriptions: subscriptions) }
        }
        let cpuBefore = Self.cpuSeconds()
        for (index, worker) in workers.enumerated() { group.sync(on: index) { worker.connectAll() } }

        var report = RunReport(
            scenario: plan.scenario, target: target.description, workers: workerCount,
            durationSeconds: plan.scenario.durationSeconds, totals: RunStats(), drain: RunStats(), timeline: [],
            violations: Violations(), supportsAcks: target.makeCodec().supportsAcks,
            supportsHistory: target.makeCodec().supportsHistory, driverCpuPercent: 0, settings: settings, notes: [])

        // Every connection that starts with the run must be connected and subscribed.
        let expected = workers.enumerated().reduce(0) { total, item in total + group.sync(on: item.offset) { item.element.expectedAtStart } }
        let setupDeadline = MonotonicClock.nowMs() + Int64(setupSecondsMax * 1000)
        var ready = 0
        while MonotonicClock.nowMs() < setupDeadline {
            ready = workers.enumerated().reduce(0) { total, item in total + group.sync(on: item.offset) { item.element.subscribedCount } }
            if ready >= expected { break }
            usleep(20_000)
        }
        if ready < expected {
            report.setupFailure = "only \(ready) of \(expected) connections were ready after \(Int(setupSecondsMax)) s"
            report.notes = workers.enumerated().flatMap { item in group.sync(on: item.offset) { item.element.notes } }
            for (index, worker) in workers.enumerated() { group.sync(on: index) { worker.closeAll() } }
            return report
        }
        for (index, worker) in workers.enumerated() { _ = group.sync(on: index) { worker.takeStats() } }

        let durationMicros = Int64(plan.scenario.durationSeconds * 1_000_000)
        let start = MonotonicClock.nowNs() / 1000 + 20_000
        let rampMicros = Int64(plan.scenario.rampUpSeconds * 1_000_000)
        for (index, worker) in workers.enumerated() {
            group.sync(on: index) { worker.start(atMicros: start, durationMicros: durationMicros, rampMicros: rampMicros) }
        }
        // One snapshot per second of the window.
        let seconds = Int(plan.scenario.durationSeconds.rounded(.up))
        for second in 1...seconds {
            let wake = start + Int64(second) * 1_000_000
            let windowEnd = min(wake, start + durationMicros)
            let wait = windowEnd - MonotonicClock.nowNs() / 1000
            if wait > 0 { usleep(UInt32(wait)) }
            var merged = RunStats()
            for (index, worker) in workers.enumerated() { merged.merge(group.sync(on: index) { worker.takeStats() }) }
            report.timeline.append(merged)
            report.totals.merge(merged)
            let cpu = (Self.cpuSeconds() - cpuBefore) / (Double(MonotonicClock.nowNs() / 1000 - start) / 1e6) * 100
            progress(second, merged, cpu)
        }
        let wallSeconds = Double(MonotonicClock.nowNs() / 1000 - start) / 1e6
        report.driverCpuPercent = (Self.cpuSeconds() - cpuBefore) / max(wallSeconds, 0.001) * 100

        // Drain: wait for acknowledgements and deliveries still in flight.
        let drainLimit = drainSecondsMax ?? max(10, 2 * plan.scenario.durationSeconds)
        let drainDeadline = MonotonicClock.nowMs() + Int64(drainLimit * 1000)
        var quietSince = MonotonicClock.nowMs()
        while MonotonicClock.nowMs() < drainDeadline {
            usleep(100_000)
            var merged = RunStats()
            var inflight = 0
            for (index, worker) in workers.enumerated() {
                merged.merge(group.sync(on: index) { worker.takeStats() })
                inflight += group.sync(on: index) { worker.inflight }
            }
            report.drain.merge(merged)
            if merged.delivered > 0 || merged.acked > 0 || inflight > 0 { quietSince = MonotonicClock.nowMs() }
            guard MonotonicClock.nowMs() - quietSince >= 1000 else { continue }
            // Quiet, but a subscriber with history to resume from may still be between a
            // subscription the server ended and the one that replaces it: it is owed
            // what was acknowledged until the drain limit, not only for a quiet second.
            if !report.supportsHistory || !owes(acked: ackedMax(workers, group), workers, group) { break }
        }

        // The oracle: highest acknowledged position per stream, then what each subscriber lacks.
        let acked = ackedMax(workers, group)
        let ackedSnapshot = acked
        for (index, worker) in workers.enumerated() {
            let (violations, notes) = group.sync(on: index) { () -> (Violations, [String]) in
                worker.oracle.settle(acked: ackedSnapshot)
                return (worker.oracle.violations, worker.notes)
            }
            report.violations.merge(violations)
            report.notes.append(contentsOf: notes.prefix(max(0, 50 - report.notes.count)))
        }
        for (index, worker) in workers.enumerated() { group.sync(on: index) { worker.closeAll() } }
        return report
    }

    /// The highest acknowledged position per (channel, publisher), over every worker.
    private func ackedMax(_ workers: [Worker], _ group: EventLoopGroup) -> [ChannelPublisher: UInt64] {
        var acked: [ChannelPublisher: UInt64] = [:]
        for (index, worker) in workers.enumerated() {
            for (key, value) in group.sync(on: index, { worker.ackedMax }) { acked[key] = max(acked[key] ?? 0, value) }
        }
        return acked
    }

    private func owes(acked: [ChannelPublisher: UInt64], _ workers: [Worker], _ group: EventLoopGroup) -> Bool {
        workers.enumerated().contains { index, worker in group.sync(on: index) { worker.oracle.owes(acked: acked) } }
    }

    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    }
}
