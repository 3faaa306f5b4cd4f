/// A JSON document as a value, for configuration and scenario files whose every field
/// must be checked by name (unknown keys are errors, not silently ignored).
public enum JSONValue: Equatable, Sendable, Codable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null; return }
        if let value = try? container.decode(Bool.self) { self = .bool(value); return }
        if let value = try? container.decode(Double.self) { self = .number(value); return }
        if let value = try? container.decode(String.self) { self = .string(value); return }
        if let value = try? container.decode([JSONValue].self) { self = .array(value); return }
        self = .object(try container.decode([String: JSONValue].self))
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

/// A problem in a JSON document, located by its dotted path (`retention.default.max-bytes`).
public struct JSONFieldError: Error, Equatable, Sendable, CustomStringConvertible {
    public var path: String
    public var reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(path.isEmpty ? "document" : path): \(reason)" }
}

/// Walks a JSON object field by field, with errors that name the field.
public struct JSONObjectReader {
    public let path: String
    private let fields: [String: JSONValue]

    public init(_ value: JSONValue, path: String = "") throws(JSONFieldError) {
        guard case .object(let fields) = value else {
            throw JSONFieldError(path: path, reason: "expected an object, found \(value.typeName)")
        }
        self.path = path
        self.fields = fields
    }

    func child(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// Fails on any key not in `allowed`, so a typo is reported instead of ignored.
    public func allowOnly(_ allowed: Set<String>) throws(JSONFieldError) {
        for key in fields.keys.sorted() where !allowed.contains(key) {
            throw JSONFieldError(path: child(key), reason: "unknown field (known: \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    public func has(_ key: String) -> Bool { fields[key] != nil }

    public func raw(_ key: String) -> JSONValue? { fields[key] }

    public func string(_ key: String) throws(JSONFieldError) -> String? {
        guard let value = fields[key] else { return nil }
        guard case .string(let text) = value else {
            throw JSONFieldError(path: child(key), reason: "expected a string, found \(value.typeName)")
        }
        return text
    }

    public func bool(_ key: String) throws(JSONFieldError) -> Bool? {
        guard let value = fields[key] else { return nil }
        guard case .bool(let flag) = value else {
            throw JSONFieldError(path: child(key), reason: "expected true or false, found \(value.typeName)")
        }
        return flag
    }

    public func number(_ key: String) throws(JSONFieldError) -> Double? {
        guard let value = fields[key] else { return nil }
        guard case .number(let number) = value else {
            throw JSONFieldError(path: child(key), reason: "expected a number, found \(value.typeName)")
        }
        return number
    }

    /// An integer within `range`.
    public func integer(_ key: String, in range: ClosedRange<Int64>) throws(JSONFieldError) -> Int64? {
        guard let number = try number(key) else { return nil }
        guard number.rounded() == number, number >= Double(range.lowerBound), number <= Double(range.upperBound) else {
            throw JSONFieldError(path: child(key), reason: "expected a whole number from \(range.lowerBound) to \(range.upperBound), found \(number)")
        }
        return Int64(number)
    }

    public func object(_ key: String) throws(JSONFieldError) -> JSONObjectReader? {
        guard let value = fields[key] else { return nil }
        return try JSONObjectReader(value, path: child(key))
    }

    public func array(_ key: String) throws(JSONFieldError) -> [JSONValue]? {
        guard let value = fields[key] else { return nil }
        guard case .array(let items) = value else {
            throw JSONFieldError(path: child(key), reason: "expected an array, found \(value.typeName)")
        }
        return items
    }

    /// Each field of this object as a reader, for maps such as per-channel overrides.
    public func objects() throws(JSONFieldError) -> [(String, JSONObjectReader)] {
        var result: [(String, JSONObjectReader)] = []
        for key in fields.keys.sorted() { result.append((key, try JSONObjectReader(fields[key]!, path: child(key)))) }
        return result
    }
}
