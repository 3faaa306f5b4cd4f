/// Channels restored from a snapshot, inside the caller's open transaction. A snapshot's
/// channels are copied in under fresh row ids marked dropped (invisible, and deleted if
/// the copy is abandoned), then made live at once when it installs. Records get their
/// payload inline and a checksum under the channel's new row id.
extension LogWriter {
    /// A fresh row id for a channel being copied in, marked dropped until it goes live.
    func reserveStagedChannel() throws(StorageError) -> Int64 {
        let id = nextChannelId
        nextChannelId += 1
        try markDropped(id)
        return id
    }

    /// Makes a copied channel live under `name` (no live channel may hold that name).
    func adoptStagedChannel(name: String, id: Int64, head: UInt64, earliest: UInt64, bytes: Int64, lastTimestamp: Int64)
        throws(StorageError)
    {
        guard channels[name] == nil, earliest >= 1, earliest <= head + 1 else {
            throw .corruptRecord(channel: name, offset: earliest)
        }
        try save(name: name, ChannelState(id: id, head: head, earliest: earliest, bytes: bytes, lastTimestamp: lastTimestamp, isNew: true))
        try unmarkDropped(id)
        channels[name] = ChannelState(id: id, head: head, earliest: earliest, bytes: bytes, lastTimestamp: lastTimestamp, isNew: false)
    }

    /// Consecutive records of a copied channel, stored inline in as few runs as fit.
    func restoreRecords(channelId: Int64, _ records: [StoredRecord]) throws(StorageError) {
        var run: RecordRun.Builder?
        for record in records {
            let crc = record.payload.withUnsafeBytes {
                RecordChecksum.compute(channelId: channelId, offset: record.offset, timestamp: record.timestamp, payload: $0)
            }
            try extend(&run, channelId: channelId, offset: record.offset, timestamp: record.timestamp, crc: crc,
                       payload: record.payload, reference: nil)
        }
        if let pending = run { try insert(pending) }
    }

    func restoreProducer(channelId: Int64, producer: UInt64, sequence: UInt64, offset: UInt64, updated: Int64) throws(StorageError) {
        upsertProducer.bind(1, channelId)
        upsertProducer.bind(2, Int64(bitPattern: producer))
        upsertProducer.bind(3, Int64(bitPattern: sequence))
        upsertProducer.bind(4, Int64(offset))
        upsertProducer.bind(5, updated)
        try upsertProducer.run()
    }
}
