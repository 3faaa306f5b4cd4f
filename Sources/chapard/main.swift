import Node
import Transport
#if canImport(Glibc)
import Glibc
#endif

// Signals are taken synchronously by the main thread: block them before any other
// thread exists so every thread inherits the mask, then wait for one.
var signals = sigset_t()
sigemptyset(&signals)
sigaddset(&signals, SIGTERM)
sigaddset(&signals, SIGINT)
pthread_sigmask(SIG_BLOCK, &signals, nil)
signal(SIGPIPE, SIG_IGN)
ProcessMemory.keepFreedBuffers()

let config: NodeConfig
do {
    switch try NodeCommandLine.parse(Array(CommandLine.arguments.dropFirst())) {
    case .help:
        print(NodeCommandLine.usage)
        exit(0)
    case .run(let parsed):
        config = parsed
    }
} catch {
    var line = Array("chapard: \(error)\n".utf8)
    _ = write(2, &line, line.count)
    exit(2)
}

let logger = Logger(minimum: Logger.Level(name: config.logLevel) ?? .info)
let node: RelayNode
do {
    node = try RelayNode(config: config, logger: logger)
    try AddressFile.write(
        node.address.description, directory: config.data, gossip: node.gossipAddress?.description,
        admin: node.adminAddress?.description, peer: node.peerAddress?.description)
} catch {
    logger.error("startup failed", ["error": "\(error)"])
    exit(1)
}

var received: Int32 = 0
sigwait(&signals, &received)
logger.info("signal received", ["signal": received == SIGTERM ? "SIGTERM" : "SIGINT"])
node.shutdown()
exit(0)
