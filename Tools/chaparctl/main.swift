import ChaparCore
#if canImport(Glibc)
import Glibc
#endif

let usage = """
    chaparctl — operate and debug a Chapar cluster

    USAGE: chaparctl COMMAND [options]

    COMMANDS:
      pub    publish one message and print its offset
      sub    print messages of a channel (K of them, or follow live)
      secret make a new token secret
      token  sign a token for a client (pub/sub --token)
      cluster up|down   start or stop a local cluster on loopback
      cluster kill|restart   crash one node (SIGKILL) or start it again on its data
      cluster drill     failover drill: kill shard leaders, time the first acknowledged publish
      cluster add       start one more node; the controller registers it
      cluster status    the controller's view: map epoch, nodes, replicas per node
      cluster drain|undrain|remove|rebalance|epsilon   change the topology (signed)
      members           the membership view of a node
      shards            shards of a clustered local cluster: replicas, leader, head, lag
      channel info NAME a channel's shard, replicas, leader and head

    Run `chaparctl COMMAND --help` for a command's options.
    """

func fail(_ message: String, status: Int32) -> Never {
    var line = Array("chaparctl: \(message)\n".utf8)
    _ = write(2, &line, line.count)
    exit(status)
}

let argv = Array(CommandLine.arguments.dropFirst())
guard let command = argv.first, command != "--help", command != "-h", command != "help" else {
    print(usage)
    exit(argv.isEmpty ? 2 : 0)
}
let status: Int32
do {
    let arguments = try CommandArguments(Array(argv.dropFirst()), booleans: ["json", "help", "plan"])
    switch command {
    case "pub": status = try await PubSubCommands.pub(arguments)
    case "sub": status = try await PubSubCommands.sub(arguments)
    case "secret": status = try TokenCommands.secret(arguments)
    case "token": status = try TokenCommands.token(arguments)
    case "members": status = try await ClusterCommands.members(arguments)
    case "shards": status = try ShardCommands.shards(arguments)
    case "channel": status = try ShardCommands.channel(arguments)
    case "cluster":
        switch arguments.positionals.first {
        case "up": status = try await ClusterCommands.up(arguments)
        case "down": status = try await ClusterCommands.down(arguments)
        case "kill": status = try await FailoverDrill.kill(arguments)
        case "restart": status = try await FailoverDrill.restart(arguments)
        case "drill": status = try await FailoverDrill.drill(arguments)
        case "add": status = try await TopologyCommands.add(arguments)
        case "status": status = try TopologyCommands.showStatus(arguments)
        case let name? where ["drain", "undrain", "remove", "rebalance", "epsilon"].contains(name):
            status = try await TopologyCommands.command(name, arguments)
        default:
            fail("usage: chaparctl cluster up|down|kill|restart|drill|add|status|drain|undrain|remove|rebalance|epsilon …", status: 2)
        }
    default: fail("unknown command '\(command)'\n\n\(usage)", status: 2)
    }
} catch let error as CommandArguments.Failure {
    fail(error.description, status: 2)
} catch {
    fail("\(error)", status: 1)
}
exit(status)
