import ChaparCore

/// Appends batches of publishes in one transaction each and keeps every channel's
/// head in memory. Used only on the group committer's thread.
final class LogWriter {
    struct ChannelState {
        var id: Int64
        var head: UInt64
        var earliest: UInt64
        var bytes: Int64
        var lastTimestamp: Int64
        var isNew: Bool
    }

    struct ProducerKey: Hashable {
        var channelId: Int64
        var producer: UInt64
    }

    struct ProducerState {
        var sequence: UInt64
        var offset: UInt64
    }

    let db: Database
    var channels: [String: ChannelState] = [:]
    private var producers: [ProducerKey: ProducerState] = [:]
    var nextChannelId: Int64 = 1

    private let insertRun: Statement
    private let insertChannel: Statement
    private let updateChannel: Statement
    private let selectProducer: Statement
    let upsertProducer: Statement
    private let begin: Statement
    private let commit: Statement
    private let rollback: Statement

    init(db: Database) throws(StorageError) {
        self.db = db
        insertRun = try db.prepare(
            "INSERT INTO record_runs(channel, first, last, records, payload, ref_shard, ref_idx) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)")
        insertChannel = try db.prepare(
            "INSERT INTO channels(id, name, head, earliest, bytes, last_ts) VALUES(?1, ?2, ?3, ?4, ?5, ?6)")
        updateChannel = try db.prepare("UPDATE channels SET head=?2, earliest=?3, bytes=?4, last_ts=?5 WHERE id=?1")
        selectProducer = try db.prepare("SELECT sequence, offset FROM producers WHERE channel=?1 AND producer=?2")
        upsertProducer = try db.prepare("""
            INSERT INTO producers(channel, producer, sequence, offset, updated_ts) VALUES(?1, ?2, ?3, ?4, ?5)
            ON CONFLICT(channel, producer) DO UPDATE SET sequence=?3, offset=?4, updated_ts=?5
            """)
        begin = try db.prepare("BEGIN IMMEDIATE")
        commit = try db.prepare("COMMIT")
        rollback = try db.prepare("ROLLBACK")
        try load()
    }

    private func load() throws(StorageError) {
        let statement = try db.prepare("SELECT id, name, head, earliest, bytes, last_ts FROM channels")
        while try statement.step() {
            let id = statement.int64(0)
            let name = String(decoding: statement.blob(1), as: UTF8.self)
            let head = UInt64(statement.int64(2))
            let earliest = UInt64(statement.int64(3))
            precondition(earliest >= 1 && earliest <= head + 1, "stored bounds of '\(name)' are inconsistent")
            channels[name] = ChannelState(
                id: id, head: head, earliest: earliest, bytes: statement.int64(4),
                lastTimestamp: statement.int64(5), isNew: false)
            nextChannelId = max(nextChannelId, id + 1)
        }
        // Ids of dropped channels and unfinished snapshot copies are never reused.
        let dropped = try db.prepare("SELECT max(id) FROM dropped_channels")
        if try dropped.step(), !dropped.isNull(0) { nextChannelId = max(nextChannelId, dropped.int64(0) + 1) }
    }

    /// What `stage` wrote inside a transaction, adopted into memory once it commits.
    struct Staged {
        var outcomes: [AppendOutcome] = []
        var appended: [ChannelAppend] = []
        var channels: [String: ChannelState] = [:]
        var producers: [ProducerKey: ProducerState] = [:]

        /// Takes in what a later `stage(over: self)` wrote (its outcomes stay its own).
        mutating func merge(_ later: Staged) {
            channels.merge(later.channels) { $1 }
            producers.merge(later.producers) { $1 }
            appended += later.appended
        }
    }

    /// Stores `inputs` in one transaction. Outcomes line up with inputs. On failure the
    /// transaction is rolled back, every stored-looking outcome becomes `.failed`, and the
    /// in-memory state is left as before the call.
    func append(_ inputs: [AppendInput], now: Int64) -> (outcomes: [AppendOutcome], appended: [ChannelAppend]) {
        do throws(StorageError) {
            try begin.run()
            let staged = try stage(inputs, now: now)
            try commit.run()
            adopt(staged)
            return (staged.outcomes, staged.appended)
        } catch {
            try? rollback.run()
            return (inputs.map { _ in AppendOutcome.failed(error) }, [])
        }
    }

    /// Writes `inputs` inside the caller's open transaction without touching the
    /// in-memory state; call `adopt` once that transaction commits. `base`: what an
    /// earlier `stage` in the same transaction wrote, which these inputs follow.
    func stage(_ inputs: [AppendInput], now: Int64, over base: Staged? = nil) throws(StorageError) -> Staged {
        var result = Staged()
        var staged: [String: ChannelState] = [:]
        var stagedProducers: [ProducerKey: ProducerState] = [:]
        result.outcomes.reserveCapacity(inputs.count)
        var appended: [String: [StoredRecord]] = [:]
        var order: [String] = []
        var nextId = base.map { $0.channels.values.reduce(nextChannelId) { max($0, $1.id + 1) } } ?? nextChannelId
        // Batches arrive in runs of one channel (a Raft entry holds a cycle's publishes of
        // a channel): its state and records stay in locals until the channel changes,
        // instead of a few dictionary lookups by name per record.
        var currentName: String?
        var state = ChannelState(id: 0, head: 0, earliest: 1, bytes: 0, lastTimestamp: 0, isNew: true)
        var records: [StoredRecord] = []
        var run: RecordRun.Builder?
        func park() throws(StorageError) {
            if let pending = run { try insert(pending) }
            run = nil
            // A channel none of whose publishes was stored (duplicates) stays as it was.
            guard let name = currentName, !records.isEmpty || staged[name] != nil else { return }
            if staged[name] == nil { order.append(name) }
            staged[name] = state
            if !records.isEmpty {
                appended[name, default: []].append(contentsOf: records)
                records.removeAll(keepingCapacity: true)
            }
        }
        for input in inputs {
            if input.channel != currentName {
                try park()
                currentName = input.channel
                state = staged[input.channel] ?? base?.channels[input.channel].map(Self.stored) ?? channels[input.channel] ?? {
                    defer { nextId += 1 }
                    return ChannelState(id: nextId, head: 0, earliest: 1, bytes: 0, lastTimestamp: 0, isNew: true)
                }()
            }
            let key = ProducerKey(channelId: state.id, producer: input.producer?.id ?? 0)
            if let stamp = input.producer {
                var known = stagedProducers[key] ?? base?.producers[key] ?? producers[key]
                if known == nil { known = try storedProducer(key) }
                if let known, stamp.sequence <= known.sequence {
                    result.outcomes.append(.duplicate(offset: stamp.sequence == known.sequence ? known.offset : 0))
                    continue
                }
                if let known, stamp.sequence > known.sequence + 1 {
                    result.outcomes.append(.sequenceGap(expected: known.sequence + 1))
                    continue
                }
            }
            let offset = state.head + 1
            let timestamp = max(input.timestamp ?? now, state.lastTimestamp)
            let crc = input.payload.withUnsafeBytes {
                RecordChecksum.compute(channelId: state.id, offset: offset, timestamp: timestamp, payload: $0)
            }
            try extend(&run, channelId: state.id, offset: offset, timestamp: timestamp, crc: crc, payload: input.payload,
                       reference: input.reference)
            state.head = offset
            state.bytes += Int64(input.payload.count)
            state.lastTimestamp = timestamp
            if let stamp = input.producer {
                stagedProducers[key] = ProducerState(sequence: stamp.sequence, offset: offset)
            }
            records.append(StoredRecord(offset: offset, timestamp: timestamp, payload: input.payload))
            result.outcomes.append(.stored(offset: offset, timestamp: timestamp))
        }
        try park()
        for name in order {
            try save(name: name, staged[name]!)
        }
        for (key, state) in stagedProducers {
            upsertProducer.bind(1, key.channelId)
            upsertProducer.bind(2, Int64(bitPattern: key.producer))
            upsertProducer.bind(3, Int64(bitPattern: state.sequence))
            upsertProducer.bind(4, Int64(state.offset))
            upsertProducer.bind(5, now)
            try upsertProducer.run()
        }
        result.channels = staged
        result.producers = stagedProducers
        result.appended = order.map { ChannelAppend(channel: $0, records: appended[$0]!) }
        return result
    }

    /// Adds a record to the run being built, first writing that run out when the record
    /// cannot continue it (another entry, not the next offset, or the run is full).
    func extend(_ run: inout RecordRun.Builder?, channelId: Int64, offset: UInt64, timestamp: Int64, crc: UInt32,
                payload: ArraySlice<UInt8>, reference: PayloadReference?) throws(StorageError) {
        if run?.accepts(offset: offset, reference: reference, size: payload.count) != true {
            if let pending = run { try insert(pending) }
            run = RecordRun.Builder(channelId: channelId, first: offset, reference: reference)
        }
        run!.append(timestamp: timestamp, crc: crc, payload: payload, reference: reference)
    }

    /// One row of `record_runs`.
    func insert(_ run: RecordRun.Builder) throws(StorageError) {
        insertRun.bind(1, run.channelId)
        insertRun.bind(2, Int64(run.first))
        insertRun.bind(3, Int64(run.last))
        insertRun.bind(4, run.records.bytes)
        insertRun.bind(5, run.inline)
        if let entry = run.entry {
            insertRun.bind(6, Int64(entry.shard))
            insertRun.bind(7, Int64(entry.index))
        } else {
            insertRun.bindNull(6)
            insertRun.bindNull(7)
        }
        try insertRun.run()
    }

    /// A channel's state as staged earlier in the open transaction: its row exists now.
    private static func stored(_ state: ChannelState) -> ChannelState {
        var state = state
        state.isNew = false
        return state
    }

    /// Takes the staged state as current: its transaction committed.
    func adopt(_ staged: Staged) {
        for (name, var state) in staged.channels {
            state.isNew = false
            channels[name] = state
            nextChannelId = max(nextChannelId, state.id + 1)
        }
        producers.merge(staged.producers) { $1 }
    }

    func save(name: String, _ state: ChannelState) throws(StorageError) {
        precondition(state.earliest >= 1 && state.earliest <= state.head + 1)
        if state.isNew {
            insertChannel.bind(1, state.id)
            insertChannel.bind(2, Array(name.utf8))
            insertChannel.bind(3, Int64(state.head))
            insertChannel.bind(4, Int64(state.earliest))
            insertChannel.bind(5, state.bytes)
            insertChannel.bind(6, state.lastTimestamp)
            try insertChannel.run()
        } else {
            updateChannel.bind(1, state.id)
            updateChannel.bind(2, Int64(state.head))
            updateChannel.bind(3, Int64(state.earliest))
            updateChannel.bind(4, state.bytes)
            updateChannel.bind(5, state.lastTimestamp)
            try updateChannel.run()
        }
    }

    private func storedProducer(_ key: ProducerKey) throws(StorageError) -> ProducerState? {
        defer { selectProducer.reset() }
        selectProducer.bind(1, key.channelId)
        selectProducer.bind(2, Int64(bitPattern: key.producer))
        guard try selectProducer.step() else { return nil }
        let state = ProducerState(
            sequence: UInt64(bitPattern: selectProducer.int64(0)), offset: UInt64(selectProducer.int64(1)))
        producers[key] = state
        return state
    }

    /// Records new bounds after retention removed records (called by `Retention`).
    func retired(name: String, earliest: UInt64, bytesRemoved: Int64) throws(StorageError) {
        guard var state = channels[name] else { return }
        state.earliest = earliest
        state.bytes -= bytesRemoved
        try save(name: name, state)
        channels[name] = state
    }

    /// Inside an open transaction: drops channels (their replica left this node, or a
    /// snapshot replaces them). Their rows are deleted later, a bounded number per
    /// transaction (`collectDropped`), so dropping a large replica stalls nothing.
    func drop(channels names: [String]) throws(StorageError) {
        for name in names {
            guard let state = channels.removeValue(forKey: name) else { continue }
            try db.execute("DELETE FROM channels WHERE id=\(state.id)")
            try markDropped(state.id)
            producers = producers.filter { $0.key.channelId != state.id }
        }
    }

    /// Forgets cached producer state for producers idle since `before` (the rows go too).
    func expireProducers(before: Int64) throws(StorageError) {
        try db.execute("DELETE FROM producers WHERE updated_ts < \(before)")
        producers.removeAll(keepingCapacity: true)
    }
}
