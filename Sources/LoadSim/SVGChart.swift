#if canImport(Glibc)
import Glibc
#endif

/// A self-contained SVG of a run: delivered messages per second (bars) and publish→
/// deliver latency percentiles (lines, log scale) over time.
public enum SVGChart {
    public static func render(_ report: RunReport) -> String {
        let width = 900.0, height = 540.0
        let left = 90.0, right = 80.0, top = 76.0, middle = 250.0, bottom = 480.0
        let plotWidth = width - left - right
        let seconds = max(1, report.timeline.count)
        let step = plotWidth / Double(seconds)
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(left)" y="24" font-size="16" font-weight="bold">\(escape(report.scenario.name)) → \(escape(report.target))</text>
            <text x="\(left)" y="44" fill="#555">\(escape(summary(report)))</text>

            """
        // Throughput bars, one per second.
        let peak = max(1, report.timeline.map { Double($0.delivered) }.max() ?? 1)
        svg += axis(y0: middle, y1: top, left: left, right: width - right)
        svg += label(left - 6, top + 4, ReportFormat.count(peak), anchor: "end")
        svg += label(left - 6, middle, "0", anchor: "end")
        svg += label(left, top - 10, "delivered msg/s", anchor: "start", color: "#333")
        for (index, stats) in report.timeline.enumerated() {
            let barHeight = Double(stats.delivered) / peak * (middle - top)
            svg += "<rect x=\(attr(left + Double(index) * step + 1)) y=\(attr(middle - barHeight)) width=\(attr(max(1, step - 2))) height=\(attr(barHeight)) fill=\"#4a90d9\"/>\n"
        }
        // Latency percentiles on a log scale, one decade per grid line.
        let chartTop = middle + 50
        let worst = max(100, report.timeline.map { Double($0.deliverLatency.max) }.max() ?? 100)
        let lowLog = 1.0, highLog = max(2.0, log10(worst).rounded(.up))
        func y(_ micros: Double) -> Double {
            bottom - (log10(max(10, micros)) - lowLog) / (highLog - lowLog) * (bottom - chartTop)
        }
        svg += axis(y0: bottom, y1: chartTop, left: left, right: width - right)
        svg += label(left, chartTop - 12, "publish→deliver latency (log scale)", anchor: "start", color: "#333")
        var decade = lowLog
        while decade <= highLog {
            let value = pow(10, decade)
            svg += "<line x1=\(attr(left)) y1=\(attr(y(value))) x2=\(attr(width - right)) y2=\(attr(y(value))) stroke=\"#ddd\"/>\n"
            svg += label(left - 6, y(value) + 4, ReportFormat.micros(UInt64(value)), anchor: "end")
            decade += 1
        }
        let series: [(String, Double, String)] = [("p50", 50, "#2e7d32"), ("p90", 90, "#f9a825"), ("p99", 99, "#e65100"), ("max", 100, "#b71c1c")]
        for (position, (name, percentile, color)) in series.enumerated() {
            var points: [String] = []
            for (index, stats) in report.timeline.enumerated() where stats.deliverLatency.count > 0 {
                let value = percentile >= 100 ? Double(stats.deliverLatency.max) : Double(stats.deliverLatency.value(atPercentile: percentile))
                points.append("\(fmt(left + (Double(index) + 0.5) * step)),\(fmt(y(value)))")
            }
            if !points.isEmpty {
                svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(points.joined(separator: " "))\"/>\n"
            }
            svg += label(width - right + 10, chartTop + 16 * Double(position) + 4, name, anchor: "start", color: color)
        }
        // Seconds along both charts, and the scenario's events.
        for second in 0...seconds where seconds <= 30 || second % 5 == 0 {
            svg += label(left + Double(second) * step, bottom + 16, "\(second)s", anchor: "middle")
        }
        var events: [(Double, String)] = []
        if let storm = report.scenario.storm { events.append((storm.atSeconds, "storm")) }
        if let late = report.scenario.lateJoiners { events.append((late.atSeconds, "late joiners")) }
        for (time, name) in events {
            let x = left + time * step
            svg += "<line x1=\(attr(x)) y1=\(attr(top)) x2=\(attr(x)) y2=\(attr(bottom)) stroke=\"#777\" stroke-dasharray=\"4 3\"/>\n"
            svg += label(x + 4, top + 14, name, anchor: "start", color: "#555")
        }
        svg += label(left, bottom + 40, "bars: delivered messages per second; lines: latency percentiles of the messages delivered in that second", anchor: "start", color: "#555")
        svg += "</svg>\n"
        return svg
    }

    static func label(_ x: Double, _ y: Double, _ text: String, anchor: String, color: String = "#000") -> String {
        "<text x=\(attr(x)) y=\(attr(y)) text-anchor=\"\(anchor)\" fill=\"\(color)\">\(escape(text))</text>\n"
    }

    static func axis(y0: Double, y1: Double, left: Double, right: Double) -> String {
        "<line x1=\(attr(left)) y1=\(attr(y0)) x2=\(attr(left)) y2=\(attr(y1)) stroke=\"#333\"/>\n"
            + "<line x1=\(attr(left)) y1=\(attr(y0)) x2=\(attr(right)) y2=\(attr(y0)) stroke=\"#333\"/>\n"
    }

    static func summary(_ report: RunReport) -> String {
        let latency = report.deliverLatency
        return "\(ReportFormat.count(report.deliveredPerSecond)) delivered msg/s, \(ReportFormat.fixed(report.deliveredGbitPerSecond, 2)) Gbit/s, "
            + "p50 \(ReportFormat.micros(latency.value(atPercentile: 50))), p99 \(ReportFormat.micros(latency.value(atPercentile: 99))), "
            + "violations \(report.violations.total)"
    }

    static func fmt(_ value: Double) -> String { ReportFormat.fixed(value, 1) }
    static func attr(_ value: Double) -> String { "\"\(fmt(value))\"" }

    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(character)
            }
        }
        return out
    }
}
