import CSQLite
import CStorageVFS

/// One SQLite connection. Not thread-safe: a connection belongs to one thread
/// (the group committer's, or one event loop's reader) for its whole life.
final class Database {
    let handle: OpaquePointer
    let path: String

    init(path: String, readOnly: Bool) throws(StorageError) {
        // Every connection opens through Chapar's VFS (the default one's files, plus a
        // coalescing write-ahead log where `coalesceLog` asks for it).
        let registered = chapar_vfs_register()
        if registered != SQLITE_OK { throw .sqlite(call: "chapar_vfs_register", code: registered, message: "cannot register the VFS") }
        var db: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
            | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            if let db { sqlite3_close_v2(db) }
            throw .sqlite(call: "sqlite3_open_v2(\(path))", code: rc, message: message)
        }
        handle = db
        self.path = path
        sqlite3_busy_timeout(db, 5_000)
        sqlite3_extended_result_codes(db, 1)
    }

    deinit { sqlite3_close_v2(handle) }

    /// Gathers each commit's log writes into one pwrite (see Sources/CStorageVFS): other
    /// connections see a commit's frames only after they were written.
    func coalesceLog() throws(StorageError) {
        let rc = chapar_vfs_coalesce_wal(handle)
        if rc != SQLITE_OK { throw error("chapar_vfs_coalesce_wal", rc) }
    }

    /// Writes made through a coalescing log (nil: the log does not coalesce).
    var logWrites: (calls: Int64, bytes: Int64)? {
        var calls: Int64 = 0, bytes: Int64 = 0
        return chapar_vfs_wal_writes(handle, &calls, &bytes) == 1 ? (calls, bytes) : nil
    }

    func error(_ call: String, _ code: Int32) -> StorageError {
        .sqlite(call: call, code: code, message: String(cString: sqlite3_errmsg(handle)))
    }

    func execute(_ sql: String) throws(StorageError) {
        let rc = sqlite3_exec(handle, sql, nil, nil, nil)
        if rc != SQLITE_OK { throw error("exec(\(sql.prefix(60)))", rc) }
    }

    /// Rows the last INSERT, UPDATE or DELETE changed.
    var changes: Int { Int(sqlite3_changes(handle)) }

    func prepare(_ sql: String) throws(StorageError) -> Statement {
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard rc == SQLITE_OK, let statement else { throw error("prepare(\(sql.prefix(60)))", rc) }
        return Statement(statement, database: self)
    }

    /// Runs a single-value query such as a PRAGMA and returns its first column as text.
    func scalarText(_ sql: String) throws(StorageError) -> String? {
        let statement = try prepare(sql)
        guard try statement.step() else { return nil }
        return statement.text(0)
    }
}

/// A prepared statement, reset after every use so it can be reused on the hot path.
final class Statement {
    private let handle: OpaquePointer
    private unowned let database: Database

    init(_ handle: OpaquePointer, database: Database) {
        self.handle = handle
        self.database = database
    }

    deinit { sqlite3_finalize(handle) }

    func bind(_ index: Int32, _ value: Int64) {
        sqlite3_bind_int64(handle, index, value)
    }

    /// Binds bytes that SQLite copies, so the buffer may go away after the call.
    func bind(_ index: Int32, _ bytes: UnsafeRawBufferPointer) {
        sqlite3_bind_blob(handle, index, bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(bytes.count),
                          csqlite_transient())
    }

    func bindNull(_ index: Int32) {
        sqlite3_bind_null(handle, index)
    }

    func bind(_ index: Int32, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { bind(index, $0) }
    }

    /// Steps once: true when a row is available, false when done.
    func step() throws(StorageError) -> Bool {
        let rc = sqlite3_step(handle)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw database.error("sqlite3_step", rc)
        }
    }

    /// Steps a statement that returns no rows, then resets it.
    func run() throws(StorageError) {
        defer { reset() }
        _ = try step()
    }

    /// `run()` with parameter `index` bound to `bytes` in place (SQLITE_STATIC): a Raft
    /// entry is a cycle's publishes, ~100 KiB that SQLite would otherwise copy first. The
    /// binding is cleared before the bytes go out of reach.
    func run(binding bytes: [UInt8], at index: Int32) throws(StorageError) {
        var failure: StorageError?
        bytes.withUnsafeBytes { raw in
            sqlite3_bind_blob(handle, index, raw.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(raw.count), nil)
            do throws(StorageError) { try run() } catch { failure = error }
        }
        if let failure { throw failure }
    }

    func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }

    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }

    func blob(_ column: Int32) -> UnsafeRawBufferPointer {
        let count = Int(sqlite3_column_bytes(handle, column))
        guard count > 0, let base = sqlite3_column_blob(handle, column) else {
            return UnsafeRawBufferPointer(start: nil, count: 0)
        }
        return UnsafeRawBufferPointer(start: base, count: count)
    }

    func text(_ column: Int32) -> String? {
        guard let text = sqlite3_column_text(handle, column) else { return nil }
        return String(cString: text)
    }
}
