import ChaparCore

/// The store of a clustered node: the Raft logs of its shard replicas and the channel
/// logs they apply to. A `commit` appends the cycle's new Raft entries and hard states to
/// the entry log and syncs it (the cycle's one fsync), then records them in SQLite in one
/// transaction with the committed publishes applied and how far each replica applied —
/// so a crash never leaves a record applied twice or lost. That transaction is not
/// synced: after a power loss SQLite may come back without its last transactions, and
/// opening the store replays the entry log's records past SQLite's watermark into it
/// (committed entries it had applied are applied again by Raft, to the same offsets).
/// What the entry log does not carry — snapshot installs, dropped and reset replicas,
/// learned cluster maps — commits synced. Used by one thread only.
public final class ReplicatedStore {
    let writer: LogWriter
    let tables: RaftLogTables
    let entryLog: EntryLog
    let durability: Durability
    private let syncCommits: Statement
    private let deferCommitSyncs: Statement
    private let begin: Statement
    private let end: Statement
    private let rollback: Statement
    let savepoint: Statement
    let release: Statement
    let rollbackToSavepoint: Statement
    let stagings = StagingRegistry()
    public let directory: DataDirectory

    public init(directory: DataDirectory, durability: Durability, segmentBytesMax: UInt64 = 64 << 20) throws(StorageError) {
        self.directory = directory
        self.durability = durability
        let db = try Schema.openWriter(path: directory.databasePath, durability: durability, syncsCommits: false)
        writer = try LogWriter(db: db)
        tables = try RaftLogTables(db: db, segments: SegmentReader(path: directory.entriesPath))
        begin = try db.prepare("BEGIN IMMEDIATE")
        end = try db.prepare("COMMIT")
        rollback = try db.prepare("ROLLBACK")
        savepoint = try db.prepare("SAVEPOINT staging")
        release = try db.prepare("RELEASE staging")
        rollbackToSavepoint = try db.prepare("ROLLBACK TO staging")
        syncCommits = try db.prepare("PRAGMA synchronous=\(durability == .fsync ? "FULL" : "NORMAL")")
        deferCommitSyncs = try db.prepare("PRAGMA synchronous=NORMAL")
        let watermark = try tables.watermark()
        entryLog = try EntryLog(path: directory.entriesPath, segmentBytesMax: segmentBytesMax, after: watermark)
        if watermark == nil {
            // Recorded durably before the first append: from now on the log's records
            // are replayed after a crash, never taken for leftovers.
            try durably { () throws(StorageError) in try tables.setWatermark(entryLog.watermark) }
        } else if !entryLog.replayed.isEmpty {
            try durably { () throws(StorageError) in
                for record in entryLog.replayed {
                    try tables.persist(record.item, placed: zip(record.positions, record.crcs).map { (position: $0, crc: $1) })
                }
                try tables.setWatermark(entryLog.watermark)
            }
        }
        entryLog.forgetReplayed()
    }

    /// Runs `body` in one transaction that is synced when it commits (with `.fsync`).
    func durably<T>(_ body: () throws(StorageError) -> T) throws(StorageError) -> T {
        try syncCommits.run()
        defer { try? deferCommitSyncs.run() }
        return try transaction(body)
    }

    /// Every replica's persisted state and unapplied log (verified against their checksums).
    public func load() throws(StorageError) -> [Int: LoadedReplica] { try tables.load() }

    /// One replica's state, reloaded (and its log cut at any damage) while the node runs.
    public func load(shard: Int) throws(StorageError) -> LoadedReplica? { try tables.load(only: shard)[shard] }

    /// Stored Raft entries of `shard`, `from...through` (checksums verified).
    public func entries(shard: Int, from: UInt64, through: UInt64) throws(StorageError) -> [StoredRaftEntry] {
        try tables.entries(shard: shard, from: from, through: through)
    }

    /// The channel's last stored offset here (0: none).
    public func head(of channel: String) -> UInt64 { writer.channels[channel]?.head ?? 0 }

    public func channelBounds() -> [String: ChannelBounds] {
        writer.channels.mapValues { ChannelBounds(earliest: $0.earliest, head: $0.head) }
    }

    /// One transaction: `persist` first, then `apply` (committed publishes in log order),
    /// then the new applied indexes. Outcomes line up with `apply`. On failure nothing of
    /// it is stored and the in-memory state is unchanged.
    /// `clusterState`, when given, replaces the stored controller state (the controller's
    /// replicas store it with the applied index that produced it). `installs` come first:
    /// snapshots replacing replicas' state (the entries persisted after them follow them);
    /// `staging` copies up to `stagingBytesMax` of received snapshots in (a failing copy is
    /// marked failed, the rest commits). `staged` gets the outcomes once they are decided —
    /// before the transaction commits and before this cycle's entries are synced: applying
    /// committed entries is deterministic, so what it will store is known then, but only
    /// outcomes of entries persisted by an earlier `commit` rest on durable entries.
    /// `commitsOnly`: hard states that moved only their commit index, recorded by the
    /// transaction alone (no entry-log write, no sync): losing one loses nothing Raft
    /// relies on, and the entry log's older records replayed after a crash only move a
    /// commit index back, never below the applied index kept with the records.
    /// `synced` runs once everything `persist` holds is durable (before the transaction
    /// commits, unless `installs` need that commit): promises may go out from then on.
    /// `whileWriting`, when given, is called once the entry log's write has started, and
    /// again until that write has ended (it should wait for work, or for `onWriteDone`;
    /// without `persist` there is no write and it is not called): what it returns is
    /// applied in the same transaction, after `apply`, and its `staged` gets the outcomes.
    /// Only entries persisted by an earlier `commit` may be applied that way.
    public func commit(
        persist: [RaftPersist], commitsOnly: [RaftPersist] = [], apply: [AppendInput], appliedThrough: [Int: UInt64], clusterState: [UInt8]? = nil,
        installs: [SnapshotInstall] = [], staging: [SnapshotStaging] = [], stagingBytesMax: Int = 8 << 20, now: Int64,
        staged onStaged: ([AppendOutcome]) -> Void = { _ in }, synced onSynced: () -> Void = {},
        whileWriting: (() -> AppliedWhileWriting?)? = nil
    ) throws(StorageError) -> (outcomes: [AppendOutcome], appended: [ChannelAppend]) {
        // The cycle's write and sync of the entry log run on its own thread while the
        // statements below run here: they need only where the entries will lie. SQLite's
        // commit waits for that sync, so it never holds a position the entry log might lose.
        var placed: [[(position: EntryPosition, crc: UInt32)]] = []
        if !persist.isEmpty { placed = try entryLog.begin(persist, sync: durability == .fsync) }
        do throws(StorageError) {
            // An install replaces a replica's state outside the entry log: it must not be lost.
            if !installs.isEmpty { try syncCommits.run() }
            defer { if !installs.isEmpty { try? deferCommitSyncs.run() } }
            try begin.run()
            for item in installs { try install(item) }
            for (item, entries) in zip(persist, placed) { try tables.persist(item, placed: entries) }
            for item in commitsOnly { try tables.persist(item) }
            if !persist.isEmpty { try tables.setWatermark(entryLog.watermark) }
            // Before `stage`: copies take channel row ids, which `stage` then does not reuse.
            try copy(staging, bytesMax: stagingBytesMax)
            let staged = try writer.stage(apply, now: now)
            for (shard, index) in appliedThrough { try tables.setApplied(shard: shard, index: index) }
            if let clusterState { try tables.saveClusterState(clusterState) }
            onStaged(staged.outcomes)
            var all = staged
            if let whileWriting, installs.isEmpty, !persist.isEmpty {
                repeat {
                    guard let more = whileWriting(), !more.apply.isEmpty || !more.appliedThrough.isEmpty else { continue }
                    let next = try writer.stage(more.apply, now: now, over: all)
                    for (shard, index) in more.appliedThrough { try tables.setApplied(shard: shard, index: index) }
                    all.merge(next)
                    more.staged(next.outcomes)
                } while !entryLog.writeDone
            }
            try entryLog.finish()
            if installs.isEmpty { onSynced() }
            try end.run()
            if !installs.isEmpty { onSynced() }
            writer.adopt(all)
            return (staged.outcomes, all.appended)
        } catch {
            try? entryLog.finish()
            try? rollback.run()
            throw error
        }
    }

    /// Runs on the entry log's thread whenever a write ends: lets a `whileWriting` that
    /// waits on a semaphore of its own wake for it.
    public func onWriteDone(_ body: @escaping @Sendable () -> Void) { entryLog.onWriteDone(body) }

    /// Between cycles, once their messages are out: copies the last frames of a long
    /// write-ahead log when the checkpointer asks, so the log starts over (`LogRestart`).
    public func finishLogRestartIfAsked() {
        directory.logRestart.finishIfAsked(on: writer.db)
    }

    /// The stored cluster states: the controller's (as this node's replica of the
    /// controller applied it) and the newest one learned from a peer.
    public func loadClusterStates() throws(StorageError) -> (controller: [UInt8]?, learned: [UInt8]?) {
        try tables.loadClusterStates()
    }

    /// Stores a cluster state learned from a peer.
    public func saveLearnedClusterState(_ bytes: [UInt8]) throws(StorageError) {
        try durably { () throws(StorageError) in try tables.saveLearnedClusterState(bytes) }
    }

    /// Runs `body` in one transaction, rolled back if it throws.
    func transaction<T>(_ body: () throws(StorageError) -> T) throws(StorageError) -> T {
        do throws(StorageError) {
            try begin.run()
            let result = try body()
            try end.run()
            return result
        } catch {
            try? rollback.run()
            throw error
        }
    }

    /// Deletes this node's replica of `shard`: its Raft state and log, and the channels
    /// (`channels(name)` true) whose records it applied — or, for the controller's group
    /// (`controller`), the controller state it applied. One transaction.
    public func dropShard(_ shard: Int, controller: Bool = false, channels: (String) -> Bool) throws(StorageError) {
        try durably { () throws(StorageError) in
            try tables.drop(shard: shard)
            if controller { try tables.forgetClusterState() }
            try writer.drop(channels: writer.channels.keys.filter(channels))
        }
    }

    /// Empties a replica — its log, channels and applied index — but keeps its term and
    /// vote, marked as repairing until `repairing` (the last index it had stored, which it
    /// may have acknowledged): it rejoins its group empty. One transaction.
    public func resetShard(_ shard: Int, term: UInt64, vote: UInt64?, repairing: UInt64, channels: (String) -> Bool) throws(StorageError) {
        try durably { () throws(StorageError) in
            try tables.drop(shard: shard)
            try writer.drop(channels: writer.channels.keys.filter(channels))
            try tables.persist(RaftPersist(shard: shard, hardState: (term: term, vote: vote, commit: 0, repairing: repairing), entries: []))
        }
    }

    /// Drops records per `rules`. Producer dedup state is kept: expiring it by each
    /// replica's own clock would let replicas disagree on whether a retry is a duplicate,
    /// and so on the offsets of everything after it.
    public func applyRetention(_ rules: RetentionRules, now: Int64) throws(StorageError) {
        _ = try writer.applyRetention(rules, now: now)
    }
}
