/// A failure of the durable store, with the SQLite call and result code where one failed.
public enum StorageError: Error, Equatable, Sendable, CustomStringConvertible {
    /// An SQLite call returned `code`; `message` is SQLite's explanation.
    case sqlite(call: String, code: Int32, message: String)
    /// A stored record's checksum does not match its contents.
    case corruptRecord(channel: String, offset: UInt64)
    /// The store's files were written by an incompatible version.
    case incompatibleSchema(found: Int32, expected: Int32)
    /// The store is closed or closing.
    case closed
    /// A system call on one of the store's own files (the entry log) failed with `errno`.
    case io(call: String, code: Int32, message: String)
    /// The entry log holds no intact record at `offset` of `file`, and it is not the torn
    /// end of the log (a later segment follows, or the store's watermark lies past it).
    case damagedEntryLog(file: String, offset: UInt64)

    public var description: String {
        switch self {
        case .sqlite(let call, let code, let message): "\(call) failed (SQLite \(code)): \(message)"
        case .corruptRecord(let channel, let offset): "record \(offset) of channel '\(channel)' fails its checksum"
        case .incompatibleSchema(let found, let expected): "store schema version \(found), this build reads \(expected)"
        case .closed: "the store is closed"
        case .io(let call, let code, let message): "\(call) failed (errno \(code)): \(message)"
        case .damagedEntryLog(let file, let offset):
            "entry log \(file) is damaged at byte \(offset), before records the store needs"
        }
    }
}
