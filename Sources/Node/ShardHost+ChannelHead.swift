import ChaparCore

/// `latest` on an edge node (docs/ARCHITECTURE.md, "Reading the committed head"): the
/// edge asks a replica of the channel's shard for the channel's head as of a read index —
/// the replica confirms the index with the shard's leader (or is the leader), waits until
/// it has applied that far, and answers its head — so a subscription from `latest` on an
/// edge starts after every publish acknowledged before it, as on a replica.
extension ShardHost {
    /// Any thread; `reply` runs on the replication thread (nil: no replica could confirm).
    func channelHead(_ channel: String, reply: @escaping @Sendable (UInt64?) -> Void) {
        enqueue { $0.headRequests.append((channel, reply)) }
    }

    func takeHeadRequests(_ taken: Inbox, now: Int64) {
        for request in taken.headRequests { askForHead(request.channel, now: now, reply: request.reply) }
        for request in taken.remoteHeads { answerHead(request.channel, to: request.node, request: request.request, now: now) }
        for result in taken.headResults { pendingHeads.removeValue(forKey: result.request)?.reply(result.head) }
        for (request, pending) in pendingHeads where pending.deadline <= now {
            pendingHeads[request] = nil
            pending.reply(nil)
        }
    }

    private func askForHead(_ channel: String, now: Int64, reply: @escaping @Sendable (UInt64?) -> Void) {
        let shard = context.shard(of: channel)
        if groups[shard] != nil {
            return startRead(shard: shard, now: now) { [unowned self] index in reply(index.map { _ in self.store.head(of: channel) }) }
        }
        // The shard's leader if known (it answers without a round trip to another node).
        guard let node = router.bestReplica(shard) else { return reply(nil) }
        let request = nextHeadRequest
        nextHeadRequest += 1
        pendingHeads[request] = (now + Self.readWaitMs, reply)
        queue(.channelHead(request: request, channel: channel), to: node)
    }

    private func answerHead(_ channel: String, to node: String, request: UInt64, now: Int64) {
        let shard = context.shard(of: channel)
        guard groups[shard] != nil else {
            return queue(.channelHeadResult(request: request, ok: false, head: 0), to: node)
        }
        startRead(shard: shard, now: now) { [unowned self] index in
            // On the replication thread, once this replica has applied the read index.
            let head = index == nil ? 0 : self.store.head(of: channel)
            self.queue(.channelHeadResult(request: request, ok: index != nil, head: head), to: node)
        }
    }
}
