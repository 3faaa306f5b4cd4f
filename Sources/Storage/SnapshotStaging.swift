/// A received snapshot being copied into the store a bounded amount per transaction
/// (`ReplicatedStore.commit(staging:)`), so that installing a large one never holds up
/// the node's other shards for long. Its channels are invisible until `SnapshotInstall`
/// swaps them in, in one small transaction. Used by the store's thread only.
public final class SnapshotStaging {
    public let header: SnapshotHeader
    let path: String
    let owns: (String) -> Bool
    let controller: Bool
    private var reader: SnapshotFileReader?
    struct Channel {
        var name: String
        var id: Int64
        var head: UInt64
        var earliest: UInt64
        var bytes: Int64
        var lastTimestamp: Int64
    }
    private(set) var channels: [Channel] = []
    private var names: Set<String> = []
    private(set) var clusterState: [UInt8]?
    /// Every record is copied: it may be installed.
    public private(set) var isComplete = false
    /// Copying failed (the file or the disk); nothing of it will be installed.
    public private(set) var failure: StorageError?
    /// Row ids of its channels (kept from collection while it may install).
    var ids: Set<Int64> { Set(channels.map(\.id)) }

    init(path: String, owns: @escaping (String) -> Bool, controller: Bool) throws(StorageError) {
        let reader = try SnapshotFileReader(path: path)
        self.reader = reader
        header = reader.header
        self.path = path
        self.owns = owns
        self.controller = controller
    }

    /// Copies records until about `bytesMax` payload bytes went in or the file ends.
    /// Returns the bytes copied.
    func copy(into writer: LogWriter, bytesMax: Int) throws(StorageError) -> Int {
        guard let reader else { return 0 }
        var copied = 0
        // A channel's consecutive records go in together, as runs.
        var pending: [StoredRecord] = []
        func flush() throws(StorageError) {
            guard let channel = channels.last, !pending.isEmpty else { return }
            try writer.restoreRecords(channelId: channel.id, pending)
            pending.removeAll(keepingCapacity: true)
        }
        while copied < bytesMax {
            guard let record = try reader.next() else {
                isComplete = true
                self.reader = nil
                break
            }
            if case .message = record {} else { try flush() }
            switch record {
            case .channel(let name, let head, let earliest, let bytes, let lastTimestamp):
                guard !controller, owns(name), names.insert(name).inserted else {
                    throw SnapshotFileReader.damaged(path, "channel '\(name)' repeated, of another shard, or in the controller's")
                }
                let id = try writer.reserveStagedChannel()
                channels.append(Channel(name: name, id: id, head: head, earliest: earliest, bytes: bytes, lastTimestamp: lastTimestamp))
            case .message(let offset, let timestamp, let payload):
                guard let channel = channels.last, offset >= channel.earliest, offset <= channel.head else {
                    throw SnapshotFileReader.damaged(path, "record \(offset) outside its channel")
                }
                pending.append(StoredRecord(offset: offset, timestamp: timestamp, payload: payload))
                copied += payload.count + 32
            case .producer(let id, let sequence, let offset, let updated):
                guard let channel = channels.last else { throw SnapshotFileReader.damaged(path, "producer before its channel") }
                try writer.restoreProducer(channelId: channel.id, producer: id, sequence: sequence, offset: offset, updated: updated)
            case .clusterState(let bytes):
                guard controller else { throw SnapshotFileReader.damaged(path, "cluster state for a channel shard") }
                clusterState = bytes
            }
        }
        try flush()
        return copied
    }

    func fail(_ error: StorageError) {
        failure = error
        reader = nil
    }
}

/// A completely copied snapshot to install in place of its replica's state.
public struct SnapshotInstall {
    public var staging: SnapshotStaging

    public init(staging: SnapshotStaging) {
        self.staging = staging
    }
}
