/// A strict CBOR decoder (RFC 8949) for the CTAP2/WebAuthn subset.
///
/// Accepted: unsigned and negative integers, byte and text strings, arrays,
/// maps, tags, `false`/`true`/`null`/`undefined`. Refused: indefinite
/// lengths, floats and other simple values, reserved additional information,
/// non-shortest integer and length encodings (RFC 8949 §4.2.1 preferred
/// serialization), duplicate map keys, invalid UTF-8 in text strings, and
/// optionally map keys out of CTAP2 canonical order. Size, depth and item
/// count are bounded; every failure is a `CBORError` carrying the byte offset.
/// The decoder never traps on any input.
public struct CBORDecoder: Sendable {
    public struct Limits: Sendable, Hashable {
        /// Largest input accepted, in bytes.
        public var maxBytes: Int
        /// Deepest nesting of arrays, maps and tags (top-level item is depth 1).
        public var maxDepth: Int
        /// Most data items in one decode (every nested item counts, keys too).
        public var maxItems: Int

        public init(maxBytes: Int = 64 * 1024, maxDepth: Int = 16, maxItems: Int = 4096) {
            self.maxBytes = maxBytes
            self.maxDepth = maxDepth
            self.maxItems = maxItems
        }
    }

    /// Map key order policy. `.ctap2Canonical` (keys sorted by encoded length,
    /// then bytewise, CTAP2 §6) rejects unsorted maps; `.any` accepts any
    /// order because some authenticators and browsers do not sort. Either way
    /// duplicate keys are refused.
    public enum MapKeyOrder: Sendable, Hashable {
        case any
        case ctap2Canonical
    }

    public var limits: Limits
    public var mapKeyOrder: MapKeyOrder

    public init(limits: Limits = Limits(), mapKeyOrder: MapKeyOrder = .any) {
        self.limits = limits
        self.mapKeyOrder = mapKeyOrder
    }

    /// Decodes exactly one item that must span the whole input.
    public func decode(_ bytes: [UInt8]) throws(CBORError) -> CBORValue {
        let (value, end) = try decodePrefix(bytes, from: 0)
        guard end == bytes.count else { throw CBORError(.trailingBytes, offset: end) }
        return value
    }

    /// Decodes one item starting at `start` and returns it with the offset
    /// just past it (for authenticator data, where a COSE key is followed by
    /// an extensions map).
    public func decodePrefix(_ bytes: [UInt8], from start: Int) throws(CBORError) -> (CBORValue, Int) {
        guard bytes.count <= limits.maxBytes else { throw CBORError(.tooLarge, offset: 0) }
        guard start >= 0, start <= bytes.count else { throw CBORError(.truncated, offset: start) }
        var reader = Reader(bytes: bytes, position: start, limits: limits, mapKeyOrder: mapKeyOrder)
        let value = try reader.item(depth: 1)
        return (value, reader.position)
    }

    private struct Reader {
        let bytes: [UInt8]
        var position: Int
        let limits: Limits
        let mapKeyOrder: MapKeyOrder
        var items = 0

        init(bytes: [UInt8], position: Int, limits: Limits, mapKeyOrder: MapKeyOrder) {
            self.bytes = bytes
            self.position = position
            self.limits = limits
            self.mapKeyOrder = mapKeyOrder
        }

        mutating func byte() throws(CBORError) -> UInt8 {
            guard position < bytes.count else { throw CBORError(.truncated, offset: position) }
            let value = bytes[position]
            position += 1
            return value
        }

        mutating func take(_ count: UInt64) throws(CBORError) -> ArraySlice<UInt8> {
            guard count <= UInt64(bytes.count - position) else { throw CBORError(.truncated, offset: position) }
            let end = position + Int(count)
            defer { position = end }
            return bytes[position..<end]
        }

        /// Reads the argument of a head and enforces its shortest form.
        mutating func argument(_ info: UInt8, headOffset: Int) throws(CBORError) -> UInt64 {
            switch info {
            case 0...23:
                return UInt64(info)
            case 24...27:
                let width = 1 << Int(info - 24)
                var value: UInt64 = 0
                for _ in 0..<width { value = (value << 8) | UInt64(try byte()) }
                let minimum: UInt64 = switch width {
                case 1: 24
                case 2: 0x100
                case 4: 0x1_0000
                default: 0x1_0000_0000
                }
                guard value >= minimum else { throw CBORError(.nonCanonicalEncoding, offset: headOffset) }
                return value
            case 31:
                throw CBORError(.indefiniteLength, offset: headOffset)
            default:
                throw CBORError(.reservedAdditionalInformation, offset: headOffset)
            }
        }

        mutating func item(depth: Int) throws(CBORError) -> CBORValue {
            let headOffset = position
            items += 1
            guard items <= limits.maxItems else { throw CBORError(.tooManyItems, offset: headOffset) }
            guard depth <= limits.maxDepth else { throw CBORError(.tooDeep, offset: headOffset) }
            let initial = try byte()
            let major = initial >> 5
            let info = initial & 0x1F
            if major == 7 {
                switch info {
                case 20: return .bool(false)
                case 21: return .bool(true)
                case 22: return .null
                case 23: return .undefined
                case 31: throw CBORError(.indefiniteLength, offset: headOffset)
                case 28...30: throw CBORError(.reservedAdditionalInformation, offset: headOffset)
                default: throw CBORError(.unsupportedType, offset: headOffset)  // floats, other simple values
                }
            }
            let argument = try argument(info, headOffset: headOffset)
            switch major {
            case 0:
                return .unsigned(argument)
            case 1:
                return .negative(argument)
            case 2:
                return .bytes(Array(try take(argument)))
            case 3:
                let raw = try take(argument)
                guard let text = String(validating: raw, as: UTF8.self) else {
                    throw CBORError(.invalidUTF8, offset: headOffset)
                }
                return .text(text)
            case 4:
                // Each element needs at least one byte: refuse impossible counts early.
                guard argument <= UInt64(bytes.count - position) else { throw CBORError(.truncated, offset: headOffset) }
                var elements: [CBORValue] = []
                elements.reserveCapacity(Int(argument))
                for _ in 0..<argument { elements.append(try item(depth: depth + 1)) }
                return .array(elements)
            case 5:
                guard argument <= UInt64(bytes.count - position) / 2 else { throw CBORError(.truncated, offset: headOffset) }
                var entries: [CBORMapEntry] = []
                var seen = Set<CBORValue>()
                var previousKeyBytes: ArraySlice<UInt8>?
                for _ in 0..<argument {
                    let keyOffset = position
                    let key = try item(depth: depth + 1)
                    let keyBytes = bytes[keyOffset..<position]
                    guard seen.insert(key).inserted else { throw CBORError(.duplicateMapKey, offset: keyOffset) }
                    if mapKeyOrder == .ctap2Canonical, let previous = previousKeyBytes, !Self.ctap2Less(previous, keyBytes) {
                        throw CBORError(.unsortedMapKeys, offset: keyOffset)
                    }
                    previousKeyBytes = keyBytes
                    let value = try item(depth: depth + 1)
                    entries.append(CBORMapEntry(key: key, value: value))
                }
                return .map(entries)
            default:  // 6: tag
                let content = try item(depth: depth + 1)
                return .tagged(argument, content)
            }
        }

        /// CTAP2 canonical order: shorter encoded keys first, then bytewise.
        static func ctap2Less(_ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>) -> Bool {
            if a.count != b.count { return a.count < b.count }
            return a.lexicographicallyPrecedes(b)
        }
    }
}
