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

    /// Starts copying a received (and verified) snapshot file of a replica whose channels
    /// `owns` names (`controller`: the controller's group, whose snapshot holds the cluster
    /// state instead). Pass it to `commit(staging:)` until complete, then install it.
    public func beginStaging(path: String, owns: @escaping (String) -> Bool, controller: Bool) throws(StorageError) -> SnapshotStaging {
        let staging = try SnapshotStaging(path: path, owns: owns, controller: controller)
        stagings.add(staging)
        return staging
    }

    /// Inside the commit's transaction: copies up to `bytesMax` from the stagings, each in
    /// a savepoint, so a failing one is rolled back alone and marked failed.
    func copy(_ stagings: [SnapshotStaging], bytesMax: Int) throws(StorageError) {
        var budget = bytesMax
        for staging in stagings where budget > 0 && !staging.isComplete && staging.failure == nil {
            try savepoint.run()
            do throws(StorageError) {
                budget -= try staging.copy(into: writer, bytesMax: budget)
                try release.run()
            } catch {
                try rollbackToSavepoint.run()
                try release.run()
                staging.fail(error)
            }
        }
    }

    /// Inside the commit's transaction: replaces a replica's state with a copied snapshot.
    func install(_ install: SnapshotInstall) throws(StorageError) {
        let staging = install.staging
        precondition(staging.isComplete && staging.failure == nil, "installing an incomplete snapshot copy")
        let header = staging.header
        try writer.drop(channels: writer.channels.keys.filter(staging.owns))
        if staging.controller { try tables.forgetClusterState() }
        try tables.replaceWithSnapshot(
            shard: header.shard, index: header.index, term: header.term, configuration: header.configuration)
        for channel in staging.channels {
            try writer.adoptStagedChannel(
                name: channel.name, id: channel.id, head: channel.head, earliest: channel.earliest, bytes: channel.bytes,
                lastTimestamp: channel.lastTimestamp)
        }
        if let state = staging.clusterState { try tables.saveClusterState(state) }
    }

    /// Deletes up to `rowsMax` records of dropped channels (and abandoned snapshot copies)
    /// in one transaction. Returns how many went.
    @discardableResult
    public func collectDropped(rowsMax: Int) throws(StorageError) -> Int {
        guard try writer.hasDropped() else { return 0 }
        let keeping = stagings.liveIds
        return try transaction { () throws(StorageError) -> Int in try writer.collectDropped(rowsMax: rowsMax, keeping: keeping) }
    }
}

/// The snapshot copies a store has begun and whose owner still holds them: their rows
/// are kept from collection. An abandoned copy (released) is collected like a dropped
/// channel.
final class StagingRegistry {
    private struct Weak { weak var staging: SnapshotStaging? }
    private var entries: [Weak] = []

    func add(_ staging: SnapshotStaging) { entries.append(Weak(staging: staging)) }

    var liveIds: Set<Int64> {
        entries.removeAll { $0.staging == nil || $0.staging!.failure != nil }
        return entries.reduce(into: Set<Int64>()) { $0.formUnion($1.staging!.ids) }
    }
}
