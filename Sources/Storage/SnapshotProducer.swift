/// Writes a shard replica's snapshot from its own read-only connection, so the replication
/// thread goes on while it runs. One read transaction: the applied index it records and the
/// channel state it copies belong together (the replication thread writes both in one
/// transaction).
public enum SnapshotProducer {
    /// Writes the snapshot of `shard` to `path`: the channels `owns` selects with their
    /// records (payloads resolved out of the Raft log, checksums verified) and producer
    /// state, or (`controller`) the stored cluster state.
    public static func write(
        directory: DataDirectory, shard: Int, controller: Bool, owns: (String) -> Bool, to path: String
    ) throws(StorageError) -> SnapshotHeader {
        let db = try Database(path: directory.databasePath, readOnly: true)
        // Entered before the read transaction begins: the segments it sees stay.
        let pins = directory.segmentPins
        let (epoch, _) = pins.enter()
        defer { pins.leave(epoch) }
        try db.execute("BEGIN")
        defer { try? db.execute("COMMIT") }
        let state = try db.prepare("SELECT applied, snap_idx, snap_term, snap_conf FROM raft_state WHERE shard=?1")
        state.bind(1, Int64(shard))
        guard try state.step() else { throw .corruptRecord(channel: "raft state of shard \(shard)", offset: 0) }
        let applied = UInt64(state.int64(0))
        let snapshotIndex = UInt64(state.int64(1))
        var term = UInt64(state.int64(2))
        var configuration = state.isNull(3) ? [] : Array(state.blob(3))
        if applied != snapshotIndex {
            let entry = try db.prepare("SELECT term FROM raft_log WHERE shard=?1 AND idx=?2")
            entry.bind(1, Int64(shard))
            entry.bind(2, Int64(applied))
            guard try entry.step() else { throw .corruptRecord(channel: "raft log of shard \(shard)", offset: applied) }
            term = UInt64(entry.int64(0))
            let newest = try db.prepare(
                "SELECT data FROM raft_log WHERE shard=?1 AND kind=1 AND idx<=?2 AND idx>?3 ORDER BY idx DESC LIMIT 1")
            newest.bind(1, Int64(shard))
            newest.bind(2, Int64(applied))
            newest.bind(3, Int64(snapshotIndex))
            if try newest.step() { configuration = Array(newest.blob(0)) }
        }
        let header = SnapshotHeader(shard: shard, index: applied, term: term, configuration: configuration)
        let file = try SnapshotFileWriter(path: path, header: header)
        if controller {
            let cluster = try db.prepare("SELECT data FROM cluster_state WHERE id=1")
            if try cluster.step() { try file.append(.clusterState(Array(cluster.blob(0)))) }
        }
        try writeChannels(db: db, segments: SegmentReader(path: directory.entriesPath), owns: owns, into: file)
        try file.finish()
        return header
    }

    private static func writeChannels(
        db: Database, segments: SegmentReader, owns: (String) -> Bool, into file: SnapshotFileWriter
    ) throws(StorageError) {
        let channels = try db.prepare("SELECT id, name, head, earliest, bytes, last_ts FROM channels ORDER BY id")
        let runs = try db.prepare(
            "SELECT \(RecordRunReader.columns) FROM record_runs WHERE channel=?1 AND last>=?2 ORDER BY last")
        let reader = try RecordRunReader(db: db, segments: segments)
        let producers = try db.prepare("SELECT producer, sequence, offset, updated_ts FROM producers WHERE channel=?1")
        while try channels.step() {
            let name = String(decoding: channels.blob(1), as: UTF8.self)
            guard owns(name) else { continue }
            let id = channels.int64(0)
            let earliest = UInt64(channels.int64(3))
            try file.append(.channel(
                name: name, head: UInt64(channels.int64(2)), earliest: earliest, bytes: channels.int64(4),
                lastTimestamp: channels.int64(5)))
            runs.bind(1, id)
            runs.bind(2, Int64(earliest))
            while try runs.step() {
                // A damaged record is never handed on: the follower would store it as good.
                for slot in try RecordRunReader.slots(runs, from: 0, channel: name) where slot.offset >= earliest {
                    let payload = try reader.payload(slot, runs, from: 0, channelId: id, channel: name)
                    try file.append(.message(offset: slot.offset, timestamp: slot.timestamp, payload: payload))
                }
            }
            runs.reset()
            producers.bind(1, id)
            while try producers.step() {
                try file.append(.producer(
                    id: UInt64(bitPattern: producers.int64(0)), sequence: UInt64(bitPattern: producers.int64(1)),
                    offset: UInt64(producers.int64(2)), updated: producers.int64(3)))
            }
            producers.reset()
        }
    }
}
