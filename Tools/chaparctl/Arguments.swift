/// A small flag parser: `--name value`, `--name=value`, boolean `--name`, positionals.
struct Arguments {
    var positionals: [String] = []
    var options: [String: String] = [:]
    var switches: Set<String> = []

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// `booleans` are flags that take no value.
    init(_ arguments: [String], booleans: Set<String> = ["json", "help"]) throws(Failure) {
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "-h" { switches.insert("help"); index += 1; continue }
            if argument.hasPrefix("--") {
                var name = String(argument.dropFirst(2))
                if let equals = name.firstIndex(of: "=") {
                    options[String(name[..<equals])] = String(name[name.index(after: equals)...])
                    name = String(name[..<equals])
                } else if booleans.contains(name) {
                    switches.insert(name)
                } else {
                    index += 1
                    guard index < arguments.count else { throw Failure(description: "--\(name) needs a value") }
                    options[name] = arguments[index]
                }
            } else {
                positionals.append(argument)
            }
            index += 1
        }
    }

    func reject(unknownBeyond known: Set<String>) throws(Failure) {
        for name in options.keys.sorted() where !known.contains(name) {
            throw Failure(description: "unknown option --\(name)")
        }
        for name in switches.sorted() where !known.contains(name) {
            throw Failure(description: "unknown option --\(name)")
        }
    }
}
