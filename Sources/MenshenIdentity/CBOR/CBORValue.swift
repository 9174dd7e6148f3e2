/// A decoded CBOR data item (RFC 8949), restricted to what WebAuthn uses.
public indirect enum CBORValue: Sendable, Hashable {
    case unsigned(UInt64)
    /// The negative integer −1 − n.
    case negative(UInt64)
    case bytes([UInt8])
    case text(String)
    case array([CBORValue])
    /// Entries in encoded order (keys are unique: the decoder refuses duplicates).
    case map([CBORMapEntry])
    case tagged(UInt64, CBORValue)
    case bool(Bool)
    case null
    case undefined

    /// The value as a Swift `Int`, when it is an integer that fits.
    public var intValue: Int? {
        switch self {
        case .unsigned(let n): return n <= UInt64(Int.max) ? Int(n) : nil
        case .negative(let n): return n <= UInt64(Int.max) ? -1 - Int(n) : nil
        default: return nil
        }
    }

    public var bytesValue: [UInt8]? {
        if case .bytes(let b) = self { return b }
        return nil
    }

    public var textValue: String? {
        if case .text(let s) = self { return s }
        return nil
    }

    public var arrayValue: [CBORValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var mapValue: [CBORMapEntry]? {
        if case .map(let m) = self { return m }
        return nil
    }

    /// Looks up a map entry by key; nil when this is not a map or the key is absent.
    public subscript(key: CBORValue) -> CBORValue? {
        mapValue?.first { $0.key == key }?.value
    }

    public subscript(text key: String) -> CBORValue? { self[.text(key)] }

    public subscript(int key: Int) -> CBORValue? {
        self[key >= 0 ? .unsigned(UInt64(key)) : .negative(UInt64(-1 - key))]
    }
}

public struct CBORMapEntry: Sendable, Hashable {
    public let key: CBORValue
    public let value: CBORValue
    public init(key: CBORValue, value: CBORValue) {
        self.key = key
        self.value = value
    }
}
