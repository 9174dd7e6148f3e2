/// A strict, deterministic POSIX ustar (IEEE Std 1003.1 `pax` interchange
/// format, `ustar` variant) writer and reader for the evidence pack.
///
/// Written by hand because none of the packages Menshen depends on writes or
/// reads tar. It does only what the pack needs, so that an archive has exactly
/// one byte-for-byte form:
///
/// - regular files only (type flag `0`), mode 0644, uid/gid 0, empty user and
///   group names, one mtime for every entry, no extended (pax/GNU) headers;
/// - a path of at most 100 bytes goes in the name field; a longer one is split
///   at the first `/` that leaves a prefix of at most 155 bytes and a name of
///   at most 100 (the ustar prefix field);
/// - numbers are zero-padded octal, NUL-terminated, as GNU tar writes them;
/// - content is padded with zeros to 512 bytes, and the archive ends with two
///   zero blocks and nothing after them.
///
/// The reader accepts only what the writer produces: each header must equal
/// the header the writer would produce for its path, size and mtime, padding
/// must be zero, and the end must be exactly two zero blocks. It is bounded
/// (entry count, per-entry and total size) and refuses unsafe names
/// (absolute, `..`, `.`, empty components, control characters, duplicates).
/// GNU tar reads its output (the integration tests use it as the oracle).
public enum UstarArchive {
    /// One file of an archive.
    public struct Entry: Sendable, Equatable {
        public var path: String
        public var bytes: [UInt8]
        public init(path: String, bytes: [UInt8]) { self.path = path; self.bytes = bytes }
    }

    /// What the reader accepts at most.
    public struct Limits: Sendable, Equatable {
        public var maxEntries: Int
        public var maxEntryBytes: Int
        public var maxTotalBytes: Int
        public init(maxEntries: Int = 10_000, maxEntryBytes: Int = 256 << 20, maxTotalBytes: Int = 1 << 30) {
            self.maxEntries = maxEntries; self.maxEntryBytes = maxEntryBytes; self.maxTotalBytes = maxTotalBytes
        }
        public static let `default` = Limits()
    }

    static let block = 512
    /// The largest size the 11 octal digits of the size field hold.
    static let maxFieldValue = 0o77777777777

    // MARK: Writing

    /// The archive of `entries`, sorted by path (bytewise UTF-8), every entry
    /// with modification time `mtime` (seconds since 1970). Throws for an
    /// unsafe or too long path, a duplicate path or a file too large for ustar.
    public static func write(_ entries: [Entry], mtime: Int) throws -> [UInt8] {
        guard (0...maxFieldValue).contains(mtime) else { throw AssessmentError.evidencePack("archive: mtime \(mtime) out of range") }
        let sorted = entries.sorted { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
        var total = 2 * block
        for (i, e) in sorted.enumerated() {
            try validate(path: e.path)
            if i > 0, sorted[i - 1].path == e.path { throw AssessmentError.evidencePack("archive: duplicate path \(e.path)") }
            guard e.bytes.count <= maxFieldValue else { throw AssessmentError.evidencePack("archive: \(e.path) is too large for ustar") }
            total += block + padded(e.bytes.count)
        }
        var out: [UInt8] = []
        out.reserveCapacity(total)
        for e in sorted {
            out += try header(path: e.path, size: e.bytes.count, mtime: mtime)
            out += e.bytes
            out += [UInt8](repeating: 0, count: padded(e.bytes.count) - e.bytes.count)
        }
        out += [UInt8](repeating: 0, count: 2 * block)
        return out
    }

    static func padded(_ n: Int) -> Int { (n + block - 1) / block * block }

    /// The one header the writer produces for a regular file.
    static func header(path: String, size: Int, mtime: Int) throws -> [UInt8] {
        let (prefix, name) = try split(path)
        var h = [UInt8](repeating: 0, count: block)
        func put(_ bytes: [UInt8], at offset: Int) {
            // Every field fits its width (sizes and times are bounded by 11 octal digits); never write past the block.
            guard offset + bytes.count <= block else { return }
            h.withUnsafeMutableBytes { dst in
                bytes.withUnsafeBytes { src in
                    guard let d = dst.baseAddress, let s = src.baseAddress else { return }
                    (d + offset).copyMemory(from: s, byteCount: src.count)
                }
            }
        }
        func octal(_ value: Int, width: Int) -> [UInt8] {
            // `width - 1` zero-padded digits and a NUL, as GNU tar writes them (callers keep values within the digits).
            var out = [UInt8](repeating: UInt8(ascii: "0"), count: width)
            out[width - 1] = 0
            var v = value, i = width - 2
            while v > 0, i >= 0 {
                out[i] = UInt8(ascii: "0") + UInt8(v & 7)
                v >>= 3; i -= 1
            }
            return out
        }
        put(name, at: 0)
        put(octal(0o644, width: 8), at: 100)
        put(octal(0, width: 8), at: 108)
        put(octal(0, width: 8), at: 116)
        put(octal(size, width: 12), at: 124)
        put(octal(mtime, width: 12), at: 136)
        h[156] = UInt8(ascii: "0")
        put(Array("ustar".utf8) + [0], at: 257)
        put(Array("00".utf8), at: 263)
        put(octal(0, width: 8), at: 329)
        put(octal(0, width: 8), at: 337)
        put(prefix, at: 345)
        put(octal(checksum(h), width: 7) + [UInt8(ascii: " ")], at: 148)
        return h
    }

    /// The sum of a header's bytes with the checksum field (148..<156) read as eight spaces.
    static func checksum(_ header: [UInt8]) -> Int {
        guard header.count == block else { return -1 }
        return header.withUnsafeBytes { raw in
            // Every byte, eight at a time (pairwise into four 16-bit lanes, then the lanes into the top one);
            // then the checksum field's own bytes are taken out and counted as spaces.
            var sum = 0
            var offset = 0
            while offset < block {
                let word = raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
                let pairs = (word & 0x00FF_00FF_00FF_00FF) &+ ((word >> 8) & 0x00FF_00FF_00FF_00FF)
                sum += Int((pairs &* 0x0001_0001_0001_0001) >> 48)
                offset += 8
            }
            var field = 0
            for i in 148..<156 { field += Int(raw[i]) }
            return sum - field + 8 * Int(UInt8(ascii: " "))
        }
    }

    /// Name and prefix fields for `path`.
    static func split(_ path: String) throws -> (prefix: [UInt8], name: [UInt8]) {
        let bytes = Array(path.utf8)
        if bytes.count <= 100 { return ([], bytes) }
        for (i, b) in bytes.enumerated() where b == UInt8(ascii: "/") {
            if i <= 155, bytes.count - i - 1 <= 100 { return (Array(bytes[..<i]), Array(bytes[(i + 1)...])) }
        }
        throw AssessmentError.evidencePack("archive: path too long for ustar (name 100 bytes, prefix 155): \(path)")
    }

    /// Refuses a path that is not a safe relative file path.
    public static func validate(path: String) throws {
        let bytes = Array(path.utf8)
        func shown() -> String { String(decoding: bytes.prefix(120).map { $0 < 0x20 || $0 == 0x7F ? UInt8(ascii: "?") : $0 }, as: UTF8.self) }
        guard !bytes.isEmpty else { throw AssessmentError.evidencePack("archive: empty path") }
        guard bytes.count <= 256 else { throw AssessmentError.evidencePack("archive: path longer than 256 bytes") }
        guard bytes[0] != UInt8(ascii: "/") else { throw AssessmentError.evidencePack("archive: absolute path \(shown())") }
        // One pass over the bytes: refused characters, and each component's length and dots.
        var start = 0, i = 0
        while i <= bytes.count {
            if i == bytes.count || bytes[i] == UInt8(ascii: "/") {
                let length = i - start
                let dots = (start..<i).allSatisfy { bytes[$0] == UInt8(ascii: ".") }
                if length == 0 { throw AssessmentError.evidencePack("archive: empty path component in \(shown())") }
                if dots, length <= 2 { throw AssessmentError.evidencePack("archive: '\(String(repeating: ".", count: length))' in path \(shown())") }
                start = i + 1
            } else if bytes[i] < 0x20 || bytes[i] == 0x7F || bytes[i] == UInt8(ascii: "\\") {
                throw AssessmentError.evidencePack("archive: control character or backslash in path \(shown())")
            }
            i += 1
        }
    }

    // MARK: Reading

    /// The entries of `archive`, in archive order. Throws
    /// ``AssessmentError/evidencePack(_:)`` naming the entry and the check for
    /// anything the writer would not have produced, or past `limits`.
    /// Also returns the one mtime all entries share.
    public static func read(_ archive: [UInt8], limits: Limits = .default) throws -> (entries: [Entry], mtime: Int) {
        func fail(_ m: String) -> AssessmentError { .evidencePack("archive: \(m)") }
        guard archive.count % block == 0 else { throw fail("\(archive.count) bytes is not a whole number of 512-byte blocks") }
        guard archive.count >= 2 * block else { throw fail("too short for a tar archive (\(archive.count) bytes)") }
        var entries: [Entry] = []
        var seen = Set<String>()
        var mtime: Int?
        var offset = 0
        var total = 0
        while true {
            guard offset + block <= archive.count else { throw fail("ends without the two zero blocks") }
            let h = archive[offset..<(offset + block)]
            let number = entries.count + 1
            if isZero(archive, offset..<(offset + block)) {
                // The end: exactly one more zero block, then nothing.
                guard offset + 2 * block <= archive.count, isZero(archive, (offset + block)..<(offset + 2 * block))
                else { throw fail("the end-of-archive marker is not two zero blocks") }
                guard offset + 2 * block == archive.count else {
                    throw fail("\(archive.count - offset - 2 * block) bytes after the end-of-archive marker")
                }
                break
            }
            guard entries.count < limits.maxEntries else { throw fail("more than \(limits.maxEntries) entries") }
            let header = Array(h)
            // Checksum first: it tells damage from a foreign format.
            guard let stored = octalField(header[148..<154]), header[154] == 0, header[155] == UInt8(ascii: " "),
                  stored == checksum(header) else {
                throw fail("entry \(number): header checksum does not match")
            }
            guard header[257..<263].elementsEqual(Array("ustar".utf8) + [0]), header[263..<265].elementsEqual("00".utf8) else {
                throw fail("entry \(number): not a POSIX ustar header")
            }
            guard header[156] == UInt8(ascii: "0") else {
                throw fail("entry \(number): type '\(String(decoding: [header[156]], as: UTF8.self))' refused (regular files only)")
            }
            let name = cString(header[0..<100]), prefix = cString(header[345..<500])
            guard let nameText = String(validating: name, as: UTF8.self), let prefixText = String(validating: prefix, as: UTF8.self) else {
                throw fail("entry \(number): path is not UTF-8")
            }
            let path = prefix.isEmpty ? nameText : prefixText + "/" + nameText
            do { try validate(path: path) } catch AssessmentError.evidencePack(let m) {
                throw AssessmentError.evidencePack("\(m) (entry \(number))")
            }
            guard seen.insert(path).inserted else { throw fail("entry \(number): duplicate path \(path)") }
            guard let size = octalField(header[124..<135]), header[135] == 0 else { throw fail("entry \(number) (\(path)): bad size field") }
            guard let time = octalField(header[136..<147]), header[147] == 0 else { throw fail("entry \(number) (\(path)): bad mtime field") }
            guard size <= limits.maxEntryBytes else { throw fail("entry \(number) (\(path)): \(size) bytes, over the \(limits.maxEntryBytes)-byte limit") }
            total += size
            guard total <= limits.maxTotalBytes else { throw fail("entries total more than \(limits.maxTotalBytes) bytes") }
            if let m = mtime, m != time { throw fail("entry \(number) (\(path)): mtime differs from the first entry's") }
            mtime = time
            guard let canonical = try? Self.header(path: path, size: size, mtime: time), canonical == header else {
                throw fail("entry \(number) (\(path)): header is not in canonical form")
            }
            let start = offset + block, end = start + size, next = start + padded(size)
            guard next <= archive.count else { throw fail("entry \(number) (\(path)): truncated (\(size) bytes announced)") }
            guard isZero(archive, end..<next) else { throw fail("entry \(number) (\(path)): non-zero padding") }
            entries.append(Entry(path: path, bytes: Array(archive[start..<end])))
            offset = next
        }
        return (entries, mtime ?? 0)
    }

    /// Whether every byte of `bytes[range]` is zero (`range` within `bytes`).
    static func isZero(_ bytes: [UInt8], _ range: Range<Int>) -> Bool {
        bytes.withUnsafeBufferPointer { b in
            var i = range.lowerBound
            while i < range.upperBound {
                if b[i] != 0 { return false }
                i += 1
            }
            return true
        }
    }

    /// The bytes of a NUL-terminated field, up to the NUL.
    static func cString(_ field: ArraySlice<UInt8>) -> [UInt8] {
        Array(field.prefix { $0 != 0 })
    }

    /// An all-octal-digit field; nil for anything else.
    static func octalField(_ field: ArraySlice<UInt8>) -> Int? {
        guard !field.isEmpty, field.count <= 11 else { return nil }
        var value = 0
        for b in field {
            guard (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(b) else { return nil }
            value = value * 8 + Int(b - UInt8(ascii: "0"))
        }
        return value
    }
}
