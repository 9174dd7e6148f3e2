import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes a whole file so that a reader sees the old file or the complete new
/// one, never a part: a new temporary file beside the target (created with
/// O_EXCL and the given mode), every byte written, fsync, rename over the
/// target. On any failure the temporary file is removed and the target is
/// untouched. Used for the assessment report and the evidence pack.
public enum AtomicFile {
    /// Why a write failed; each caller words it for its own output.
    public enum Failure: Error, Equatable {
        case noDirectory(String)
        case cannotCreate(String)
        case writeFailed(Int32)
        case fsyncFailed(Int32)
        case renameFailed(Int32)
    }

    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t) throws(Failure) {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else { throw .noDirectory(dir) }
        let temp = (dir as NSString).appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString.lowercased()).tmp")
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL, mode)
        guard fd >= 0 else { throw .cannotCreate(dir) }
        var ok = false
        defer {
            if !ok { unlink(temp) }
        }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress.map { $0 + written }, bytes.count - written) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { let e = errno; close(fd); throw .writeFailed(e) }
            written += n
        }
        guard fsync(fd) == 0 else { let e = errno; close(fd); throw .fsyncFailed(e) }
        close(fd)
        guard rename(temp, path) == 0 else { throw .renameFailed(errno) }
        ok = true
    }
}
