import ChaparCore
import LoadSim
import Transport
#if canImport(Glibc)
import Glibc
#endif

signal(SIGPIPE, SIG_IGN)
// The simulator frees and reallocates each connection's turn of frames (hundreds of KiB at
// full rate): kept by malloc, its pages are not faulted in again on every turn, CPU it
// would otherwise take from the servers it measures on the same cores.
ProcessMemory.keepFreedBuffers()
let argv = Array(CommandLine.arguments.dropFirst())
guard let command = argv.first, !["--help", "-h", "help"].contains(command) else {
    print(Usage.main)
    exit(argv.isEmpty ? 2 : 0)
}
let status: Int32
do {
    let arguments = try CommandArguments(Array(argv.dropFirst()), booleans: ["help", "no-locate"])
    switch command {
    case "run": status = try Commands.run(arguments)
    case "compare": status = try Commands.compare(arguments)
    case "scenarios": status = try Commands.scenarios(arguments)
    case "idle": status = try Commands.idle(arguments)
    default: throw UsageError(description: "unknown command '\(command)' (run, compare, scenarios, idle)")
    }
} catch let error as UsageError {
    emitError(error.description)
    exit(2)
} catch let error as CommandArguments.Failure {
    emitError(error.description)
    exit(2)
} catch let error as CodecErrorPublic {
    emitError(error.description)
    exit(2)
} catch {
    emitError("\(error)")
    exit(1)
}
exit(status)

func emitError(_ text: String) {
    var bytes = Array("chapar-loadsim: \(text)\n".utf8)
    _ = write(2, &bytes, bytes.count)
}
