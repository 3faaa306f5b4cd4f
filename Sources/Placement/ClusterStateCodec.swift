import ChaparCore

/// The whole controller state as bytes: what a node persists with its applied index and
/// what it sends a peer that announces an older map epoch (docs/PROTOCOL.md, "MAP").
///
/// `u8 version` · `u64 origin` · `u32 shards` · `u8 replicas` · `u64 epsilon (IEEE 754 bits)` ·
/// `u32 nodes` × (`short id` · `short zone` · `u32 weight` · `u8 draining`) ·
/// `u32 retired` × `short id` · `u8 controllers` × `short id` · `u64 epoch` · `shards` × (`u8 count` · count × `short node id`).
extension ClusterState {
    static let codecVersion: UInt8 = 2

    public var encoded: [UInt8] {
        var writer = ByteWriter(capacity: 64 + map.replicas.count * 16)
        writer.write(Self.codecVersion)
        writer.write(origin)
        writer.write(UInt32(settings.shards))
        writer.write(UInt8(settings.replicas))
        writer.write(settings.epsilon.bitPattern)
        writer.write(UInt32(nodes.count))
        for (id, record) in nodes.sorted(by: { $0.key < $1.key }) {
            writer.writeShortBytes(Array(id.utf8))
            writer.writeShortBytes(Array(record.zone.utf8))
            writer.write(UInt32(clamping: record.weight))
            writer.write(UInt8(record.draining ? 1 : 0))
        }
        writer.write(UInt32(retired.count))
        for id in retired.sorted() { writer.writeShortBytes(Array(id.utf8)) }
        writer.write(UInt8(clamping: controllers.count))
        for id in controllers { writer.writeShortBytes(Array(id.utf8)) }
        writer.write(map.epoch)
        for set in map.replicas {
            writer.write(UInt8(set.count))
            for id in set { writer.writeShortBytes(Array(id.utf8)) }
        }
        return writer.finish()
    }

    /// Decodes and checks the state: sizes within bounds, every replica a registered node
    /// or one removed since (the map lags the registry until the next rebalance).
    public init(decoding bytes: [UInt8]) throws(DecodeFailure) {
        let result = bytes.withUnsafeBytes { raw -> Result<ClusterState, DecodeFailure> in
            do throws(DecodeFailure) { return .success(try Self.decode(raw)) } catch { return .failure(error) }
        }
        self = try result.get()
    }

    private static func decode(_ raw: UnsafeRawBufferPointer) throws(DecodeFailure) -> ClusterState {
        var reader = ByteReader(raw)
        let version = try reader.readUInt8("version")
        guard version == codecVersion else { throw .invalid(field: "version", reason: "cluster state version \(version)") }
        let origin = try reader.readUInt64("origin")
        let shards = Int(try reader.readUInt32("shards"))
        let replicas = Int(try reader.readUInt8("replicas"))
        let epsilon = Double(bitPattern: try reader.readUInt64("epsilon"))
        guard (1...65_536).contains(shards), replicas >= 1, epsilon >= 0 && epsilon <= 1 else {
            throw .invalid(field: "settings", reason: "shards \(shards), replicas \(replicas), epsilon \(epsilon)")
        }
        let nodeCount = Int(try reader.readUInt32("nodes"))
        guard nodeCount <= reader.remaining / 7 else { throw .truncated(field: "nodes") }
        var nodes: [String: NodeRecord] = [:]
        for _ in 0..<nodeCount {
            let id = String(decoding: try reader.readShortBytes("node id"), as: UTF8.self)
            let zone = String(decoding: try reader.readShortBytes("zone"), as: UTF8.self)
            let weight = Int(try reader.readUInt32("weight"))
            let draining = try reader.readUInt8("draining") == 1
            guard !id.isEmpty, weight >= 1, nodes[id] == nil else { throw .invalid(field: "node", reason: "bad or repeated node '\(id)'") }
            nodes[id] = NodeRecord(zone: zone, weight: weight, draining: draining)
        }
        let retiredCount = Int(try reader.readUInt32("retired"))
        guard retiredCount <= reader.remaining else { throw .truncated(field: "retired") }
        var retired: Set<String> = []
        for _ in 0..<retiredCount { retired.insert(String(decoding: try reader.readShortBytes("retired id"), as: UTF8.self)) }
        var controllers: [String] = []
        for _ in 0..<Int(try reader.readUInt8("controllers")) {
            controllers.append(String(decoding: try reader.readShortBytes("controller"), as: UTF8.self))
        }
        let epoch = try reader.readUInt64("epoch")
        var sets: [[String]] = []
        sets.reserveCapacity(shards)
        for _ in 0..<shards {
            let count = Int(try reader.readUInt8("replica count"))
            var set: [String] = []
            for _ in 0..<count { set.append(String(decoding: try reader.readShortBytes("replica"), as: UTF8.self)) }
            guard Set(set).count == set.count else { throw .invalid(field: "replicas", reason: "a node twice in one shard") }
            sets.append(set)
        }
        try reader.expectEnd()
        return ClusterState(
            settings: PlacementSettings(shards: shards, replicas: replicas, epsilon: epsilon), nodes: nodes,
            map: ShardMap(epoch: epoch, replicas: sets), retired: retired, controllers: controllers, origin: origin)
    }
}
