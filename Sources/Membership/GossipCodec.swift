import ChaparCore

/// Gossip datagrams (docs/PROTOCOL.md, "Gossip packets"). The membership module owns its
/// wire format; it stays pure: the MAC is computed by the caller's function, so the
/// cryptography (OpenSSL, in Auth) stays in the shell.
///
/// ```
/// magic "CHG1" | key_id u8 | mac [32] | body
/// body := cluster_id str8 | sender str8 | count u8 | count × message
/// ```
/// The MAC covers the whole body, cluster id included (the associated data): a packet
/// from another cluster, or from a node without a key in our ring, never verifies.
public enum GossipCodec {
    public static let magic: [UInt8] = Array("CHG1".utf8)
    public static let macBytes = 32
    public static let headerBytes = 4 + 1 + 32
    /// Default datagram size: fits a 1,500-byte Ethernet MTU with IP/UDP headers.
    public static let datagramBytesDefault = 1400

    public struct Sealed: Equatable, Sendable {
        public var bytes: [UInt8]
        /// Messages of the packet that fit (the rest, piggybacks, wait for another packet).
        public var messagesEncoded: Int
    }

    /// Encodes `packet`, dropping trailing messages that would not fit `datagramBytes`
    /// (the first message always fits: the machine puts probe traffic first).
    public static func seal(
        _ packet: GossipPacket, clusterId: String, keyId: UInt8, datagramBytes: Int = datagramBytesDefault,
        mac: ([UInt8]) -> [UInt8]
    ) -> Sealed {
        var body = ByteWriter(capacity: 256)
        body.writeShortBytes(Array(clusterId.utf8))
        body.writeShortBytes(Array(packet.sender.utf8))
        let countPosition = body.count
        body.write(UInt8(0))
        var encoded = 0
        for message in packet.messages.prefix(255) {
            var candidate = ByteWriter(capacity: 96)
            message.encode(into: &candidate)
            if encoded > 0 && headerBytes + body.count + candidate.count > datagramBytes { break }
            body.write(contentsOf: candidate.bytes)
            encoded += 1
        }
        var bodyBytes = body.finish()
        bodyBytes[countPosition] = UInt8(encoded)
        let tag = mac(bodyBytes)
        precondition(tag.count == macBytes, "the MAC function must return 32 bytes")
        return Sealed(bytes: magic + [keyId] + tag + bodyBytes, messagesEncoded: encoded)
    }

    public enum OpenFailure: Error, Equatable, Sendable {
        case notGossip
        case unknownKey(UInt8)
        case badMAC
        case otherCluster(String)
        case malformed(String)
    }

    /// Verifies and decodes a datagram. `verify(keyId, body, mac)` says whether `mac`
    /// is right for `body` under key `keyId` (nil: no such key in the ring).
    public static func open(
        _ bytes: [UInt8], clusterId: String, verify: (UInt8, ArraySlice<UInt8>, ArraySlice<UInt8>) -> Bool?
    ) throws(OpenFailure) -> GossipPacket {
        guard bytes.count >= headerBytes + 3, bytes.prefix(4).elementsEqual(magic) else { throw .notGossip }
        let keyId = bytes[4]
        let tag = bytes[5..<(5 + macBytes)]
        let body = bytes[(5 + macBytes)...]
        guard let valid = verify(keyId, body, tag) else { throw .unknownKey(keyId) }
        guard valid else { throw .badMAC }
        let result: Result<GossipPacket, OpenFailure> = Array(body).withUnsafeBytes { raw in
            var reader = ByteReader(raw)
            do throws(DecodeFailure) {
                let cluster = String(decoding: try reader.readShortBytes("cluster_id"), as: UTF8.self)
                guard cluster == clusterId else { return .failure(.otherCluster(cluster)) }
                let sender = try text(&reader, "sender")
                let count = Int(try reader.readUInt8("count"))
                var messages: [GossipMessage] = []
                for _ in 0..<count { messages.append(try GossipMessage.decode(&reader)) }
                try reader.expectEnd()
                return .success(GossipPacket(sender: sender, messages: messages))
            } catch {
                return .failure(.malformed("\(error)"))
            }
        }
        return try result.get()
    }

    static func text(_ reader: inout ByteReader, _ field: String) throws(DecodeFailure) -> String {
        let bytes = try reader.readShortBytes(field)
        guard let string = String(validating: bytes, as: UTF8.self) else {
            throw .invalid(field: field, reason: "not valid UTF-8")
        }
        return string
    }
}

extension GossipMessage {
    func encode(into w: inout ByteWriter) {
        func text(_ value: String) { w.writeShortBytes(Array(value.utf8.prefix(255))) }
        switch self {
        case .ping(let sequence, let target, let source, let address):
            w.write(UInt8(1)); w.write(sequence); text(target); text(source); text(address)
        case .ack(let sequence, let from):
            w.write(UInt8(2)); w.write(sequence); text(from)
        case .pingRequest(let sequence, let target, let targetAddress, let requester, let requesterAddress):
            w.write(UInt8(3)); w.write(sequence); text(target); text(targetAddress); text(requester); text(requesterAddress)
        case .nack(let sequence, let from):
            w.write(UInt8(4)); w.write(sequence); text(from)
        case .alive(let info, let incarnation):
            w.write(UInt8(5)); w.write(incarnation)
            text(info.id); text(info.gossip); text(info.client); text(info.peer); text(info.admin); text(info.zone)
            w.write(info.weight); w.write(UInt8(info.draining ? 1 : 0)); w.write(info.mapEpoch); w.write(info.origin)
        case .suspect(let id, let incarnation, let from):
            w.write(UInt8(6)); text(id); w.write(incarnation); text(from)
        case .dead(let id, let incarnation, let from):
            w.write(UInt8(7)); text(id); w.write(incarnation); text(from)
        case .left(let id, let incarnation):
            w.write(UInt8(8)); text(id); w.write(incarnation)
        }
    }

    static func decode(_ r: inout ByteReader) throws(DecodeFailure) -> GossipMessage {
        func text(_ field: String) throws(DecodeFailure) -> String { try GossipCodec.text(&r, field) }
        let type = try r.readUInt8("message_type")
        switch type {
        case 1: return .ping(sequence: try r.readUInt32("sequence"), target: try text("target"), source: try text("source"),
                             sourceAddress: try text("source_address"))
        case 2: return .ack(sequence: try r.readUInt32("sequence"), from: try text("from"))
        case 3: return .pingRequest(sequence: try r.readUInt32("sequence"), target: try text("target"),
                                    targetAddress: try text("target_address"), requester: try text("requester"),
                                    requesterAddress: try text("requester_address"))
        case 4: return .nack(sequence: try r.readUInt32("sequence"), from: try text("from"))
        case 5:
            let incarnation = try r.readUInt64("incarnation")
            let info = MemberInfo(
                id: try text("id"), gossip: try text("gossip"), client: try text("client"), peer: try text("peer"),
                admin: try text("admin"), zone: try text("zone"), weight: try r.readUInt16("weight"),
                draining: try r.readUInt8("flags") & 1 != 0, mapEpoch: try r.readUInt64("map_epoch"),
                origin: try r.readUInt64("origin"))
            return .alive(info, incarnation: incarnation)
        case 6: return .suspect(id: try text("id"), incarnation: try r.readUInt64("incarnation"), from: try text("from"))
        case 7: return .dead(id: try text("id"), incarnation: try r.readUInt64("incarnation"), from: try text("from"))
        case 8: return .left(id: try text("id"), incarnation: try r.readUInt64("incarnation"))
        default: throw .invalid(field: "message_type", reason: "unknown type \(type)")
        }
    }
}
