import CLinux

/// How the process's allocator treats buffers freed under load.
public enum ProcessMemory {
    /// Below this size, allocations come from malloc's heaps instead of fresh mappings.
    public static let heapAllocationBytesMax: Int32 = 8 << 20
    /// Freed memory a heap keeps at its top instead of handing back to the kernel.
    public static let retainedFreeBytesMax: Int32 = 32 << 20

    /// A node allocates and frees buffers of hundreds of KiB every replication cycle (a
    /// cycle's RAFT frames, the entries a follower receives). By default malloc maps such
    /// buffers afresh and unmaps them when freed, or trims its heaps, so every use touched
    /// new pages: page faults, zeroing and memory-cgroup charging took a quarter of a
    /// leader's event-loop thread. Kept, the same memory serves the next cycle. Call once,
    /// before starting threads. False if malloc refused the settings.
    @discardableResult public static func keepFreedBuffers() -> Bool {
        clinux_malloc_keep_freed(heapAllocationBytesMax, retainedFreeBytesMax) == 1
    }
}
