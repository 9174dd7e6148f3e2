/// RFC 4648 §6 base32 (alphabet A–Z 2–7), written without padding as
/// `otpauth://` URIs expect. Decoding accepts lower case, optional padding
/// and spaces (users retype secrets), and refuses anything else.
public enum Base32 {
    private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                bits -= 5
                out.append(alphabet[Int((buffer >> UInt32(bits)) & 0x1F)])
            }
            buffer &= (1 << UInt32(bits)) - 1
        }
        if bits > 0 {
            out.append(alphabet[Int((buffer << UInt32(5 - bits)) & 0x1F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Returns nil for characters outside the alphabet, for a length no
    /// encoder produces, or for non-zero trailing bits (non-canonical).
    public static func decode(_ text: String) -> [UInt8]? {
        var values: [UInt8] = []
        var paddingSeen = false
        for byte in text.utf8 {
            switch byte {
            case 0x20, 0x2D: continue  // space, hyphen: grouping only
            case 0x3D: paddingSeen = true; continue
            default: break
            }
            if paddingSeen { return nil }  // data after '='
            let value: UInt8
            switch byte {
            case 0x41...0x5A: value = byte - 0x41
            case 0x61...0x7A: value = byte - 0x61
            case 0x32...0x37: value = byte - 0x32 + 26
            default: return nil
            }
            values.append(value)
        }
        // Valid unpadded lengths mod 8: 0, 2, 4, 5, 7.
        switch values.count % 8 {
        case 1, 3, 6: return nil
        default: break
        }
        var out: [UInt8] = []
        out.reserveCapacity(values.count * 5 / 8)
        var buffer: UInt32 = 0
        var bits = 0
        for value in values {
            buffer = (buffer << 5) | UInt32(value)
            bits += 5
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((buffer >> UInt32(bits)) & 0xFF))
                buffer &= (1 << UInt32(bits)) - 1
            }
        }
        if buffer != 0 { return nil }
        return out
    }
}
