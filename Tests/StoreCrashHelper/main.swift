// A child process for StorageTests' crash test: it appends to one channel as fast as
// the group committer takes publishes and prints "OFFSET" for every acknowledged one,
// until it is killed with SIGKILL. The payload of the publish submitted i-th is "m<i>".
import ChaparCore
import Dispatch
import Storage
#if canImport(Glibc)
import Glibc
#endif

let path = CommandLine.arguments[1]
let directory = try DataDirectory(path: path)
let committer = try GroupCommitter<Int>(
    directory: directory, durability: .fsync, retention: RetentionRules(),
    clock: { Int64(time(nil)) * 1000 },
    onCommit: { report in
        var text = ""
        for (_, outcome) in report.outcomes {
            if case .stored(let offset, _) = outcome { text += "\(offset)\n" }
        }
        var bytes = Array(text.utf8)
        _ = write(1, &bytes, bytes.count)
    })
let start = (committer.channelBounds()["crash"]?.head ?? 0) + 1
let thread = Thread_start { committer.run() }
var index = Int(start)
while true {
    // Keep a bounded backlog so the process is always mid-transaction when killed.
    if committer.queuedBytes > 64 << 10 { usleep(200); continue }
    let batch = (0..<32).map { i in
        (AppendInput(channel: "crash", producer: nil, payload: Array("m\(index + i)".utf8)), index + i)
    }
    index += 32
    _ = committer.submit(batch)
}

func Thread_start(_ body: @escaping @Sendable () -> Void) -> pthread_t {
    final class Box { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
    var handle = pthread_t()
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    pthread_create(&handle, nil, { raw in
        Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
        return nil
    }, box)
    return handle
}
