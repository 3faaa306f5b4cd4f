import Testing
@testable import LoadSim

@Suite struct OracleTests {
    let key = StreamKey(subscriber: 1, channel: 0, publisher: 0)

    @Test func cleanStreamHasNoViolations() {
        var oracle = Oracle()
        oracle.expect(key, from: 5)
        for offset in 5...100 { oracle.observe(key, position: UInt64(offset)) }
        oracle.settle(acked: [ChannelPublisher(channel: 0, publisher: 0): 100])
        #expect(oracle.violations.total == 0)
    }

    @Test func catchesGapsDuplicatesAndReorders() {
        var oracle = Oracle()
        oracle.expect(key, from: 1)
        for offset: UInt64 in [1, 2, 5, 5, 3, 6] { oracle.observe(key, position: offset) }
        #expect(oracle.violations.gaps == 2)  // 3 and 4 skipped
        #expect(oracle.violations.duplicates == 1)  // 5 twice
        #expect(oracle.violations.order == 1)  // 3 after 5
        #expect(oracle.violations.examples.count == 3)
        #expect(oracle.violations.examples[0].contains("expected 3, got 5"))
    }

    @Test func missingFirstMessageIsAGap() {
        var oracle = Oracle()
        oracle.expect(key, from: 10)
        oracle.observe(key, position: 11)
        #expect(oracle.violations.gaps == 1)
    }

    @Test func acknowledgedButNeverDeliveredIsLost() {
        var oracle = Oracle()
        oracle.expect(key, from: 1)
        for offset: UInt64 in 1...7 { oracle.observe(key, position: offset) }
        let other = StreamKey(subscriber: 2, channel: 0, publisher: 0)
        oracle.expect(other, from: 1)  // subscribed, received nothing
        oracle.settle(acked: [ChannelPublisher(channel: 0, publisher: 0): 10])
        #expect(oracle.violations.lost == 3 + 10)
        #expect(oracle.violations.gaps == 0)
    }

    /// The drain waits while a subscriber is owed acknowledged messages; owing ends when
    /// the stream catches up, and a stream of another publisher owes nothing.
    @Test func owedUntilTheStreamCatchesUp() {
        var oracle = Oracle()
        oracle.expect(key, from: 1)
        for offset: UInt64 in 1...7 { oracle.observe(key, position: offset) }
        let acked: [ChannelPublisher: UInt64] = [ChannelPublisher(channel: 0, publisher: 0): 9]
        #expect(oracle.owes(acked: acked))
        #expect(!oracle.owes(acked: [ChannelPublisher(channel: 0, publisher: 1): 9]))
        for offset: UInt64 in 8...9 { oracle.observe(key, position: offset) }
        #expect(!oracle.owes(acked: acked))
        oracle.settle(acked: acked)
        #expect(oracle.violations.lost == 0)
    }

    @Test func resumeContinuesTheStream() {
        var oracle = Oracle()
        oracle.expect(key, from: 1)
        for offset: UInt64 in 1...4 { oracle.observe(key, position: offset) }
        #expect(oracle.resumePosition(key) == 5)
        oracle.expect(key, from: 5)  // reconnected and resumed correctly
        oracle.observe(key, position: 5)
        #expect(oracle.violations.total == 0)
        oracle.expect(key, from: 9)  // resumed too far: 6, 7, 8 were skipped
        #expect(oracle.violations.gaps == 3)
    }

    @Test func perPublisherSequencesAreIndependent() {
        var oracle = Oracle()
        let a = StreamKey(subscriber: 1, channel: 0, publisher: 1)
        let b = StreamKey(subscriber: 1, channel: 0, publisher: 2)
        for sequence: UInt64 in 1...3 {
            oracle.observe(a, position: sequence + 10)
            oracle.observe(b, position: sequence)
        }
        #expect(oracle.violations.total == 0)
        oracle.forget(subscriber: 1, channel: 0)
        oracle.observe(a, position: 100)  // after a re-subscribe without history: a fresh baseline
        #expect(oracle.violations.total == 0)
    }
}
