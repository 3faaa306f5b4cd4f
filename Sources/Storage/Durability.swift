/// When a publish is acknowledged relative to the disk.
public enum Durability: String, Sendable, Codable, CaseIterable {
    /// Acknowledge after the transaction holding the message is fsynced (SQLite WAL,
    /// `synchronous=FULL`). Survives process crashes and power loss. The default.
    case fsync
    /// Acknowledge once the transaction is in the OS page cache (`synchronous=NORMAL`).
    /// Survives a process crash (`kill -9`); a power loss or kernel crash loses the
    /// transactions committed since the last WAL checkpoint.
    case osBuffer = "os-buffer"
}
