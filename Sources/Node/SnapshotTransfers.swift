import Storage
#if canImport(Glibc)
import Glibc
#endif

/// Snapshot files this node is sending and receiving, with their progress (replication
/// thread only). A sender keeps at most `windowBytes` unacknowledged on the link, so a
/// snapshot of any size costs a bounded amount of memory on both sides.
struct SnapshotTransfers {
    struct Key: Hashable {
        var shard: Int
        var node: String
    }

    /// A snapshot on its way to `Key.node`, read from `file` chunk by chunk.
    struct Outgoing {
        var peerId: UInt64
        var header: SnapshotHeader
        var path: String
        var file: UnsafeMutablePointer<FILE>
        var total: UInt64
        var sent: UInt64 = 0
        var acked: UInt64 = 0
    }

    /// A snapshot arriving from `Key.node`, written to `path`; checked once complete.
    struct Incoming {
        var index: UInt64
        var total: UInt64
        var received: UInt64 = 0
        var path: String
        var file: UnsafeMutablePointer<FILE>?
        /// Checked whole, it is being copied into the store (a bounded amount per cycle).
        var staging: SnapshotStaging?
        /// Its Raft message was handed to the replica (installed or not, the file is done).
        var stepped = false

        /// Copied whole: its Raft message may be handed to the replica.
        var isStaged: Bool { staging.map { $0.isComplete && $0.failure == nil } ?? false }
        var isCopying: Bool { staging.map { !$0.isComplete && $0.failure == nil } ?? false }
    }

    static let chunkBytes = 256 << 10
    static let windowBytes: UInt64 = 4 << 20
    /// Largest snapshot accepted from a peer.
    static let totalBytesMax: UInt64 = 1 << 40

    var outgoing: [Key: Outgoing] = [:]
    var incoming: [Key: Incoming] = [:]
    /// Snapshots being written by the background producer.
    var producing: Set<Key> = []
    /// Raft snapshot messages whose data is still being checked or copied in.
    var parked: [Key: ShardEnvelope] = [:]

    /// The copies in progress, for this cycle's transaction.
    var copying: [SnapshotStaging] { incoming.values.compactMap { $0.isCopying ? $0.staging : nil } }

    static func remove(_ path: String) { unlink(path) }

    mutating func closeOutgoing(_ key: Key) {
        guard let transfer = outgoing.removeValue(forKey: key) else { return }
        fclose(transfer.file)
        Self.remove(transfer.path)
    }

    mutating func closeIncoming(_ key: Key) {
        parked[key] = nil
        guard let transfer = incoming.removeValue(forKey: key) else { return }
        if let file = transfer.file { fclose(file) }
        Self.remove(transfer.path)
    }
}
