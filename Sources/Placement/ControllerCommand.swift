import ChaparCore

/// Operator decisions, replicated through the controller's Raft log.
public enum ControllerCommand: Equatable, Sendable {
    /// A node announces itself (idempotent): it becomes eligible for replicas at the next
    /// rebalance.
    case register(id: String, zone: String, weight: Int)
    case setDraining(id: String, draining: Bool)
    /// The node leaves the cluster for good; its replicas move at the next rebalance.
    case remove(id: String)
    /// Plans a new map from the registry with the fewest moves (Placement.rebalance).
    case rebalance
    case setEpsilon(Double)
    /// The controller's leader moves the controller's own seats (after a removal, or to
    /// spread zones); the group follows with one Raft membership step at a time.
    case setControllers([String])

    enum Tag: UInt8 { case register = 1, setDraining, remove, rebalance, setEpsilon, setControllers }

    public var encoded: [UInt8] {
        var writer = ByteWriter()
        switch self {
        case .register(let id, let zone, let weight):
            writer.write(Tag.register.rawValue); writer.writeShortBytes(Array(id.utf8)); writer.writeShortBytes(Array(zone.utf8))
            writer.write(UInt32(clamping: weight))
        case .setDraining(let id, let draining):
            writer.write(Tag.setDraining.rawValue); writer.writeShortBytes(Array(id.utf8)); writer.write(UInt8(draining ? 1 : 0))
        case .remove(let id):
            writer.write(Tag.remove.rawValue); writer.writeShortBytes(Array(id.utf8))
        case .rebalance:
            writer.write(Tag.rebalance.rawValue)
        case .setEpsilon(let epsilon):
            writer.write(Tag.setEpsilon.rawValue); writer.write(epsilon.bitPattern)
        case .setControllers(let ids):
            writer.write(Tag.setControllers.rawValue); writer.write(UInt8(clamping: ids.count))
            for id in ids { writer.writeShortBytes(Array(id.utf8)) }
        }
        return writer.finish()
    }

    public init(decoding bytes: [UInt8]) throws(DecodeFailure) {
        let result = bytes.withUnsafeBytes { raw -> Result<ControllerCommand, DecodeFailure> in
            do throws(DecodeFailure) {
                var reader = ByteReader(raw)
                guard let tag = Tag(rawValue: try reader.readUInt8("command")) else {
                    throw .invalid(field: "command", reason: "unknown controller command")
                }
                func text(_ field: String) throws(DecodeFailure) -> String {
                    String(decoding: try reader.readShortBytes(field), as: UTF8.self)
                }
                let command: ControllerCommand
                switch tag {
                case .register:
                    let id = try text("id")
                    let zone = try text("zone")
                    let weight = Int(try reader.readUInt32("weight"))
                    guard weight >= 1 else { throw .invalid(field: "weight", reason: "weights start at 1") }
                    command = .register(id: id, zone: zone, weight: weight)
                case .setDraining:
                    let id = try text("id")
                    command = .setDraining(id: id, draining: try reader.readUInt8("draining") == 1)
                case .remove: command = .remove(id: try text("id"))
                case .rebalance: command = .rebalance
                case .setEpsilon: command = .setEpsilon(Double(bitPattern: try reader.readUInt64("epsilon")))
                case .setControllers:
                    let count = Int(try reader.readUInt8("count"))
                    var ids: [String] = []
                    for _ in 0..<count { ids.append(try text("id")) }
                    command = .setControllers(ids)
                }
                try reader.expectEnd()
                return .success(command)
            } catch { return .failure(error) }
        }
        self = try result.get()
    }
}

public enum ControllerOutcome: Equatable, Sendable {
    case unchanged
    /// The registry or settings changed; the map did not (yet).
    case registry
    case newMap(epoch: UInt64)
    case refused(String)
}
