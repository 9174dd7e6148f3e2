import Crypto
import Foundation

/// TPM 2.0 algorithm and attribute numbers Menshen reads (TPM 2.0 Library,
/// Part 2: Structures, §6.3 `TPM_ALG_ID`, §6.4 `TPM_ECC_CURVE`, §8.3 `TPMA_OBJECT`).
public enum TPMConstants {
    public static let algECC: UInt16 = 0x0023, algSHA256: UInt16 = 0x000B, algSHA384: UInt16 = 0x000C, algNull: UInt16 = 0x0010
    public static let algECDSA: UInt16 = 0x0018, algAES: UInt16 = 0x0006, algCFB: UInt16 = 0x0043
    public static let curveP256: UInt16 = 0x0003, curveP384: UInt16 = 0x0004
}

/// `TPMA_OBJECT` (Part 2 §8.3): the attributes that decide whether a key can leave its TPM.
public struct TPMObjectAttributes: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// The key cannot be duplicated: it never leaves this TPM.
    public static let fixedTPM = TPMObjectAttributes(rawValue: 1 << 1)
    public static let stClear = TPMObjectAttributes(rawValue: 1 << 2)
    /// The key cannot be duplicated to another parent.
    public static let fixedParent = TPMObjectAttributes(rawValue: 1 << 4)
    /// The TPM generated the private key (it was never imported).
    public static let sensitiveDataOrigin = TPMObjectAttributes(rawValue: 1 << 5)
    public static let userWithAuth = TPMObjectAttributes(rawValue: 1 << 6)
    public static let adminWithPolicy = TPMObjectAttributes(rawValue: 1 << 7)
    public static let restricted = TPMObjectAttributes(rawValue: 1 << 16)
    public static let decrypt = TPMObjectAttributes(rawValue: 1 << 17)
    public static let sign = TPMObjectAttributes(rawValue: 1 << 18)
}

/// An ECC key's public area, `TPMT_PUBLIC` (Part 2 §12.2.4) with
/// `TPMS_ECC_PARMS` and `TPMS_ECC_POINT`, parsed from its marshalled bytes
/// (big-endian, sizes before buffers). Only ECC is read: Menshen's device
/// keys and the endorsement keys it supports are ECC.
///
/// Written by hand: no package available to us (swift-crypto,
/// swift-certificates, swift-asn1) reads TPM structures. The bytes come from
/// an agent, so every size is checked against ``maxBytes`` and the field's own
/// limit, unknown algorithms are refused, and trailing bytes are an error.
public struct TPMECCPublicArea: Sendable, Hashable {
    /// Largest marshalled area accepted (a P-384 key with a SHA-512 policy is about 200 bytes).
    public static let maxBytes = 1024

    /// The exact marshalled `TPMT_PUBLIC` (what the Name hashes).
    public let bytes: [UInt8]
    public let nameAlg: UInt16
    public let attributes: TPMObjectAttributes
    public let authPolicy: [UInt8]
    /// `TPMT_SYM_DEF_OBJECT`: algorithm (`TPM_ALG_NULL` for a signing key), key bits and mode (0 when NULL).
    public let symmetricAlgorithm: UInt16, symmetricKeyBits: UInt16, symmetricMode: UInt16
    /// `TPMT_ECC_SCHEME` and its hash (0 when the scheme is NULL).
    public let scheme: UInt16, schemeHash: UInt16
    public let curve: UInt16
    public let kdf: UInt16
    /// The public point's coordinates as marshalled.
    public let x: [UInt8], y: [UInt8]

    /// Parses a `TPMT_PUBLIC`, or a `TPM2B_PUBLIC` (the same with a two-byte size in front,
    /// as `tpm2_create -u` writes it) when `sized`.
    public static func parse(_ input: [UInt8], sized: Bool = false) throws(TPMError) -> TPMECCPublicArea {
        guard input.count <= maxBytes + 2 else { throw TPMError(.tooLarge, "public area of \(input.count) bytes, at most \(maxBytes)") }
        var bytes = input
        if sized {
            var outer = TPMReader(input)
            bytes = try outer.sized("TPM2B_PUBLIC", max: maxBytes)
            try outer.end("TPM2B_PUBLIC")
        }
        var r = TPMReader(bytes)
        let type = try r.u16("type")
        guard type == TPMConstants.algECC else { throw TPMError(.unsupportedAlgorithm, "type 0x\(hex16(type)): only ECC keys are read") }
        let nameAlg = try r.u16("nameAlg")
        guard nameAlg == TPMConstants.algSHA256 || nameAlg == TPMConstants.algSHA384 else {
            throw TPMError(.unsupportedAlgorithm, "nameAlg 0x\(hex16(nameAlg)): SHA-256 or SHA-384")
        }
        let attributes = TPMObjectAttributes(rawValue: try r.u32("objectAttributes"))
        let authPolicy = try r.sized("authPolicy", max: 64)
        let symmetric = try r.u16("symmetric.algorithm")
        var keyBits: UInt16 = 0, mode: UInt16 = 0
        if symmetric != TPMConstants.algNull {
            guard symmetric == TPMConstants.algAES else { throw TPMError(.unsupportedAlgorithm, "symmetric 0x\(hex16(symmetric)): AES or NULL") }
            keyBits = try r.u16("symmetric.keyBits")
            mode = try r.u16("symmetric.mode")
            guard keyBits == 128 || keyBits == 256 else { throw TPMError(.invalidField, "symmetric.keyBits \(keyBits)") }
        }
        let scheme = try r.u16("scheme")
        var schemeHash: UInt16 = 0
        switch scheme {
        case TPMConstants.algNull: break
        case 0x0018, 0x0019, 0x001B, 0x001C, 0x001D: schemeHash = try r.u16("scheme.hashAlg")   // ECDSA, ECDH, SM2, ECSCHNORR, ECMQV
        case 0x001A: schemeHash = try r.u16("scheme.hashAlg"); _ = try r.u16("scheme.count")     // ECDAA
        default: throw TPMError(.unsupportedAlgorithm, "scheme 0x\(hex16(scheme))")
        }
        let curve = try r.u16("curveID")
        let kdf = try r.u16("kdf")
        if kdf != TPMConstants.algNull {
            guard [0x0007, 0x0020, 0x0021, 0x0022].contains(kdf) else { throw TPMError(.unsupportedAlgorithm, "kdf 0x\(hex16(kdf))") }
            _ = try r.u16("kdf.hashAlg")
        }
        let x = try r.sized("unique.x", max: 66)
        let y = try r.sized("unique.y", max: 66)
        try r.end("TPMT_PUBLIC")
        return TPMECCPublicArea(bytes: bytes, nameAlg: nameAlg, attributes: attributes, authPolicy: authPolicy,
                                symmetricAlgorithm: symmetric, symmetricKeyBits: keyBits, symmetricMode: mode,
                                scheme: scheme, schemeHash: schemeHash, curve: curve, kdf: kdf, x: x, y: y)
    }

    /// The object's TPM Name (Part 1 §16): `nameAlg ‖ H_nameAlg(TPMT_PUBLIC)`. The TPM
    /// checks it in `TPM2_ActivateCredential`, so it binds the attributes above to the key.
    public var name: [UInt8] {
        let digest: [UInt8] = nameAlg == TPMConstants.algSHA384 ? Array(SHA384.hash(data: bytes)) : Array(SHA256.hash(data: bytes))
        return [UInt8(nameAlg >> 8), UInt8(nameAlg & 0xFF)] + digest
    }

    /// The point in X9.63 form (`04 ‖ x ‖ y`, each coordinate left-padded to the curve size), or nil for another curve.
    public var x963: [UInt8]? {
        let size: Int
        switch curve {
        case TPMConstants.curveP256: size = 32
        case TPMConstants.curveP384: size = 48
        default: return nil
        }
        guard x.count <= size, y.count <= size else { return nil }
        return [0x04] + [UInt8](repeating: 0, count: size - x.count) + x + [UInt8](repeating: 0, count: size - y.count) + y
    }

    /// Why this public area is not a device key that cannot leave its TPM, or nil when it is:
    /// an ECC P-256 signing key (ECDSA-SHA256 or no fixed scheme), Name by SHA-256,
    /// `fixedTPM`, `fixedParent`, `sensitiveDataOrigin` and `sign`, neither `decrypt`
    /// nor `restricted`, no symmetric algorithm.
    public var deviceKeyRefusal: String? {
        guard curve == TPMConstants.curveP256 else { return "the key is not on P-256 (curve 0x\(hex16(curve)))" }
        guard nameAlg == TPMConstants.algSHA256 else { return "the key's name algorithm is not SHA-256" }
        let required: [(TPMObjectAttributes, String)] = [(.fixedTPM, "fixedTPM"), (.fixedParent, "fixedParent"),
                                                         (.sensitiveDataOrigin, "sensitiveDataOrigin"), (.sign, "sign")]
        for (attribute, label) in required where !attributes.contains(attribute) { return "the key lacks \(label)" }
        if attributes.contains(.decrypt) { return "the key has decrypt (a device key only signs)" }
        if attributes.contains(.restricted) { return "the key is restricted" }
        guard symmetricAlgorithm == TPMConstants.algNull else { return "a signing key has no symmetric algorithm" }
        guard scheme == TPMConstants.algNull || (scheme == TPMConstants.algECDSA && schemeHash == TPMConstants.algSHA256) else {
            return "the key's scheme is not ECDSA with SHA-256"
        }
        guard kdf == TPMConstants.algNull else { return "a signing key has no KDF" }
        return nil
    }
}

func hex16(_ value: UInt16) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
}

/// Reads big-endian TPM marshalling with bounds checks; every read names its field for the error.
struct TPMReader {
    let bytes: [UInt8]
    var offset = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func take(_ count: Int, _ field: String) throws(TPMError) -> ArraySlice<UInt8> {
        guard count >= 0, bytes.count - offset >= count else { throw TPMError(.truncated, "\(field): needs \(count) bytes, \(bytes.count - offset) left") }
        defer { offset += count }
        return bytes[offset..<(offset + count)]
    }
    mutating func u16(_ field: String) throws(TPMError) -> UInt16 {
        let b = try take(2, field)
        return b.reduce(0) { $0 << 8 | UInt16($1) }
    }
    mutating func u32(_ field: String) throws(TPMError) -> UInt32 {
        let b = try take(4, field)
        return b.reduce(0) { $0 << 8 | UInt32($1) }
    }
    /// A TPM2B: two-byte size, then that many bytes (at most `max`).
    mutating func sized(_ field: String, max: Int) throws(TPMError) -> [UInt8] {
        let size = Int(try u16(field + ".size"))
        guard size <= max else { throw TPMError(.tooLarge, "\(field): \(size) bytes, at most \(max)") }
        return Array(try take(size, field))
    }
    func end(_ structure: String) throws(TPMError) {
        guard offset == bytes.count else { throw TPMError(.trailingBytes, "\(structure): \(bytes.count - offset) bytes after the end") }
    }
}

/// Big-endian marshalling helpers.
enum TPMWriter {
    static func u16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
    static func u32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }
    /// A TPM2B (the caller keeps `bytes` under 65,536).
    static func sized(_ bytes: [UInt8]) -> [UInt8] { u16(UInt16(truncatingIfNeeded: bytes.count)) + bytes }
}
