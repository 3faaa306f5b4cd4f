import ChaparCore

/// How the simulated network treats datagrams: delay, loss, duplication. Reordering
/// follows from random delays. Push-pull (TCP) is neither lost nor duplicated, only
/// delayed, and fails across a partition.
public struct NetworkModel: Equatable, Sendable {
    public var delayMsMin: UInt64
    public var delayMsMax: UInt64
    public var loss: Double
    public var duplication: Double

    public init(delayMsMin: UInt64 = 1, delayMsMax: UInt64 = 5, loss: Double = 0, duplication: Double = 0) {
        precondition(delayMsMin <= delayMsMax)
        precondition(loss >= 0 && loss < 1 && duplication >= 0 && duplication < 1)
        self.delayMsMin = delayMsMin
        self.delayMsMax = delayMsMax
        self.loss = loss
        self.duplication = duplication
    }

    func delay(_ random: inout SeededRandom) -> UInt64 {
        delayMsMin + random.next() % (delayMsMax - delayMsMin + 1)
    }
}

/// A directed link that drops everything (one-way partitions are two of these apart).
public struct Link: Hashable, Sendable {
    public var from: Int
    public var to: Int

    public init(from: Int, to: Int) {
        self.from = from
        self.to = to
    }
}
