import Foundation
import Synchronization
import Transport

/// Path of an executable built beside the test bundle.
func builtProduct(_ name: String) -> String {
    if let directory = ProcessInfo.processInfo.environment["CHAPAR_BIN_DIR"] { return directory + "/" + name }
    return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path + "/" + name
}

/// Each test gets its own loopback address, so nothing collides with anything else.
enum LoopbackAddresses {
    private static let next = Atomic<Int>(20)
    static func take() -> String {
        "127.0.0.\(next.wrappingAdd(1, ordering: .relaxed).oldValue % 200 + 20)"
    }
}

struct TimedOut: Error, CustomStringConvertible {
    var description: String
}

/// Polls `condition` until it holds or `seconds` pass.
func waitUntil(_ what: String, seconds: Double = 30, _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return }
        usleep(10_000)
    }
    throw TimedOut(description: "timed out after \(seconds) s waiting for \(what)")
}

/// Like `waitUntil`, for async tests: sleeps with `Task.sleep`, so it never holds one of
/// the few cooperative threads the other tasks of the test need.
func waitUntilAsync(_ what: String, seconds: Double = 30, _ condition: () throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return }
        try await Task.sleep(nanoseconds: 10_000_000)
    }
    throw TimedOut(description: "timed out after \(seconds) s waiting for \(what)")
}

/// A `chapard` child process on its own loopback address, port 0 and a temp data dir.
/// Stopped by its PID only.
final class NodeProcess {
    let data: String
    let host: String
    let extraArguments: [String]
    private(set) var process: Process?
    private(set) var address = ""
    let logPath: String

    init(extraArguments: [String] = [], host: String? = nil) {
        data = FileManager.default.temporaryDirectory.path + "/chapar-e2e-\(UInt64.random(in: 0...UInt64.max))"
        self.host = host ?? LoopbackAddresses.take()
        logPath = data + ".log"
        self.extraArguments = extraArguments
    }

    /// Starts the node and waits until it has written its address file.
    func start(additional: [String] = []) throws {
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let addressFile = data + "/chapard.addr"
        try? FileManager.default.removeItem(atPath: addressFile)
        let child = Process()
        child.executableURL = URL(fileURLWithPath: builtProduct("chapard"))
        child.arguments = ["--data", data, "--listen", "\(host):0", "--node-id", "e2e"] + extraArguments + additional
        if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        log.seekToEndOfFile()
        child.standardError = log
        child.standardOutput = log
        try child.run()
        process = child
        try waitUntil("chapard to write its address") {
            guard child.isRunning else { throw TimedOut(description: "chapard exited: \(self.log())") }
            return FileManager.default.fileExists(atPath: addressFile)
        }
        address = try String(contentsOfFile: addressFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// The addresses the node wrote to DATA/chapard.json (client, gossip, admin, pid).
    func details() throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: self.data + "/chapard.json"))
        return try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
    }

    /// SIGKILL: the crash case.
    func kill9() {
        guard let process else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    /// SIGTERM, then wait (bounded) for a graceful exit; returns the exit status.
    @discardableResult
    func stop() -> Int32? {
        guard let process else { return nil }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(20)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            self.process = nil
            return nil
        }
        self.process = nil
        return process.terminationStatus
    }

    /// Resident memory of the node, from /proc.
    func residentBytes() -> Int {
        guard let process,
              let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return 0 }
        return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
    }

    func cleanUp() {
        stop()
        try? FileManager.default.removeItem(atPath: data)
        try? FileManager.default.removeItem(atPath: logPath)
    }
}

/// A value shared between tasks behind a lock.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
}

/// A minimal HTTP/1.1 GET over a blocking socket: (status, body).
func httpGet(_ address: String, _ path: String) throws -> (Int, String) {
    try httpRequest(address, "GET \(path) HTTP/1.1\r\nHost: \(address)\r\n\r\n")
}

/// Sends `request` as is and returns (status, body).
func httpRequest(_ address: String, _ request: String) throws -> (Int, String) {
    let fd = try connectTCP(to: SocketAddress(parsing: address))
    defer { close(fd) }
    let flags = fcntl(fd, F_GETFL)
    _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    let request = Array(request.utf8)
    _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    var response: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count <= 0 { break }
        response += chunk[..<count]
    }
    let text = String(decoding: response, as: UTF8.self)
    let status = Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0
    let body = text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
    return (status, body)
}

/// Runs a built tool to completion (killed by its PID after `seconds`) and returns its
/// exit status, standard output and standard error. Both pipes are drained while it
/// runs, so a chatty tool cannot block on a full pipe.
func runTool(_ name: String, _ arguments: [String], seconds: Double) throws -> (Int32, String, String) {
    let child = Process()
    child.executableURL = URL(fileURLWithPath: builtProduct(name))
    child.arguments = arguments
    let output = Pipe()
    let errors = Pipe()
    child.standardOutput = output
    child.standardError = errors
    try child.run()
    let pid = child.processIdentifier
    let watchdog = DispatchWorkItem { kill(pid, SIGKILL) }
    DispatchQueue.global().asyncAfter(deadline: .now() + seconds, execute: watchdog)
    let errorText = Locked("")
    let drained = DispatchSemaphore(value: 0)
    let errorHandle = errors.fileHandleForReading
    DispatchQueue.global().async {
        let data = errorHandle.readDataToEndOfFile()
        errorText.withLock { $0 = String(decoding: data, as: UTF8.self) }
        drained.signal()
    }
    let out = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    drained.wait()
    child.waitUntilExit()
    watchdog.cancel()
    return (child.terminationStatus, out, errorText.withLock { $0 })
}
