import Membership

/// Push-pull state as gossip messages: each member as `alive` (its metadata), followed by
/// its status when it is not alive. Sealed like datagrams, but framed with a u32 length
/// on a TCP stream and allowed up to `bytesMax`.
enum StateExchange {
    static let bytesMax = 4 << 20

    static func messages(_ records: [MemberRecord]) -> [GossipMessage] {
        var messages: [GossipMessage] = []
        for record in records {
            messages.append(.alive(record.info, incarnation: record.incarnation))
            switch record.status {
            case .alive: break
            case .suspect: messages.append(.suspect(id: record.info.id, incarnation: record.incarnation, from: record.info.id))
            case .dead: messages.append(.dead(id: record.info.id, incarnation: record.incarnation, from: record.info.id))
            case .left: messages.append(.left(id: record.info.id, incarnation: record.incarnation))
            }
        }
        return messages
    }

    static func records(_ messages: [GossipMessage]) -> [MemberRecord] {
        var records: [MemberRecord] = []
        for message in messages {
            switch message {
            case .alive(let info, let incarnation):
                records.append(MemberRecord(info: info, incarnation: incarnation, status: .alive))
            case .suspect(let id, _, _) where records.last?.info.id == id: records[records.count - 1].status = .suspect
            case .dead(let id, _, _) where records.last?.info.id == id: records[records.count - 1].status = .dead
            case .left(let id, _) where records.last?.info.id == id: records[records.count - 1].status = .left
            default: break
            }
        }
        return records
    }
}
