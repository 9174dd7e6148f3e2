@testable import MenshenIdentity

/// A small CTAP2-canonical CBOR encoder for building test inputs (map keys
/// are written in the order given; callers give them canonically sorted).
enum TestCBOR {
    static func head(_ major: UInt8, _ value: UInt64) -> [UInt8] {
        let m = major << 5
        switch value {
        case 0..<24: return [m | UInt8(value)]
        case 24..<0x100: return [m | 24, UInt8(value)]
        case 0x100..<0x1_0000: return [m | 25, UInt8(value >> 8), UInt8(value & 0xFF)]
        case 0x1_0000..<0x1_0000_0000: return [m | 26] + (0..<4).reversed().map { UInt8((value >> (8 * UInt64($0))) & 0xFF) }
        default: return [m | 27] + (0..<8).reversed().map { UInt8((value >> (8 * UInt64($0))) & 0xFF) }
        }
    }

    static func encode(_ value: CBORValue) -> [UInt8] {
        switch value {
        case .unsigned(let n): return head(0, n)
        case .negative(let n): return head(1, n)
        case .bytes(let b): return head(2, UInt64(b.count)) + b
        case .text(let s): return head(3, UInt64(s.utf8.count)) + Array(s.utf8)
        case .array(let a): return head(4, UInt64(a.count)) + a.flatMap(encode)
        case .map(let m): return head(5, UInt64(m.count)) + m.flatMap { encode($0.key) + encode($0.value) }
        case .tagged(let t, let v): return head(6, t) + encode(v)
        case .bool(let b): return [b ? 0xF5 : 0xF4]
        case .null: return [0xF6]
        case .undefined: return [0xF7]
        }
    }

    static func int(_ n: Int) -> CBORValue { n >= 0 ? .unsigned(UInt64(n)) : .negative(UInt64(-1 - n)) }

    static func map(_ entries: [(CBORValue, CBORValue)]) -> CBORValue {
        .map(entries.map { CBORMapEntry(key: $0.0, value: $0.1) })
    }
}
