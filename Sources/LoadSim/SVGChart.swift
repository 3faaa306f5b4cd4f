#if canImport(Glibc)
import Glibc
#endif

/// A self-contained SVG of a run: delivered messages per second (bars) and publish→
/// deliver latency percentiles (lines, log scale) over time.
public enum SVGChart {
    public static func render(_ report: RunReport) -> String {
        let width = 900.0, height = 520.0
        let left = 80.0, right = 80.0, top = 60.0, middle = 250.0, bottom = 470.0
        let plotWidth = width - left - right
        let seconds = max(1, report.timeline.count)
        let step = plotWidth / Double(seconds)
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(left)" y="24" font-size="16" font-weight="bold">\(escape(report.scenario.name)) → \(escape(report.target))</text>
            <text x="\(left)" y="44" fill="#555">\(escape(summary(report)))</text>

            """
        // Throughput bars.
        let peak = max(1, report.timeline.map { Double($0.delivered) }.max() ?? 1)
        svg += axis(y0: middle, y1: top, label: "delivered msg/s", maxLabel: ReportFormat.count(peak), left: left)
        for (index, stats) in report.timeline.enumerated() {
            let barHeight = Double(stats.delivered) / peak * (middle - top)
            svg += "<rect x=\(attr(left + Double(index) * step + 1)) y=\(attr(middle - barHeight)) width=\(attr(max(1, step - 2))) height=\(attr(barHeight)) fill=\"#4a90d9\"/>\n"
        }
        // Latency lines on a log scale from 10 µs to the worst second's maximum.
        let series: [(String, Double, String)] = [("p50", 50, "#2e7d32"), ("p90", 90, "#f9a825"), ("p99", 99, "#e65100"), ("max", 100, "#b71c1c")]
        let worst = max(100, report.timeline.map { Double($0.deliverLatency.max) }.max() ?? 100)
        let lowLog = 1.0, highLog = log10Value(worst)
        let chartTop = middle + 40
        svg += axis(y0: bottom, y1: chartTop, label: "publish→deliver latency (log)", maxLabel: ReportFormat.micros(UInt64(worst)), left: left)
        for (name, percentile, color) in series {
            var points: [String] = []
            for (index, stats) in report.timeline.enumerated() where stats.deliverLatency.count > 0 {
                let value = percentile >= 100 ? Double(stats.deliverLatency.max) : Double(stats.deliverLatency.value(atPercentile: percentile))
                let fraction = (log10Value(max(10, value)) - lowLog) / max(0.001, highLog - lowLog)
                points.append("\(fmt(left + (Double(index) + 0.5) * step)),\(fmt(bottom - fraction * (bottom - chartTop)))")
            }
            if !points.isEmpty {
                svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(points.joined(separator: " "))\"/>\n"
            }
            let legendX = width - right + 10
            let legendY = chartTop + 16 * Double(series.firstIndex { $0.0 == name }!)
            svg += "<text x=\(attr(legendX)) y=\(attr(legendY + 4)) fill=\"\(color)\">\(name)</text>\n"
        }
        svg += "<text x=\(attr(left)) y=\(attr(bottom + 30)) fill=\"#555\">seconds 1–\(seconds); bars share one scale, latency lines a log scale from 10 µs</text>\n"
        svg += "</svg>\n"
        return svg
    }

    static func summary(_ report: RunReport) -> String {
        let latency = report.deliverLatency
        return "\(ReportFormat.count(report.deliveredPerSecond)) delivered msg/s, \(ReportFormat.fixed(report.deliveredGbitPerSecond, 2)) Gbit/s, "
            + "p50 \(ReportFormat.micros(latency.value(atPercentile: 50))), p99 \(ReportFormat.micros(latency.value(atPercentile: 99))), "
            + "violations \(report.violations.total)"
    }

    static func axis(y0: Double, y1: Double, label: String, maxLabel: String, left: Double) -> String {
        "<line x1=\(attr(left)) y1=\(attr(y0)) x2=\(attr(left)) y2=\(attr(y1)) stroke=\"#333\"/>\n"
            + "<line x1=\(attr(left)) y1=\(attr(y0)) x2=\(attr(820)) y2=\(attr(y0)) stroke=\"#333\"/>\n"
            + "<text x=\(attr(left - 6)) y=\(attr(y1 + 4)) text-anchor=\"end\">\(escape(maxLabel))</text>\n"
            + "<text x=\(attr(left - 6)) y=\(attr(y0)) text-anchor=\"end\">0</text>\n"
            + "<text x=\(attr(left + 6)) y=\(attr(y1 - 8)) fill=\"#333\">\(escape(label))</text>\n"
    }

    static func log10Value(_ value: Double) -> Double { log10(max(value, 1)) }

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
