/// Channels restored from a snapshot, inside the caller's open transaction. Records get
/// their payload inline and a checksum under the channel's new row id.
extension LogWriter {
    func restoreChannel(name: String, head: UInt64, earliest: UInt64, bytes: Int64, lastTimestamp: Int64)
        throws(StorageError) -> Int64
    {
        guard channels[name] == nil, earliest >= 1, earliest <= head + 1 else {
            throw .corruptRecord(channel: name, offset: earliest)
        }
        let state = ChannelState(id: nextChannelId, head: head, earliest: earliest, bytes: bytes, lastTimestamp: lastTimestamp, isNew: true)
        nextChannelId += 1
        try save(name: name, state)
        channels[name] = ChannelState(id: state.id, head: head, earliest: earliest, bytes: bytes, lastTimestamp: lastTimestamp, isNew: false)
        return state.id
    }

    func restoreRecord(channelId: Int64, offset: UInt64, timestamp: Int64, payload: [UInt8]) throws(StorageError) {
        let crc = payload.withUnsafeBytes {
            RecordChecksum.compute(channelId: channelId, offset: offset, timestamp: timestamp, payload: $0)
        }
        try insertRecord(channelId: channelId, offset: offset, timestamp: timestamp, crc: crc, payload: payload, reference: nil)
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
