import Auth
import ChaparCore
import Placement
import Transport

/// The admin API's controller endpoints (docs/OPERATIONS.md, "Controller commands"):
/// `GET /v1/cluster` shows the cluster state this node knows; `POST /v1/cluster/COMMAND`
/// (drain, undrain, remove, rebalance, epsilon), signed with the gossip keyring, is
/// proposed to the controller when this node leads it — other nodes answer 421 with the
/// leader they know of, and the caller asks there. Used on loop 0 only.
final class ControllerEndpoint: @unchecked Sendable {  // guarded by: loop 0's thread
    let host: ShardHost
    let context: ShardContext
    let keyring: GossipKeyring
    let loop: EventLoop

    init(host: ShardHost, context: ShardContext, keyring: GossipKeyring, loop: EventLoop) {
        self.host = host
        self.context = context
        self.keyring = keyring
        self.loop = loop
    }

    typealias Reply = (Int, String, [UInt8]) -> Void

    func handle(method: String, path: String, query: [String: String], target: String, authorization: String?, reply: @escaping Reply) {
        if method == "GET" && path == "/v1/cluster" { return reply(200, "application/json", AdminServer.json(status())) }
        if method == "GET" && path == "/v1/cluster/plan" { return reply(200, "application/json", AdminServer.json(plan())) }
        guard method == "POST" else { return reply(405, "text/plain", Array("controller commands are POSTs\n".utf8)) }
        if let failure = AdminSignature.verify(
            header: authorization, keyring: keyring, method: method, target: target, nowMs: WallClock.nowMs())
        {
            return reply(401, "text/plain", Array("\(failure)\n".utf8))
        }
        let command: ControllerCommand
        switch (path.dropFirst("/v1/cluster/".count), query["node"]) {
        case ("drain", let node?): command = .setDraining(id: node, draining: true)
        case ("undrain", let node?): command = .setDraining(id: node, draining: false)
        case ("remove", let node?): command = .remove(id: node)
        case ("rebalance", _): command = .rebalance
        case ("epsilon", _):
            guard let value = query["value"].flatMap(Double.init), value >= 0 && value <= 1 else {
                return reply(400, "text/plain", Array("epsilon needs value=0…1\n".utf8))
            }
            command = .setEpsilon(value)
        default:
            return reply(400, "text/plain", Array("unknown command or missing node=ID: \(path)\n".utf8))
        }
        let loop = self.loop
        let answer = LoopBound(ControlReplyBox(reply))
        host.control(command) { result in
            _ = loop.execute { answer.value.send(result) }
        }
    }

    /// What `rebalance` would do now (from this node's newest state; the controller's
    /// leader is the one to ask for the authoritative answer): the moves and the loads after.
    func plan() -> JSONValue {
        let cluster = context.cluster
        let plan = Placement.rebalance(cluster.map, cluster.candidates, cluster.settings)
        let moves: [JSONValue] = plan.moves.map { move in
            .object(["shard": .number(Double(move.shard)), "from": move.from.map { .string($0) } ?? .null, "to": .string(move.to)])
        }
        let loads = plan.target.loads
        return .object([
            "epoch": .number(Double(cluster.map.epoch)), "moves": .array(moves),
            "loads_after": .object(loads.mapValues { .number(Double($0)) }),
        ])
    }

    func status() -> JSONValue {
        let cluster = context.cluster
        let loads = cluster.map.loads
        let nodes: [JSONValue] = cluster.nodes.keys.sorted().map { id in
            let record = cluster.nodes[id]!
            return .object([
                "id": .string(id), "zone": .string(record.zone), "weight": .number(Double(record.weight)),
                "draining": .bool(record.draining), "replicas": .number(Double(loads[id] ?? 0)),
            ])
        }
        let controller = host.status.withLock { $0.first { $0.shard == ShardContext.controllerShard } }
        return .object([
            "epoch": .number(Double(cluster.map.epoch)), "shards": .number(Double(cluster.settings.shards)),
            "replicas": .number(Double(cluster.settings.replicas)), "epsilon": .number(cluster.settings.epsilon),
            "nodes": .array(nodes), "retired": .array(cluster.retired.sorted().map { .string($0) }),
            "controller_voters": .array(cluster.controllers.map { .string($0) }),
            "controller_leader": .string(controller?.leader ?? ""), "node": .string(context.localName),
            // This node's replica of the controller group, if it holds one.
            "controller_group": controller.map { row in
                .object([
                    "role": .string(row.role), "voters": .array(row.voters.map { .string($0) }),
                    "learners": .array(row.learners.map { .string($0) }),
                ])
            } ?? .null,
        ])
    }
}

/// Carries an admin reply to the replication thread and back.
final class ControlReplyBox {
    let reply: ControllerEndpoint.Reply
    init(_ reply: @escaping ControllerEndpoint.Reply) { self.reply = reply }

    func send(_ result: ControlReply) {
        switch result {
        case .done(.refused(let reason), _):
            reply(409, "application/json", AdminServer.json(.object(["error": .string("refused"), "message": .string(reason)])))
        case .done(let outcome, let state):
            let name: String
            switch outcome {
            case .unchanged: name = "unchanged"
            case .registry: name = "registry"
            case .newMap: name = "new_map"
            case .refused: name = "refused"
            }
            reply(200, "application/json", AdminServer.json(.object(["outcome": .string(name), "epoch": .number(Double(state.map.epoch))])))
        case .notLeader(let leader):
            reply(421, "application/json", AdminServer.json(.object(["error": .string("not_leader"), "leader": .string(leader ?? "")])))
        case .failed(let reason):
            reply(503, "application/json", AdminServer.json(.object(["error": .string("failed"), "message": .string(reason)])))
        }
    }
}
