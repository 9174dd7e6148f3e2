import Foundation
import MenshenCedar

/// Shared plumbing of the `menshen policy` verbs: bounded file reading, error lines
/// in `FILE:LINE:COL: message` form, JSON output and line-by-line input.
enum PolicyIO {
    /// The largest policy, schema, entity, context or request file accepted (16 MiB,
    /// the engine's own input limit).
    static let maxInputBytes = MenshenCedar.Limits.maxInputBytes
    /// The largest single line accepted by `authorize --batch`.
    static let maxBatchLineBytes = MenshenCedar.Limits.maxInputBytes

    /// Reads a UTF-8 text file (or standard input for `-`) of at most `maxInputBytes`.
    static func readText(_ path: String, what: String) throws(PolicyCLIError) -> String {
        let data: Data
        if path == "-" {
            data = readAll(FileHandle.standardInput, limit: maxInputBytes + 1)
        } else {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
                throw PolicyCLIError("\(path): \(what) file not found")
            }
            guard !isDir.boolValue else { throw PolicyCLIError("\(path): is a directory, expected a \(what) file") }
            if let attrs = try? FileManager.default.attributesOfItem(atPath: path),
               let size = attrs[.size] as? NSNumber, size.intValue > maxInputBytes {
                throw PolicyCLIError("\(path): \(what) file is larger than the limit of \(maxInputBytes) bytes")
            }
            guard let h = FileHandle(forReadingAtPath: path) else { throw PolicyCLIError("\(path): cannot read \(what) file") }
            defer { try? h.close() }
            data = readAll(h, limit: maxInputBytes + 1)
        }
        guard data.count <= maxInputBytes else {
            throw PolicyCLIError("\(path): \(what) input is larger than the limit of \(maxInputBytes) bytes")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw PolicyCLIError("\(path): \(what) file is not valid UTF-8") }
        return text
    }

    /// Reads until end of file or until `limit` bytes.
    static func readAll(_ h: FileHandle, limit: Int) -> Data {
        var out = Data()
        while out.count < limit {
            let chunk = h.readData(ofLength: min(1 << 16, limit - out.count))
            if chunk.isEmpty { break }
            out.append(chunk)
        }
        return out
    }

    /// `FILE:LINE:COL: message` (or `FILE: message` without a location).
    static func located(_ file: String, _ e: CedarError) -> String {
        if let l = e.location { return "\(file):\(l.line):\(l.column): \(e.message)" }
        return "\(file): \(e.message)"
    }

    static func parsePolicies(_ text: String, file: String) throws(PolicyCLIError) -> PolicySet {
        do { return try CedarParser.parsePolicySet(text) } catch { throw PolicyCLIError(located(file, error)) }
    }

    static func parseSchema(_ text: String, format: String, file: String) throws(PolicyCLIError) -> Schema {
        guard format == "cedar" || format == "json" else {
            throw PolicyCLIError("unknown schema format `\(format)` (expected cedar or json)")
        }
        do { return try CedarSchemaServices().parseSchema(text, format: format) } catch { throw PolicyCLIError(located(file, error)) }
    }

    /// Schema format from an explicit option or the file name (`.json` means JSON).
    static func schemaFormat(_ explicit: String?, path: String) -> String {
        if let explicit { return explicit }
        return path.hasSuffix(".json") ? "json" : "cedar"
    }

    static func parseUID(_ text: String, role: String) throws(PolicyCLIError) -> EntityUID {
        do { return try CedarParser.parseEntityUID(text) } catch {
            throw PolicyCLIError("--\(role) \(text): \(error.message) (expected an entity uid such as User::\"alice\")")
        }
    }

    // MARK: JSON output

    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
}

/// A command-line error: printed as `menshen: error: <message>`, exit status 1.
struct PolicyCLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Prints `menshen: error: …` lines on standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data("menshen: error: \(message)\n".utf8))
}

/// Reads lines (split on `\n`) from a file handle in bounded chunks. A line longer than
/// `maxLine` is reported as `.tooLong` (and skipped) instead of being buffered.
struct LineReader {
    enum Line { case text(String), tooLong, invalidUTF8 }
    private let handle: FileHandle
    private let maxLine: Int
    private var buffer: [UInt8] = []
    private var start = 0
    private var eof = false
    private var discarding = false

    init(_ handle: FileHandle, maxLine: Int) { self.handle = handle; self.maxLine = maxLine }

    mutating func next() -> Line? {
        while true {
            if let nl = buffer[start...].firstIndex(of: UInt8(ascii: "\n")) {
                let bytes = buffer[start..<nl]
                start = nl + 1
                compact()
                if discarding { discarding = false; return .tooLong }
                return decode(bytes)
            }
            if buffer.count - start > maxLine { discarding = true; buffer.removeAll(keepingCapacity: true); start = 0 }
            if eof {
                guard start < buffer.count || discarding else { return nil }
                let bytes = buffer[start...]
                buffer.removeAll(); start = 0
                if discarding { discarding = false; return .tooLong }
                return decode(bytes)
            }
            let chunk = handle.readData(ofLength: 1 << 16)
            if chunk.isEmpty { eof = true } else { buffer.append(contentsOf: chunk) }
        }
    }

    private mutating func compact() {
        if start > (1 << 16) && start * 2 > buffer.count { buffer.removeFirst(start); start = 0 }
    }

    private func decode(_ bytes: ArraySlice<UInt8>) -> Line {
        guard let s = String(validating: bytes, as: UTF8.self) else { return .invalidUTF8 }
        return .text(s.hasSuffix("\r") ? String(s.dropLast()) : s)
    }
}
