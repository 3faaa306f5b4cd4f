import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// `DATA/chapard.addr`: the address the node listens on, written once it accepts
/// connections, so scripts and tests that asked for port 0 can find it.
public enum AddressFile {
    public static let name = "chapard.addr"

    /// Writes atomically (temporary file, then rename): a reader sees all or nothing.
    /// `DATA/chapard.json` holds every address: `{"client", "gossip", "admin", "peer", "pid"}`.
    public static func write(
        _ address: String, directory: String, gossip: String? = nil, admin: String? = nil, peer: String? = nil
    ) throws {
        let details = "{\"client\": \"\(address)\", \"gossip\": \"\(gossip ?? "")\", \"admin\": \"\(admin ?? "")\", "
            + "\"peer\": \"\(peer ?? "")\", \"pid\": \(getpid())}\n"
        try Data(details.utf8).write(to: URL(fileURLWithPath: directory + "/chapard.json"), options: .atomic)
        let path = directory + "/" + name
        try Data((address + "\n").utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
