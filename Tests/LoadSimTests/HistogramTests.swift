import Glibc
import ChaparCore
import Testing
@testable import LoadSim

@Suite struct HistogramTests {
    func exactPercentile(_ sorted: [UInt64], _ percentile: Double) -> UInt64 {
        let rank = max(1, Int((percentile / 100 * Double(sorted.count)).rounded(.up)))
        return sorted[rank - 1]
    }

    func checkAccuracy(_ values: [UInt64]) {
        var histogram = Histogram()
        for value in values { histogram.record(value) }
        let sorted = values.sorted()
        for percentile in [50.0, 90, 99, 99.9, 100] {
            let exact = exactPercentile(sorted, percentile)
            let reported = histogram.value(atPercentile: percentile)
            // Reported values are the top of their bucket: never below, at most 1/128 above.
            #expect(reported >= exact, "p\(percentile): \(reported) < exact \(exact)")
            #expect(Double(reported) <= Double(exact) * (1 + 1.0 / 128) + 1, "p\(percentile): \(reported) vs \(exact)")
        }
        #expect(histogram.max == sorted.last)
        #expect(histogram.count == UInt64(values.count))
    }

    @Test func uniformDistributionWithinRelativeError() {
        var random = SeededRandom(seed: 7)
        checkAccuracy((0..<100_000).map { _ in random.next() % 1_000_000 })
    }

    @Test func exponentialDistributionWithinRelativeError() {
        var random = SeededRandom(seed: 11)
        checkAccuracy((0..<100_000).map { _ in UInt64(-log(1 - random.nextUnit()) * 2000) })
    }

    @Test func smallValuesAreExact() {
        var histogram = Histogram()
        for value in 0..<128 { histogram.record(UInt64(value)) }
        #expect(histogram.value(atPercentile: 50) == 63)
        #expect(histogram.value(atPercentile: 100) == 127)
    }

    @Test func mergingEqualsRecordingTogether() {
        var random = SeededRandom(seed: 3)
        let values = (0..<20_000).map { _ in random.next() % 5_000_000 }
        var whole = Histogram()
        var first = Histogram()
        var second = Histogram()
        for (index, value) in values.enumerated() {
            whole.record(value)
            if index % 2 == 0 { first.record(value) } else { second.record(value) }
        }
        first.merge(second)
        #expect(first == whole)
    }

    @Test func hugeValuesClampInsteadOfCrashing() {
        var histogram = Histogram()
        histogram.record(.max)
        histogram.record(1 << 45)
        #expect(histogram.count == 2)
        #expect(histogram.max == .max)
    }
}


