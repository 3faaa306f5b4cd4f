import ChaparCore

/// What the controller (Raft group 0) holds: the fixed settings, the node registry and
/// the shard map. Changed only by applying committed `ControllerCommand`s, in log order,
/// so every controller replica holds the same state — a value, no I/O.
public struct ClusterState: Equatable, Sendable {
    public struct NodeRecord: Equatable, Sendable {
        public var zone: String
        public var weight: Int
        public var draining: Bool

        public init(zone: String, weight: Int = 1, draining: Bool = false) {
            self.zone = zone
            self.weight = weight
            self.draining = draining
        }
    }

    public private(set) var settings: PlacementSettings
    /// Nodes that may hold replicas (an operator's `remove` takes one out for good).
    public private(set) var nodes: [String: NodeRecord]
    public private(set) var map: ShardMap

    /// The bootstrap state: the founding members and the first map placed over them.
    public init(settings: PlacementSettings, founders: [(id: String, zone: String)]) {
        self.settings = settings
        nodes = Dictionary(uniqueKeysWithValues: founders.map { ($0.id, NodeRecord(zone: $0.zone)) })
        map = Placement.place(founders.map { PlacementNode(id: $0.id, zone: $0.zone) }, settings, epoch: 1)
    }

    public var candidates: [PlacementNode] {
        nodes.sorted { $0.key < $1.key }.map { PlacementNode(id: $0.key, zone: $0.value.zone, weight: $0.value.weight, draining: $0.value.draining) }
    }

    /// Applies one committed command. Returns what it did, for logs and the admin API.
    /// Membership (gossip) never appears here: a node that gossip declares dead keeps its
    /// replicas until an operator removes it.
    @discardableResult
    public mutating func apply(_ command: ControllerCommand) -> ControllerOutcome {
        switch command {
        case .register(let id, let zone, let weight):
            if let known = nodes[id], known.zone == zone, known.weight == weight { return .unchanged }
            nodes[id] = NodeRecord(zone: zone, weight: weight, draining: nodes[id]?.draining ?? false)
            return .registry
        case .setDraining(let id, let draining):
            guard var record = nodes[id] else { return .refused("no node '\(id)'") }
            guard record.draining != draining else { return .unchanged }
            record.draining = draining
            nodes[id] = record
            return .registry
        case .remove(let id):
            guard nodes.removeValue(forKey: id) != nil else { return .refused("no node '\(id)'") }
            return .registry
        case .rebalance:
            let eligible = candidates
            guard eligible.contains(where: { !$0.draining }) else { return .refused("no node may hold replicas") }
            var next = Placement.rebalance(map, eligible, settings).target
            guard next.replicas != map.replicas else { return .unchanged }
            next.epoch = map.epoch + 1
            map = next
            return .newMap(epoch: next.epoch)
        case .setEpsilon(let epsilon):
            guard epsilon >= 0 && epsilon <= 1 else { return .refused("epsilon must be within 0…1") }
            settings.epsilon = epsilon
            return .registry
        }
    }
}

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

    enum Tag: UInt8 { case register = 1, setDraining, remove, rebalance, setEpsilon }

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
