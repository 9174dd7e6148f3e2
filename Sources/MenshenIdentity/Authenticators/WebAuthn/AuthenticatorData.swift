/// Authenticator data (WebAuthn §6.1): rpIdHash ‖ flags ‖ signCount ‖
/// [attested credential data] ‖ [extensions].
public struct AuthenticatorData: Sendable {
    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let userPresent = Flags(rawValue: 0x01)
        public static let userVerified = Flags(rawValue: 0x04)
        public static let backupEligible = Flags(rawValue: 0x08)
        public static let backupState = Flags(rawValue: 0x10)
        public static let attestedCredentialData = Flags(rawValue: 0x40)
        public static let extensionData = Flags(rawValue: 0x80)
    }

    public struct AttestedCredential: Sendable {
        public let aaguid: [UInt8]
        public let credentialID: [UInt8]
        /// The COSE_Key exactly as encoded (store these bytes).
        public let publicKeyBytes: [UInt8]
        public let publicKey: COSEPublicKey
    }

    /// Credential ids longer than this are refused (WebAuthn L3 §7.1 step 24).
    public static let maxCredentialIDLength = 1023

    public let raw: [UInt8]
    public let rpIDHash: [UInt8]
    public let flags: Flags
    public let signCount: UInt32
    public let attestedCredential: AttestedCredential?
    public let extensions: CBORValue?

    public init(bytes: [UInt8]) throws(WebAuthnError) {
        guard bytes.count >= 37 else { throw WebAuthnError(.malformedAuthenticatorData, "\(bytes.count) bytes, need 37") }
        raw = bytes
        rpIDHash = Array(bytes[0..<32])
        flags = Flags(rawValue: bytes[32])
        signCount = UInt32(bytes[33]) << 24 | UInt32(bytes[34]) << 16 | UInt32(bytes[35]) << 8 | UInt32(bytes[36])
        var offset = 37
        let decoder = CBORDecoder()
        if flags.contains(.attestedCredentialData) {
            guard bytes.count >= offset + 18 else { throw WebAuthnError(.malformedAuthenticatorData, "attested credential data truncated") }
            let aaguid = Array(bytes[offset..<(offset + 16)])
            let idLength = Int(bytes[offset + 16]) << 8 | Int(bytes[offset + 17])
            offset += 18
            guard idLength <= Self.maxCredentialIDLength else { throw WebAuthnError(.credentialIDTooLong, "\(idLength) bytes") }
            guard idLength > 0, bytes.count >= offset + idLength else {
                throw WebAuthnError(.malformedAuthenticatorData, "credential id truncated")
            }
            let credentialID = Array(bytes[offset..<(offset + idLength)])
            offset += idLength
            let keyValue: CBORValue
            let keyEnd: Int
            do {
                (keyValue, keyEnd) = try decoder.decodePrefix(bytes, from: offset)
            } catch {
                throw WebAuthnError(.malformedCBOR, "credential public key: \(error)")
            }
            let keyBytes = Array(bytes[offset..<keyEnd])
            offset = keyEnd
            attestedCredential = AttestedCredential(aaguid: aaguid, credentialID: credentialID,
                                                    publicKeyBytes: keyBytes, publicKey: try COSEPublicKey(cbor: keyValue))
        } else {
            attestedCredential = nil
        }
        if flags.contains(.extensionData) {
            let value: CBORValue
            let end: Int
            do {
                (value, end) = try decoder.decodePrefix(bytes, from: offset)
            } catch {
                throw WebAuthnError(.malformedCBOR, "extensions: \(error)")
            }
            guard value.mapValue != nil else { throw WebAuthnError(.malformedAuthenticatorData, "extensions are not a map") }
            extensions = value
            offset = end
        } else {
            extensions = nil
        }
        guard offset == bytes.count else {
            throw WebAuthnError(.malformedAuthenticatorData, "\(bytes.count - offset) unexpected trailing bytes")
        }
    }
}
