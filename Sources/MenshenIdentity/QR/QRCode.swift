/// A QR code (ISO/IEC 18004) in byte mode with error-correction level M,
/// versions 1–20 (up to 666 bytes: an `otpauth://` URI with a 32-character
/// secret and a long percent-encoded Chinese issuer fits comfortably).
///
/// The smallest version that holds the payload is chosen, all eight masks are
/// tried and the one with the lowest penalty (ISO/IEC 18004 §7.8.3) is kept.
public struct QRCode: Sendable, Hashable {
    /// 1…20.
    public let version: Int
    /// The mask pattern chosen, 0…7.
    public let mask: Int
    /// Modules per side (17 + 4 × version), without quiet zone.
    public let size: Int
    /// Row-major modules; `true` is dark.
    public let modules: [Bool]

    /// `true` when the module at column `x`, row `y` is dark; false outside.
    public func isDark(x: Int, y: Int) -> Bool {
        guard x >= 0, y >= 0, x < size, y < size else { return false }
        return modules[y * size + x]
    }

    /// Encodes `text` as UTF-8 bytes.
    public init(text: String) throws(QRError) {
        try self.init(bytes: Array(text.utf8))
    }

    public init(bytes: [UInt8]) throws(QRError) {
        guard let version = QRTables.smallestVersion(forByteCount: bytes.count) else {
            throw QRError(.dataTooLong, "\(bytes.count) bytes; the maximum is \(QRTables.byteCapacity(version: QRTables.maxVersion))")
        }
        let codewords = QRCode.codewords(for: bytes, version: version)
        var best: QRMatrix?
        var bestPenalty = Int.max
        var bestMask = 0
        for mask in 0..<8 {
            var matrix = QRMatrix(version: version)
            matrix.drawFunctionPatterns()
            matrix.drawCodewords(codewords)
            matrix.applyMask(mask)
            matrix.drawFormatBits(mask: mask)
            let penalty = matrix.penalty()
            if penalty < bestPenalty {
                bestPenalty = penalty
                best = matrix
                bestMask = mask
            }
        }
        // Invariant: eight candidates were evaluated, so `best` is set.
        let chosen = best ?? QRMatrix(version: version)
        self.version = version
        self.mask = bestMask
        self.size = chosen.size
        self.modules = chosen.dark
    }

    /// Data codewords (mode, count, payload, terminator, padding), split into
    /// blocks, each followed by its Reed–Solomon codewords, then interleaved.
    static func codewords(for bytes: [UInt8], version: Int) -> [UInt8] {
        let layout = QRTables.layoutM(version: version)
        var bits = BitBuffer()
        bits.append(0b0100, count: 4)
        bits.append(UInt32(bytes.count), count: version <= 9 ? 8 : 16)
        for byte in bytes { bits.append(UInt32(byte), count: 8) }
        let capacityBits = layout.dataCodewords * 8
        bits.append(0, count: min(4, capacityBits - bits.count))
        bits.append(0, count: (8 - bits.count % 8) % 8)
        var data = bits.bytes
        var pad: UInt8 = 0xEC
        while data.count < layout.dataCodewords {
            data.append(pad)
            pad = pad == 0xEC ? 0x11 : 0xEC
        }
        var blocks: [[UInt8]] = []
        var start = 0
        for length in layout.blockLengths {
            blocks.append(Array(data[start..<(start + length)]))
            start += length
        }
        let generator = ReedSolomon.generator(degree: layout.ecPerBlock)
        let ecBlocks = blocks.map { ReedSolomon.remainder($0, generator: generator) }
        var out: [UInt8] = []
        let longest = blocks.map(\.count).max() ?? 0
        for index in 0..<longest {
            for block in blocks where index < block.count { out.append(block[index]) }
        }
        for index in 0..<layout.ecPerBlock {
            for block in ecBlocks { out.append(block[index]) }
        }
        return out
    }
}

struct BitBuffer {
    private(set) var bits: [Bool] = []
    var count: Int { bits.count }
    mutating func append(_ value: UInt32, count: Int) {
        guard count > 0 else { return }
        for shift in stride(from: count - 1, through: 0, by: -1) {
            bits.append((value >> UInt32(shift)) & 1 == 1)
        }
    }
    var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: (bits.count + 7) / 8)
        for (index, bit) in bits.enumerated() where bit {
            out[index / 8] |= 0x80 >> UInt8(index % 8)
        }
        return out
    }
}

/// Reed–Solomon over GF(2^8) with the QR polynomial x^8+x^4+x^3+x^2+1 (0x11D).
enum ReedSolomon {
    static func multiply(_ a: UInt8, _ b: UInt8) -> UInt8 {
        var result: UInt8 = 0
        var x = a
        var y = b
        while y != 0 {
            if y & 1 == 1 { result ^= x }
            let carry = x & 0x80 != 0
            x <<= 1
            if carry { x ^= 0x1D }
            y >>= 1
        }
        return result
    }

    /// Coefficients of ∏(x − α^i), i = 0..<degree, highest power first, leading 1 omitted.
    static func generator(degree: Int) -> [UInt8] {
        var poly = [UInt8](repeating: 0, count: degree)
        guard degree > 0 else { return poly }
        poly[degree - 1] = 1
        var root: UInt8 = 1
        for _ in 0..<degree {
            for index in 0..<degree {
                poly[index] = multiply(poly[index], root)
                if index + 1 < degree { poly[index] ^= poly[index + 1] }
            }
            root = multiply(root, 2)
        }
        return poly
    }

    static func remainder(_ data: [UInt8], generator: [UInt8]) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: generator.count)
        guard !generator.isEmpty else { return result }
        for byte in data {
            let factor = byte ^ result[0]
            result.removeFirst()
            result.append(0)
            for index in 0..<generator.count {
                result[index] ^= multiply(generator[index], factor)
            }
        }
        return result
    }
}

enum QRTables {
    static let maxVersion = 20

    struct Layout {
        var ecPerBlock: Int
        /// Data codewords of each block, group 1 then group 2.
        var blockLengths: [Int]
        var dataCodewords: Int { blockLengths.reduce(0, +) }
    }

    /// ISO/IEC 18004 Table 9, level M: (EC codewords per block, group-1 blocks,
    /// data per group-1 block, group-2 blocks). Group-2 blocks hold one more.
    private static let levelM: [(ec: Int, blocks1: Int, data1: Int, blocks2: Int)] = [
        (10, 1, 16, 0), (16, 1, 28, 0), (26, 1, 44, 0), (18, 2, 32, 0), (24, 2, 43, 0),
        (16, 4, 27, 0), (18, 4, 31, 0), (22, 2, 38, 2), (22, 3, 36, 2), (26, 4, 43, 1),
        (30, 1, 50, 4), (22, 6, 36, 2), (22, 8, 37, 1), (24, 4, 40, 5), (24, 5, 41, 5),
        (28, 7, 45, 3), (28, 10, 46, 1), (26, 9, 43, 4), (26, 3, 44, 11), (26, 3, 41, 13),
    ]

    static func layoutM(version: Int) -> Layout {
        let entry = levelM[max(1, min(version, maxVersion)) - 1]
        let lengths = Array(repeating: entry.data1, count: entry.blocks1) + Array(repeating: entry.data1 + 1, count: entry.blocks2)
        return Layout(ecPerBlock: entry.ec, blockLengths: lengths)
    }

    static func byteCapacity(version: Int) -> Int {
        let headerBits = 4 + (version <= 9 ? 8 : 16)
        return (layoutM(version: version).dataCodewords * 8 - headerBits) / 8
    }

    static func smallestVersion(forByteCount count: Int) -> Int? {
        (1...maxVersion).first { byteCapacity(version: $0) >= count }
    }

    /// Alignment pattern centre coordinates (ISO/IEC 18004 Annex E).
    static func alignmentCenters(version: Int) -> [Int] {
        switch version {
        case 1: return []
        case 2...6: return [6, 10 + 4 * version]
        case 7: return [6, 22, 38]
        case 8: return [6, 24, 42]
        case 9: return [6, 26, 46]
        case 10: return [6, 28, 50]
        case 11: return [6, 30, 54]
        case 12: return [6, 32, 58]
        case 13: return [6, 34, 62]
        case 14: return [6, 26, 46, 66]
        case 15: return [6, 26, 48, 70]
        case 16: return [6, 26, 50, 74]
        case 17: return [6, 30, 54, 78]
        case 18: return [6, 30, 56, 82]
        case 19: return [6, 30, 58, 86]
        default: return [6, 34, 62, 90]
        }
    }
}
