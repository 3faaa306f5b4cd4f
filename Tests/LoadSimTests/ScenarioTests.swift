import ChaparCore
import Foundation
import Testing
@testable import LoadSim

func parse(_ json: String) throws -> Scenario {
    try ScenarioFile.parse(JSONDecoder().decode(JSONValue.self, from: Data(json.utf8)))
}

func fieldError(_ json: String) -> JSONFieldError? {
    do { _ = try parse(json); return nil } catch let error as JSONFieldError { return error } catch { return nil }
}

let minimal = #"{"name": "t", "users": 10, "duration_s": 5, "workloads": [{"channels": 2, "subscribers": {"fixed": 3}, "rate": 100, "size": 64}]}"#

@Suite struct ScenarioTests {
    @Test(arguments: BuiltinScenarios.all)
    func builtinsRoundTripThroughJSON(_ scenario: Scenario) throws {
        let text = ReportFormat.encode(ScenarioFile.json(scenario))
        #expect(try parse(text) == scenario)
    }

    @Test(arguments: BuiltinScenarios.all)
    func shippedFilesMatchTheBuiltins(_ scenario: Scenario) throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let data = try Data(contentsOf: root.appendingPathComponent("Cluster/scenarios/\(scenario.name).json"))
        #expect(try ScenarioFile.parse(JSONDecoder().decode(JSONValue.self, from: data)) == scenario)
    }

    @Test func minimalScenarioGetsDefaults() throws {
        let scenario = try parse(minimal)
        #expect(scenario.workloads[0].publishers == .members)
        #expect(scenario.workloads[0].rate == .perSecond(100, poisson: true))
        #expect(scenario.rampUpSeconds == 0)
    }

    @Test(arguments: [
        (#"{"name": "t", "users": 10, "duration_s": 5, "workloads": [], "extra": 1}"#, "extra"),
        (#"{"name": "t", "duration_s": 5, "workloads": []}"#, "users"),
        (#"{"name": "t", "users": 10, "duration_s": 5, "workloads": []}"#, "workloads"),
        (#"{"name": "t", "users": 10, "duration_s": -1, "workloads": []}"#, "duration_s"),
        (#"{"name": "t", "users": 10, "duration_s": 5, "workloads": [{"subscribers": {"fixed": 3}, "rate": 100, "size": 8}]}"#, "workloads[0].size"),
        (#"{"name": "t", "users": 10, "duration_s": 5, "workloads": [{"subscribers": {"fixed": 30}, "rate": 100, "size": 64}]}"#, "workloads[0].subscribers.fixed"),
        (#"{"name": "t", "users": 10, "duration_s": 5, "workloads": [{"subscribers": {"zipf": {"exponent": 1}}, "rate": 100, "size": 64}]}"#, "workloads[0].subscribers.zipf.max"),
        (#"{"name": "t", "users": 10, "duration_s": 5, "workloads": [{"subscribers": {"fixed": 3}, "rate": "fast", "size": 64}]}"#, "workloads[0].rate"),
        (#"{"name": "t", "users": 10, "duration_s": 5, "workloads": [{"subscribers": {"fixed": 3}, "rate": 100, "size": 64, "schedule": "bursty"}]}"#, "workloads[0].schedule"),
        (#"{"name": "t", "users": 10, "duration_s": 5, "workloads": [{"subscribers": {"fixed": 3}, "rate": 100, "size": 64}], "storm": {"at_s": 1, "fraction": 2}}"#, "storm.fraction"),
        (#"{"name": "t", "users": 10, "duration_s": 5, "workloads": [{"subscribers": {"fixed": 3}, "rate": 100, "size": 64}], "late_joiners": {"fraction": 0.5, "at_s": 9}}"#, "late_joiners.at_s"),
    ])
    func badFilesNameTheField(_ json: String, _ field: String) {
        let error = fieldError(json)
        #expect(error?.path == field, "\(String(describing: error))")
    }

    @Test func overridesApplyToEveryWorkload() throws {
        var overrides = ScenarioOverrides()
        overrides.subscribers = 10_000
        overrides.size = 16384
        overrides.rate = .perSecond(5000, poisson: true)
        let scenario = try overrides.apply(to: BuiltinScenarios.mixed)
        #expect(scenario.users == 10_000)
        #expect(scenario.workloads.allSatisfy { $0.subscribers == .fixed(10_000) && $0.size == .fixed(16384) })
        overrides = ScenarioOverrides()
        overrides.size = 4
        #expect(throws: JSONFieldError.self) { _ = try overrides.apply(to: BuiltinScenarios.broadcast) }
    }

    @Test func planIsDeterministicAndRespectsTheShape() {
        let first = LoadPlan(scenario: BuiltinScenarios.mixed, runId: "x")
        let second = LoadPlan(scenario: BuiltinScenarios.mixed, runId: "x")
        #expect(first.channels.map(\.subscribers) == second.channels.map(\.subscribers))
        #expect(first.channels.count == 370)
        #expect(first.channels[0].subscribers.count == 1000)  // Zipf rank 1
        #expect(first.channels[1].subscribers.count == 500)  // Zipf rank 2
        let broadcast = LoadPlan(scenario: BuiltinScenarios.broadcast, runId: "y")
        #expect(broadcast.connectionCount == 101)
        #expect(broadcast.publishers.count == 1)
        #expect(Set(broadcast.channels[0].subscribers).count == 100)
    }
}
