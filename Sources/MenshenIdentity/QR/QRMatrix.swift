/// The module grid while a symbol is being built: dark modules plus a mask of
/// function modules (finders, timing, alignment, format/version areas) that
/// data placement and masking must skip.
struct QRMatrix {
    let version: Int
    let size: Int
    var dark: [Bool]
    var isFunction: [Bool]

    init(version: Int) {
        self.version = version
        self.size = 17 + 4 * version
        self.dark = Array(repeating: false, count: size * size)
        self.isFunction = Array(repeating: false, count: size * size)
    }

    private mutating func setFunction(_ x: Int, _ y: Int, _ value: Bool) {
        guard x >= 0, y >= 0, x < size, y < size else { return }
        dark[y * size + x] = value
        isFunction[y * size + x] = true
    }

    mutating func drawFunctionPatterns() {
        // Timing patterns on row 6 and column 6.
        for index in 0..<size {
            setFunction(6, index, index % 2 == 0)
            setFunction(index, 6, index % 2 == 0)
        }
        // Finder patterns with their separators.
        for (cx, cy) in [(3, 3), (size - 4, 3), (3, size - 4)] {
            for dy in -4...4 {
                for dx in -4...4 {
                    let ring = max(abs(dx), abs(dy))
                    setFunction(cx + dx, cy + dy, ring != 2 && ring != 4)
                }
            }
        }
        // Alignment patterns, except where they would overlap a finder.
        let centers = QRTables.alignmentCenters(version: version)
        let last = centers.count - 1
        for (i, cy) in centers.enumerated() {
            for (j, cx) in centers.enumerated() {
                if (i == 0 && j == 0) || (i == 0 && j == last) || (i == last && j == 0) { continue }
                for dy in -2...2 {
                    for dx in -2...2 {
                        setFunction(cx + dx, cy + dy, max(abs(dx), abs(dy)) != 1)
                    }
                }
            }
        }
        // Reserve the format areas (written after masking) and the dark module.
        drawFormatBits(mask: 0)
        drawVersionBits()
    }

    /// 15 format bits: EC level M (00) and the mask, BCH(15,5), XOR 0x5412.
    mutating func drawFormatBits(mask: Int) {
        let data = UInt32(0b00 << 3 | mask)
        var remainder = data
        for _ in 0..<10 { remainder = (remainder << 1) ^ ((remainder >> 9) * 0x537) }
        let bits = ((data << 10) | remainder) ^ 0x5412
        func bit(_ index: Int) -> Bool { (bits >> UInt32(index)) & 1 == 1 }
        // First copy, around the top-left finder.
        for index in 0...5 { setFunction(8, index, bit(index)) }
        setFunction(8, 7, bit(6))
        setFunction(8, 8, bit(7))
        setFunction(7, 8, bit(8))
        for index in 9..<15 { setFunction(14 - index, 8, bit(index)) }
        // Second copy, split between the top-right and bottom-left finders.
        for index in 0..<8 { setFunction(size - 1 - index, 8, bit(index)) }
        for index in 8..<15 { setFunction(8, size - 15 + index, bit(index)) }
        setFunction(8, size - 8, true)  // the dark module
    }

    /// 18 version bits for versions ≥ 7: BCH(18,6) with generator 0x1F25.
    mutating func drawVersionBits() {
        guard version >= 7 else { return }
        var remainder = UInt32(version)
        for _ in 0..<12 { remainder = (remainder << 1) ^ ((remainder >> 11) * 0x1F25) }
        let bits = UInt32(version) << 12 | remainder
        for index in 0..<18 {
            let value = (bits >> UInt32(index)) & 1 == 1
            let a = size - 11 + index % 3
            let b = index / 3
            setFunction(a, b, value)
            setFunction(b, a, value)
        }
    }

    /// Places codeword bits in the two-column zigzag from the bottom-right,
    /// skipping the vertical timing column. Leftover modules (remainder bits) stay light.
    mutating func drawCodewords(_ codewords: [UInt8]) {
        let totalBits = codewords.count * 8
        var bitIndex = 0
        var right = size - 1
        while right >= 1 {
            if right == 6 { right = 5 }
            for vertical in 0..<size {
                for column in 0..<2 {
                    let x = right - column
                    let upward = ((right + 1) & 2) == 0
                    let y = upward ? size - 1 - vertical : vertical
                    let index = y * size + x
                    if !isFunction[index] && bitIndex < totalBits {
                        let byte = codewords[bitIndex >> 3]
                        dark[index] = (byte >> UInt8(7 - (bitIndex & 7))) & 1 == 1
                        bitIndex += 1
                    }
                }
            }
            right -= 2
        }
    }

    static func maskCondition(_ mask: Int, x: Int, y: Int) -> Bool {
        switch mask {
        case 0: return (x + y) % 2 == 0
        case 1: return y % 2 == 0
        case 2: return x % 3 == 0
        case 3: return (x + y) % 3 == 0
        case 4: return (y / 2 + x / 3) % 2 == 0
        case 5: return (x * y) % 2 + (x * y) % 3 == 0
        case 6: return ((x * y) % 2 + (x * y) % 3) % 2 == 0
        default: return ((x + y) % 2 + (x * y) % 3) % 2 == 0
        }
    }

    mutating func applyMask(_ mask: Int) {
        for y in 0..<size {
            for x in 0..<size where !isFunction[y * size + x] && Self.maskCondition(mask, x: x, y: y) {
                dark[y * size + x].toggle()
            }
        }
    }

    /// ISO/IEC 18004 §7.8.3 penalty: N1 runs, N2 2×2 blocks, N3 finder-like
    /// patterns, N4 dark/light balance.
    func penalty() -> Int {
        var score = 0
        func module(_ x: Int, _ y: Int) -> Bool { dark[y * size + x] }
        for horizontal in [true, false] {
            for line in 0..<size {
                var runColor = false
                var runLength = 0
                var sequence: [Bool] = []
                sequence.reserveCapacity(size)
                for position in 0..<size {
                    let value = horizontal ? module(position, line) : module(line, position)
                    sequence.append(value)
                    if position > 0 && value == runColor {
                        runLength += 1
                    } else {
                        if runLength >= 5 { score += 3 + runLength - 5 }
                        runColor = value
                        runLength = 1
                    }
                }
                if runLength >= 5 { score += 3 + runLength - 5 }
                score += 40 * Self.finderLikeCount(sequence)
            }
        }
        for y in 0..<(size - 1) {
            for x in 0..<(size - 1) {
                let value = module(x, y)
                if value == module(x + 1, y) && value == module(x, y + 1) && value == module(x + 1, y + 1) { score += 3 }
            }
        }
        let darkCount = dark.reduce(0) { $0 + ($1 ? 1 : 0) }
        let percent = darkCount * 100 / dark.count
        score += 10 * (abs(percent - 50) / 5)
        return score
    }

    /// Occurrences of 1:1:3:1:1 (dark-light-dark×3-light-dark) with four light
    /// modules on either side; outside the symbol counts as light.
    static func finderLikeCount(_ line: [Bool]) -> Int {
        let core: [Bool] = [true, false, true, true, true, false, true]
        let light = [Bool](repeating: false, count: 4)
        let patterns = [light + core, core + light]
        var count = 0
        for pattern in patterns {
            for start in -4...(line.count - pattern.count + 4) {
                var matches = true
                for (offset, expected) in pattern.enumerated() {
                    let position = start + offset
                    let actual = position >= 0 && position < line.count ? line[position] : false
                    if actual != expected { matches = false; break }
                }
                if matches { count += 1 }
            }
        }
        return count
    }
}
