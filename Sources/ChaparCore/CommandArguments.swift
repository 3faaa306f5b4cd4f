/// Command-line flags for Chapar's tools: `--name value`, `--name=value`, boolean
/// switches, repeated flags (`--target A --target B`) and positional arguments.
public struct CommandArguments: Sendable {
    public private(set) var positionals: [String] = []
    private var values: [String: [String]] = [:]
    public private(set) var switches: Set<String> = []

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// `booleans` name the flags that take no value; `-h` means `--help`.
    public init(_ arguments: [String], booleans: Set<String> = ["json", "help"]) throws(Failure) {
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "-h" { switches.insert("help"); continue }
            guard argument.hasPrefix("--"), argument.count > 2 else {
                positionals.append(argument)
                continue
            }
            let body = argument.dropFirst(2)
            if let equals = body.firstIndex(of: "=") {
                values[String(body[..<equals]), default: []].append(String(body[body.index(after: equals)...]))
            } else if booleans.contains(String(body)) {
                switches.insert(String(body))
            } else {
                guard index < arguments.count else { throw Failure("--\(body) needs a value") }
                values[String(body), default: []].append(arguments[index])
                index += 1
            }
        }
    }

    /// The last value given for `name`.
    public func option(_ name: String) -> String? { values[name]?.last }

    /// Every value given for `name`, in order.
    public func all(_ name: String) -> [String] { values[name] ?? [] }

    public func has(_ name: String) -> Bool { switches.contains(name) }

    /// A whole number within `range`, or nil when absent.
    public func integer(_ name: String, in range: ClosedRange<Int>) throws(Failure) -> Int? {
        guard let text = option(name) else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw Failure("--\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound), not '\(text)'")
        }
        return value
    }

    public func number(_ name: String, in range: ClosedRange<Double>) throws(Failure) -> Double? {
        guard let text = option(name) else { return nil }
        guard let value = Double(text), range.contains(value) else {
            throw Failure("--\(name) must be a number from \(range.lowerBound) to \(range.upperBound), not '\(text)'")
        }
        return value
    }

    /// Fails on any flag outside `known`.
    public func rejectUnknown(_ known: Set<String>) throws(Failure) {
        for name in values.keys.sorted() where !known.contains(name) { throw Failure("unknown option --\(name)") }
        for name in switches.sorted() where !known.contains(name) { throw Failure("unknown option --\(name)") }
    }
}
