import ChaparCore
import Consensus
import Dispatch
import Placement
import Storage
#if canImport(Glibc)
import Glibc
#endif

/// Trimmed logs and snapshots (docs/ARCHITECTURE.md, "Snapshots"): replicas delete applied
/// entries they no longer need; a leader whose follower needs deleted entries writes the
/// shard's state to a file in the background and streams it over the peer link, with the
/// receiver acknowledging as it stores; the Raft message that installs it follows once
/// the whole file is stored, and is handed to the replica only after the file checked out.
extension ShardHost {
    typealias SnapshotKey = SnapshotTransfers.Key

    var snapshotDirectory: String { store.directory.path + "/snapshots" }

    /// At start: files left by an earlier run are incomplete or used.
    func prepareSnapshotDirectory() {
        mkdir(snapshotDirectory, 0o750)
        guard let directory = opendir(snapshotDirectory) else { return }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasSuffix(".snap") { unlink(snapshotDirectory + "/" + name) }
        }
    }

    /// Deletes each replica's applied entries older than the last `raftLogKeep`, except
    /// those retained records still point into (retention frees them).
    func trimLogs() {
        for shard in Array(groups.keys) {
            let keep = UInt64(context.raftLogKeep)
            guard groups[shard]!.appliedIndex > groups[shard]!.raft.snapshotIndex + keep else { continue }
            let target = groups[shard]!.appliedIndex - keep
            groups[shard]!.raft.compact(through: target)
            do throws(StorageError) {
                guard let trimmed = try store.trim(shard: shard, upTo: min(target, groups[shard]!.raft.logOffset)) else { continue }
                groups[shard]!.raft.trimmed(through: trimmed.index, term: trimmed.term)
            } catch {
                context.logger.error("cannot trim the Raft log", ["shard": "\(shard)", "error": error.description])
            }
        }
    }

    /// Followers a replica's Raft wants a snapshot for: written in the background.
    func produceSnapshots(shard: Int, for peers: [UInt64]) {
        for peerId in peers {
            guard let node = context.name(of: peerId), context.isConnected(node) else {
                groups[shard]?.raft.snapshotFailed(to: peerId)
                continue
            }
            let key = SnapshotKey(shard: shard, node: node)
            guard !snapshots.producing.contains(key), snapshots.outgoing[key] == nil else { continue }
            snapshots.producing.insert(key)
            let path = "\(snapshotDirectory)/out-\(shard)-\(peerId).snap"
            let directory = store.directory
            let context = self.context
            let controller = shard == ShardContext.controllerShard
            snapshotQueue.async { [weak self] in
                let result: Result<SnapshotHeader, StorageError>
                do throws(StorageError) {
                    result = .success(try SnapshotProducer.write(
                        directory: directory, shard: shard, controller: controller,
                        owns: { !controller && context.shard(of: $0) == shard }, to: path))
                } catch {
                    result = .failure(error)
                }
                self?.enqueue { $0.snapshotsProduced.append((key, peerId, path, result)) }
            }
        }
    }

    func takeSnapshotInputs(_ taken: Inbox) {
        // First: chunks in the same batch may come over the link that replaced a lost one.
        for node in taken.linksDown {
            for key in snapshots.outgoing.keys where key.node == node { abortSending(key) }
            for key in snapshots.incoming.keys where key.node == node { snapshots.closeIncoming(key) }
        }
        for item in taken.snapshotsProduced { startSending(item.key, peerId: item.peerId, path: item.path, item.result) }
        for ack in taken.snapshotAcks {
            let key = SnapshotKey(shard: ack.shard, node: ack.node)
            guard let transfer = snapshots.outgoing[key], transfer.header.index == ack.index else { continue }
            guard ack.ok else {
                context.logger.warn("peer refused a snapshot", ["shard": "\(ack.shard)", "node": ack.node])
                abortSending(key)
                continue
            }
            snapshots.outgoing[key]!.acked = max(transfer.acked, min(ack.received, transfer.sent))
        }
        for chunk in taken.snapshotChunks { receiveChunk(chunk) }
        for item in taken.snapshotsVerified {
            guard let transfer = snapshots.incoming[item.key], transfer.index == item.index else { continue }
            if let error = item.error {
                context.logger.error("received snapshot is damaged; dropped", ["shard": "\(item.key.shard)", "error": error.description])
                snapshots.closeIncoming(item.key)
                continue
            }
            let shard = item.key.shard
            let controller = shard == ShardContext.controllerShard
            let context = self.context
            do throws(StorageError) {
                snapshots.incoming[item.key]!.staging = try store.beginStaging(
                    path: transfer.path, owns: { !controller && context.shard(of: $0) == shard }, controller: controller)
            } catch {
                context.logger.error("cannot read a received snapshot; dropped", ["shard": "\(shard)", "error": error.description])
                snapshots.closeIncoming(item.key)
            }
        }
        pumpSnapshots()
    }

    /// After a cycle's transaction copied snapshots in: those now whole go to their
    /// replica (if their Raft message came), failed ones are dropped.
    func snapshotsCopied() {
        for (key, transfer) in snapshots.incoming {
            guard let staging = transfer.staging, !transfer.stepped else { continue }
            if let failure = staging.failure {
                context.logger.error("cannot copy a received snapshot in; dropped", ["shard": "\(key.shard)", "error": failure.description])
                snapshots.closeIncoming(key)
            } else if staging.isComplete, let parked = snapshots.parked.removeValue(forKey: key) {
                stepSnapshot(parked, key: key)
            }
        }
    }

    private func startSending(_ key: SnapshotKey, peerId: UInt64, path: String, _ result: Result<SnapshotHeader, StorageError>) {
        snapshots.producing.remove(key)
        switch result {
        case .failure(let error):
            context.logger.error("cannot write a snapshot", ["shard": "\(key.shard)", "error": error.description])
            SnapshotTransfers.remove(path)
            groups[key.shard]?.raft.snapshotFailed(to: peerId)
        case .success(let header):
            guard groups[key.shard]?.raft.role == .leader, let file = fopen(path, "rb") else {
                SnapshotTransfers.remove(path)
                groups[key.shard]?.raft.snapshotFailed(to: peerId)
                return
            }
            fseek(file, 0, SEEK_END)
            let total = UInt64(ftell(file))
            fseek(file, 0, SEEK_SET)
            snapshots.outgoing[key] = SnapshotTransfers.Outgoing(peerId: peerId, header: header, path: path, file: file, total: total)
            context.logger.info("sending a snapshot", [
                "shard": "\(key.shard)", "to": key.node, "index": "\(header.index)", "bytes": "\(total)",
            ])
        }
    }

    private func abortSending(_ key: SnapshotKey) {
        guard let transfer = snapshots.outgoing[key] else { return }
        snapshots.closeOutgoing(key)
        groups[key.shard]?.raft.snapshotFailed(to: transfer.peerId)
    }

    /// Sends what the window allows; once the follower stored the whole file, the Raft
    /// message that refers to it.
    private func pumpSnapshots() {
        for key in Array(snapshots.outgoing.keys) {
            var transfer = snapshots.outgoing[key]!
            guard context.isConnected(key.node) else { abortSending(key); continue }
            while transfer.sent < transfer.total && transfer.sent - transfer.acked < SnapshotTransfers.windowBytes {
                let count = Int(min(UInt64(SnapshotTransfers.chunkBytes), transfer.total - transfer.sent))
                var data = [UInt8](repeating: 0, count: count)
                guard fread(&data, 1, count, transfer.file) == count else { break }
                queue(.snapshotChunk(shard: UInt32(key.shard), index: transfer.header.index, offset: transfer.sent,
                                     total: transfer.total, data: data), to: key.node)
                transfer.sent += UInt64(count)
            }
            snapshots.outgoing[key] = transfer
            guard transfer.acked == transfer.total else { continue }
            let meta = RaftSnapshotMeta(
                index: transfer.header.index, term: transfer.header.term,
                configuration: configuration(transfer.header.configuration, shard: key.shard))
            let sent = groups[key.shard]?.raft.sendSnapshot(to: transfer.peerId, meta) ?? false
            context.logger.info(sent ? "snapshot sent" : "snapshot no longer wanted", [
                "shard": "\(key.shard)", "to": key.node, "index": "\(meta.index)",
            ])
            snapshots.closeOutgoing(key)
        }
    }

    /// The configuration a snapshot names (empty: the shard's bootstrap one).
    func configuration(_ bytes: [UInt8], shard: Int) -> RaftConfiguration {
        if !bytes.isEmpty, let decoded = RaftConfiguration(decoding: bytes) { return decoded }
        return RaftConfiguration(voters: Set(context.initialVoters(of: shard).map(ShardContext.raftId)))
    }

    private func receiveChunk(_ chunk: (node: String, shard: Int, index: UInt64, offset: UInt64, total: UInt64, data: [UInt8])) {
        let key = SnapshotKey(shard: chunk.shard, node: chunk.node)
        func refuse(_ reason: String) {
            context.logger.warn("snapshot refused", ["shard": "\(chunk.shard)", "from": chunk.node, "reason": reason])
            snapshots.closeIncoming(key)
            queue(.snapshotAck(shard: UInt32(chunk.shard), index: chunk.index, received: 0, ok: false), to: chunk.node)
        }
        guard groups[chunk.shard] != nil else { return refuse("no replica of this shard here") }
        guard chunk.total <= SnapshotTransfers.totalBytesMax else { return refuse("\(chunk.total) bytes is too large") }
        if chunk.offset == 0 {
            snapshots.closeIncoming(key)
            let path = "\(snapshotDirectory)/in-\(chunk.shard)-\(ShardContext.raftId(chunk.node))-\(chunk.index).snap"
            guard let file = fopen(path, "wb") else { return refuse("cannot create \(path)") }
            snapshots.incoming[key] = SnapshotTransfers.Incoming(index: chunk.index, total: chunk.total, path: path, file: file)
        }
        guard var transfer = snapshots.incoming[key], transfer.index == chunk.index, transfer.total == chunk.total,
              transfer.received == chunk.offset, let file = transfer.file
        else { return refuse("chunk out of order") }
        guard fwrite(chunk.data, 1, chunk.data.count, file) == chunk.data.count else { return refuse("cannot write: \(String(cString: strerror(errno)))") }
        transfer.received += UInt64(chunk.data.count)
        if transfer.received == transfer.total {
            fclose(file)
            transfer.file = nil
            context.logger.info("snapshot received; checking it", [
                "shard": "\(chunk.shard)", "from": chunk.node, "index": "\(chunk.index)", "bytes": "\(transfer.total)",
            ])
            let path = transfer.path, index = transfer.index
            snapshotQueue.async { [weak self] in
                var failure: StorageError?
                do throws(StorageError) {
                    let header = try ReplicatedStore.verifySnapshot(path: path)
                    if header.shard != key.shard || header.index != index {
                        failure = .corruptRecord(channel: "snapshot \(path) (another shard or index than announced)", offset: 0)
                    }
                } catch {
                    failure = error
                }
                self?.enqueue { $0.snapshotsVerified.append((key, index, failure)) }
            }
        }
        snapshots.incoming[key] = transfer
        queue(.snapshotAck(shard: UInt32(chunk.shard), index: chunk.index, received: transfer.received, ok: true), to: chunk.node)
    }

    /// A Raft snapshot message: handed to the replica only once its data is stored and
    /// checked (parked until then); without its data it is dropped (the leader repeats it
    /// on heartbeats and, after `snapshotTicksMax`, produces a new one).
    func routeSnapshotMessage(_ item: ShardEnvelope) {
        guard case .snapshot(_, let index, _, _) = item.envelope.message, let node = context.name(of: item.envelope.from) else { return }
        let key = SnapshotKey(shard: Int(item.shard), node: node)
        // A repeat of one already installed (or covered by the log) needs no data: the
        // replica answers it from its commit index.
        if let commit = groups[Int(item.shard)]?.raft.commit, commit >= index {
            groups[Int(item.shard)]!.raft.step(item.envelope)
            return
        }
        guard let transfer = snapshots.incoming[key], transfer.index == index, transfer.received == transfer.total else {
            context.logger.warn("snapshot message without its data; ignored", ["shard": "\(item.shard)", "from": node])
            return
        }
        if transfer.isStaged { stepSnapshot(item, key: key) } else { snapshots.parked[key] = item }
    }

    private func stepSnapshot(_ item: ShardEnvelope, key: SnapshotKey) {
        guard groups[key.shard] != nil else { return snapshots.closeIncoming(key) }
        groups[key.shard]!.raft.step(item.envelope)
        snapshots.incoming[key]?.stepped = true
    }

    /// The install a Ready asks for: the copy of the received file it refers to.
    func snapshotInstall(shard: Int, meta: RaftSnapshotMeta) -> (SnapshotInstall, SnapshotKey) {
        guard let (key, transfer) = snapshots.incoming.first(where: { $0.key.shard == shard && $0.value.stepped && $0.value.index == meta.index }),
              let staging = transfer.staging, transfer.isStaged
        else { fatalError("shard \(shard) accepted snapshot \(meta.index) without its data") }
        return (SnapshotInstall(staging: staging), key)
    }

    /// After the transaction that installed them: files go, local subscribers of the
    /// replaced channels resubscribe, a controller replica takes the state it received.
    func installed(_ installs: [(shard: Int, key: SnapshotKey, index: UInt64)]) {
        for item in installs {
            context.logger.info("snapshot installed", ["shard": "\(item.shard)", "from": item.key.node, "index": "\(item.index)"])
            if item.shard == ShardContext.controllerShard {
                if let bytes = try? store.loadClusterStates().controller, let state = try? ClusterState(decoding: bytes) {
                    adoptControllerState((state, []))
                }
            } else {
                onShardDropped(item.shard)
            }
        }
        // Stepped snapshots are done with, installed or not (the replica had the entries), and
        // so is any other one for a shard that just installed (sent by an earlier leader).
        let done = Set(installs.map(\.shard))
        for (key, transfer) in snapshots.incoming where transfer.stepped || done.contains(key.shard) { snapshots.closeIncoming(key) }
    }
}
