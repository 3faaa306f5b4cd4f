import FoundationEssentials

/// `DATA/chapard.addr`: the address the node listens on, written once it accepts
/// connections, so scripts and tests that asked for port 0 can find it.
public enum AddressFile {
    public static let name = "chapard.addr"

    /// Writes atomically (temporary file, then rename): a reader sees all or nothing.
    public static func write(_ address: String, directory: String) throws {
        let path = directory + "/" + name
        try Data((address + "\n").utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
