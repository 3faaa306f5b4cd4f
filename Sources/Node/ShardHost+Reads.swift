import Consensus

/// Read index for the node's readers (docs/ARCHITECTURE.md, "Reading the committed head").
extension ShardHost {
    /// A read index: on the leader, confirmed by a quorum round; on a follower, asked of the
    /// leader over the peer link.
    func startRead(shard: Int, now: Int64, reply: @escaping @Sendable (UInt64?) -> Void) {
        guard let role = groups[shard]?.raft.role else { return reply(nil) }
        let readContext = nextReadContext
        nextReadContext += 1
        if role == .leader {
            if groups[shard]!.raft.readIndex(context: readContext) {
                pendingReads[readContext] = (shard, now + Self.readWaitMs, reply)
            } else {
                reply(nil)
            }
            return
        }
        guard let leaderId = groups[shard]!.raft.leader, let leader = context.name(of: leaderId), context.isConnected(leader) else {
            return reply(nil)
        }
        forwardedReads[readContext] = (shard, now + Self.readWaitMs, reply)
        queue(.readIndex(request: readContext, shard: UInt32(shard)), to: leader)
    }

    /// Confirmed reads whose index this node has applied (its transaction committed).
    func answerReads(now: Int64) {
        guard !confirmedReads.isEmpty else { return }
        var waiting: [(shard: Int, index: UInt64, deadline: Int64, reply: @Sendable (UInt64?) -> Void)] = []
        for read in confirmedReads {
            if (groups[read.shard]?.appliedIndex ?? 0) >= read.index { read.reply(read.index) }
            else if read.deadline <= now { read.reply(nil) }
            else { waiting.append(read) }
        }
        confirmedReads = waiting
    }
}
