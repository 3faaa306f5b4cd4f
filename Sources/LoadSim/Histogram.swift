/// A log-linear latency histogram in the style of HdrHistogram: values are bucketed by
/// their power of two, each power split into `subBuckets` linear steps, so any recorded
/// value is reported within 1/`subBuckets` relative error (0.8% with 128). Fixed memory,
/// O(1) record, and histograms from several workers merge by adding counts.
public struct Histogram: Sendable, Equatable {
    /// log2 of the linear steps per power of two.
    public static let subBucketBits = 7
    static let subBuckets = 1 << subBucketBits
    /// Values up to 2^40 (about 12.7 days in microseconds) are tracked; larger ones clamp.
    static let magnitudes = 40 - subBucketBits

    private(set) var counts: [UInt64]
    public private(set) var count: UInt64 = 0
    public private(set) var max: UInt64 = 0
    public private(set) var min: UInt64 = .max
    private(set) var sum: Double = 0

    public init() {
        counts = [UInt64](repeating: 0, count: (Self.magnitudes + 1) * Self.subBuckets)
    }

    /// Row 0 holds 0..<subBuckets exactly; row m+1 holds values whose top bit is
    /// subBucketBits+m, in subBuckets steps of 2^m.
    static func index(of value: UInt64) -> Int {
        if value < UInt64(subBuckets) { return Int(value) }
        let shift = 63 - value.leadingZeroBitCount - subBucketBits
        if shift >= magnitudes { return (magnitudes + 1) * subBuckets - 1 }
        let step = Int(value >> UInt64(shift)) - subBuckets
        return (shift + 1) * subBuckets + step
    }

    /// The largest value that falls into bucket `index`: reported percentiles never
    /// understate latency.
    static func highestValue(at index: Int) -> UInt64 {
        let row = index / subBuckets
        if row == 0 { return UInt64(index) }
        let shift = UInt64(row - 1)
        let base = UInt64(subBuckets + index % subBuckets) << shift
        return base + (1 << shift) - 1
    }

    public mutating func record(_ value: UInt64) {
        counts[Self.index(of: value)] += 1
        count += 1
        sum += Double(value)
        if value > max { max = value }
        if value < min { min = value }
    }

    public mutating func merge(_ other: Histogram) {
        for index in counts.indices where other.counts[index] != 0 { counts[index] += other.counts[index] }
        count += other.count
        sum += other.sum
        max = Swift.max(max, other.max)
        min = Swift.min(min, other.min)
    }

    /// The value at or below which `percentile`% of recorded values fall (0 when empty).
    public func value(atPercentile percentile: Double) -> UInt64 {
        guard count > 0 else { return 0 }
        let rank = Swift.max(1, UInt64((percentile / 100 * Double(count)).rounded(.up)))
        var seen: UInt64 = 0
        for (index, bucket) in counts.enumerated() where bucket != 0 {
            seen += bucket
            if seen >= rank { return Swift.min(Self.highestValue(at: index), max) }
        }
        return max
    }

    public var mean: Double { count == 0 ? 0 : sum / Double(count) }

    public mutating func reset() {
        self = Histogram()
    }
}
