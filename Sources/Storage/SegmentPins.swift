import Synchronization

/// Keeps entry-log segments from being deleted under readers on other threads.
///
/// A segment goes once no `raft_log` row points into it; but a reader whose SQLite read
/// began before those rows were deleted still sees them. So deletion is by epochs: a
/// reader enters (taking the current epoch) before its first statement and leaves after
/// its last; a segment condemned at epoch E is deleted only once no reader that entered
/// before E is still inside. Readers that enter later cannot see rows pointing into it.
public final class SegmentPins: Sendable {
    private struct State {
        var epoch: UInt64 = 1
        var inside: [UInt64: Int] = [:]
        var condemned: [(segment: UInt64, epoch: UInt64)] = []
        /// Every segment below this is deleted or condemned.
        var floor: UInt64 = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// Before a read: the epoch to `leave` with, and the floor below which segments are
    /// gone (the reader may close them).
    func enter() -> (epoch: UInt64, floor: UInt64) {
        state.withLock { state in
            state.inside[state.epoch, default: 0] += 1
            return (state.epoch, state.floor)
        }
    }

    func leave(_ epoch: UInt64) {
        state.withLock { state in
            state.inside[epoch, default: 1] -= 1
            if state.inside[epoch] == 0 { state.inside[epoch] = nil }
        }
    }

    /// `segments` no longer hold any stored entry (durably so): to be deleted once the
    /// readers that may still see them have left.
    func condemn(_ segments: [UInt64], floor: UInt64) {
        state.withLock { state in
            state.epoch += 1
            for segment in segments where !state.condemned.contains(where: { $0.segment == segment }) {
                state.condemned.append((segment, state.epoch))
            }
            state.floor = max(state.floor, floor)
        }
    }

    /// Condemned segments no reader can reach any more; they are forgotten here.
    func releasable() -> [UInt64] {
        state.withLock { state in
            let oldest = state.inside.keys.min() ?? UInt64.max
            let free = state.condemned.filter { $0.epoch <= oldest }.map(\.segment)
            state.condemned.removeAll { $0.epoch <= oldest }
            return free
        }
    }
}
