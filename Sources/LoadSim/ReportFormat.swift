import ChaparCore
import FoundationEssentials

/// Renders run reports: the human summary, the JSON document and comparison tables.
public enum ReportFormat {
    public static func latencyJSON(_ histogram: Histogram) -> JSONValue {
        .object([
            "p50": .number(Double(histogram.value(atPercentile: 50))),
            "p90": .number(Double(histogram.value(atPercentile: 90))),
            "p99": .number(Double(histogram.value(atPercentile: 99))),
            "p999": .number(Double(histogram.value(atPercentile: 99.9))),
            "max": .number(Double(histogram.max)),
            "count": .number(Double(histogram.count)),
        ])
    }

    public static func json(_ report: RunReport) -> JSONValue {
        var object: [String: JSONValue] = [
            "target": .string(report.target),
            "scenario": ScenarioFile.json(report.scenario),
            "workers": .number(Double(report.workers)),
            "duration_s": .number(report.durationSeconds),
            "offered_msgs_per_s": .number(report.offeredPerSecond),
            "published_msgs_per_s": .number(report.publishedPerSecond),
            "acked_msgs_per_s": report.supportsAcks ? .number(report.ackedPerSecond) : .null,
            "delivered_msgs_per_s": .number(report.deliveredPerSecond),
            "delivered_gbit_per_s": .number(report.deliveredGbitPerSecond),
            "latency_us": latencyJSON(report.deliverLatency),
            "ack_latency_us": report.supportsAcks ? latencyJSON(report.ackLatency) : .null,
            "violations": .object([
                "order": .number(Double(report.violations.order)),
                "gaps": .number(Double(report.violations.gaps)),
                "duplicates": .number(Double(report.violations.duplicates)),
                "lost": report.supportsAcks ? .number(Double(report.violations.lost)) : .null,
                "examples": .array(report.violations.examples.map { .string($0) }),
            ]),
            "supports": .object(["acks": .bool(report.supportsAcks), "history": .bool(report.supportsHistory)]),
            "errors": .number(Double(report.totals.errors + report.drain.errors)),
            "reconnects": .number(Double(report.totals.reconnects + report.drain.reconnects)),
            "driver_cpu_percent": .number(report.driverCpuPercent),
            "settings": .object(report.settings.mapValues { .string($0) }),
            "notes": .array(report.notes.map { .string($0) }),
            "timeline": .array(report.timeline.enumerated().map { second, stats in
                .object([
                    "second": .number(Double(second + 1)),
                    "published": .number(Double(stats.published)),
                    "acked": .number(Double(stats.acked)),
                    "delivered": .number(Double(stats.delivered)),
                    "delivered_bytes": .number(Double(stats.deliveredBytes)),
                    "latency_us": latencyJSON(stats.deliverLatency),
                ])
            }),
        ]
        if let failure = report.setupFailure { object["setup_failure"] = .string(failure) }
        return .object(object)
    }

    public static func encode(_ value: JSONValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? encoder.encode(value) else { return "{}" }
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// "1,234,567" style grouping for counts and rates.
    public static func count(_ value: Double) -> String {
        let whole = Int64(value.rounded())
        let digits = Array(String(abs(whole)))
        var out = ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(digit)
        }
        return (whole < 0 ? "-" : "") + out
    }

    public static func fixed(_ value: Double, _ places: Int) -> String {
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        let scaled = Int64((abs(value) * scale).rounded())
        let integer = scaled / Int64(scale)
        var fraction = String(scaled % Int64(scale))
        while fraction.count < places { fraction = "0" + fraction }
        return (value < 0 ? "-" : "") + "\(integer)" + (places > 0 ? ".\(fraction)" : "")
    }

    /// Microseconds as a short human duration.
    public static func micros(_ value: UInt64) -> String {
        if value < 1000 { return "\(value) µs" }
        if value < 1_000_000 { return fixed(Double(value) / 1000, 2) + " ms" }
        return fixed(Double(value) / 1e6, 2) + " s"
    }

    public static func progressLine(second: Int, stats: RunStats, cpu: Double) -> String {
        "[\(second)s] published \(count(Double(stats.published)))/s  acked \(count(Double(stats.acked)))/s  "
            + "delivered \(count(Double(stats.delivered)))/s (\(fixed(Double(stats.deliveredBytes) * 8 / 1e9, 2)) Gbit/s)  "
            + "p50 \(micros(stats.deliverLatency.value(atPercentile: 50)))  p99 \(micros(stats.deliverLatency.value(atPercentile: 99)))  "
            + "errors \(stats.errors)  driver cpu \(Int(cpu))%"
    }

    public static func text(_ report: RunReport) -> String {
        var lines: [String] = []
        let scenario = report.scenario
        lines.append("scenario   \(scenario.name): \(scenario.description)")
        lines.append("target     \(report.target)   workers \(report.workers)   duration \(fixed(report.durationSeconds, 1)) s")
        for (key, value) in report.settings.sorted(by: { $0.key < $1.key }) { lines.append("setting    \(key) = \(value)") }
        if let failure = report.setupFailure { lines.append("SETUP FAILED: \(failure)") }
        lines.append("publish    offered \(count(report.offeredPerSecond))/s   sent \(count(report.publishedPerSecond))/s   "
            + (report.supportsAcks ? "acked \(count(report.ackedPerSecond))/s" : "acked: not supported by this target"))
        lines.append("deliver    \(count(report.deliveredPerSecond)) msg/s   \(fixed(report.deliveredGbitPerSecond, 3)) Gbit/s payload")
        let deliver = report.deliverLatency
        lines.append("latency    publish→deliver  p50 \(micros(deliver.value(atPercentile: 50)))  p90 \(micros(deliver.value(atPercentile: 90)))  "
            + "p99 \(micros(deliver.value(atPercentile: 99)))  p99.9 \(micros(deliver.value(atPercentile: 99.9)))  max \(micros(deliver.max))")
        if report.supportsAcks {
            let ack = report.ackLatency
            lines.append("latency    publish→ack      p50 \(micros(ack.value(atPercentile: 50)))  p90 \(micros(ack.value(atPercentile: 90)))  "
                + "p99 \(micros(ack.value(atPercentile: 99)))  p99.9 \(micros(ack.value(atPercentile: 99.9)))  max \(micros(ack.max))")
        }
        if !report.supportsHistory && (scenario.lateJoiners != nil || scenario.storm != nil || scenario.churn != nil) {
            lines.append("history    not supported by this target: late joiners and reconnects start live")
        }
        let v = report.violations
        lines.append("oracle     order \(v.order)  gaps \(v.gaps)  duplicates \(v.duplicates)  "
            + (report.supportsAcks ? "lost \(v.lost)" : "lost: not supported (no acks)")
            + (v.total == 0 ? "   OK" : "   VIOLATIONS"))
        for example in v.examples { lines.append("  violation: \(example)") }
        lines.append("clients    errors \(report.totals.errors + report.drain.errors)  reconnects \(report.totals.reconnects + report.drain.reconnects)")
        lines.append("driver     cpu \(Int(report.driverCpuPercent))% of one core over \(report.workers) worker(s)")
        if report.driverCpuPercent >= Double(report.workers) * 90 {
            lines.append("WARNING    the simulator was saturated (\(Int(report.driverCpuPercent))% CPU for \(report.workers) workers): figures are a lower bound; add --workers")
        }
        for note in report.notes.prefix(10) { lines.append("note       \(note)") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Side-by-side figures with ratios to the first run.
    public static func comparison(_ reports: [RunReport]) -> String {
        guard let base = reports.first else { return "" }
        func ratio(_ value: Double, _ reference: Double) -> String {
            reference > 0 ? fixed(value / reference, 2) + "×" : "—"
        }
        var rows: [[String]] = [["target", "delivered msg/s", "ratio", "Gbit/s", "acked msg/s", "p50", "p99", "violations"]]
        for report in reports {
            let latency = report.deliverLatency
            rows.append([
                report.target, count(report.deliveredPerSecond), ratio(report.deliveredPerSecond, base.deliveredPerSecond),
                fixed(report.deliveredGbitPerSecond, 3),
                report.supportsAcks ? count(report.ackedPerSecond) : "n/a",
                micros(latency.value(atPercentile: 50)), micros(latency.value(atPercentile: 99)),
                report.setupFailure != nil ? "setup failed" : "\(report.violations.total)",
            ])
        }
        return table(rows)
    }

    public static func table(_ rows: [[String]]) -> String {
        var widths = [Int](repeating: 0, count: rows.map(\.count).max() ?? 0)
        for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
        return rows.map { row in
            row.enumerated().map { index, cell in cell + String(repeating: " ", count: widths[index] - cell.count) }
                .joined(separator: "  ").trimmingTrailingSpaces()
        }.joined(separator: "\n") + "\n"
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var copy = self
        while copy.last == " " { copy.removeLast() }
        return copy
    }
}
