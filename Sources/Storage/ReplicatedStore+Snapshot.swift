/// A snapshot received for one of this node's replicas, to install in place of its state.
public struct SnapshotInstall {
    public var path: String
    /// The channels of the replica's shard (all replaced by the snapshot's).
    public var owns: (String) -> Bool
    /// The controller's group: the snapshot carries the cluster state instead of channels.
    public var controller: Bool

    public init(path: String, owns: @escaping (String) -> Bool, controller: Bool) {
        self.path = path
        self.owns = owns
        self.controller = controller
    }
}

extension ReplicatedStore {
    /// Checks a received snapshot file whole (structure, record count, checksum) before
    /// its Raft message is acted on; returns what it stands for.
    public static func verifySnapshot(path: String) throws(StorageError) -> SnapshotHeader {
        try SnapshotFileReader.verify(path: path)
    }

    /// Trims `shard`'s stored log through `index` when it may go: applied here, and no
    /// retained record's payload lies in it (those entries wait for retention). One
    /// transaction. Returns the index and term actually trimmed through, or nil.
    public func trim(shard: Int, upTo index: UInt64) throws(StorageError) -> (index: UInt64, term: UInt64)? {
        try transaction { () throws(StorageError) -> (index: UInt64, term: UInt64)? in
            var limit = index
            if let oldest = try tables.oldestReferenced(shard: shard) { limit = min(limit, oldest - 1) }
            guard let state = try tables.state(shard: shard), limit > state.snapshotIndex, limit <= state.applied else { return nil }
            return (limit, try tables.trim(shard: shard, through: limit))
        }
    }

    /// Inside the commit's transaction: replaces a replica's state with a snapshot.
    func install(_ install: SnapshotInstall) throws(StorageError) {
        let reader = try SnapshotFileReader(path: install.path)
        let header = reader.header
        try writer.drop(channels: writer.channels.keys.filter(install.owns))
        if install.controller { try tables.forgetClusterState() }
        try tables.replaceWithSnapshot(
            shard: header.shard, index: header.index, term: header.term, configuration: header.configuration)
        var channel: Int64?
        while let record = try reader.next() {
            switch record {
            case .channel(let name, let head, let earliest, let bytes, let lastTimestamp):
                guard install.owns(name) else { throw SnapshotFileReader.damaged(install.path, "channel '\(name)' of another shard") }
                channel = try writer.restoreChannel(name: name, head: head, earliest: earliest, bytes: bytes, lastTimestamp: lastTimestamp)
            case .message(let offset, let timestamp, let payload):
                guard let channel else { throw SnapshotFileReader.damaged(install.path, "record before its channel") }
                try writer.restoreRecord(channelId: channel, offset: offset, timestamp: timestamp, payload: payload)
            case .producer(let id, let sequence, let offset, let updated):
                guard let channel else { throw SnapshotFileReader.damaged(install.path, "producer before its channel") }
                try writer.restoreProducer(channelId: channel, producer: id, sequence: sequence, offset: offset, updated: updated)
            case .clusterState(let bytes):
                guard install.controller else { throw SnapshotFileReader.damaged(install.path, "cluster state for a channel shard") }
                try tables.saveClusterState(bytes)
            }
        }
    }
}
