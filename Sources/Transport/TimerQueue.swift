/// Timers of one loop, ordered by deadline in a binary min-heap.
/// Cancellation marks the id; the entry is dropped when it reaches the top.
struct TimerQueue {
    private struct Entry {
        var deadline: Int64
        var id: UInt64
    }

    private var heap: [Entry] = []
    private var jobs: [UInt64: () -> Void] = [:]
    private var nextId: UInt64 = 1

    mutating func add(deadline: Int64, _ job: @escaping () -> Void) -> UInt64 {
        let id = nextId
        nextId += 1
        jobs[id] = job
        heap.append(Entry(deadline: deadline, id: id))
        siftUp(heap.count - 1)
        return id
    }

    mutating func cancel(_ id: UInt64) {
        jobs[id] = nil
    }

    /// Milliseconds until the earliest live timer, -1 when there is none (wait forever).
    mutating func nextTimeoutMs(now: Int64) -> Int32 {
        while let top = heap.first, jobs[top.id] == nil { pop() }
        guard let top = heap.first else { return -1 }
        return Int32(clamping: max(0, top.deadline - now))
    }

    /// Removes and returns every timer whose deadline has passed, earliest first. The
    /// caller runs them after this returns, so a job may schedule or cancel timers.
    mutating func takeDue(now: Int64) -> [() -> Void] {
        var due: [() -> Void] = []
        while let top = heap.first, top.deadline <= now {
            pop()
            if let job = jobs.removeValue(forKey: top.id) { due.append(job) }
        }
        return due
    }

    private mutating func pop() {
        heap.swapAt(0, heap.count - 1)
        heap.removeLast()
        if !heap.isEmpty { siftDown(0) }
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            if heap[parent].deadline <= heap[child].deadline { return }
            heap.swapAt(parent, child)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count && heap[left].deadline < heap[smallest].deadline { smallest = left }
            if right < heap.count && heap[right].deadline < heap[smallest].deadline { smallest = right }
            if smallest == parent { return }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
