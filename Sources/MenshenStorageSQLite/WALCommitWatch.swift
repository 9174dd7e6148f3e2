import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Tells, with one `pread`, whether any connection of any process has
/// committed to a SQLite database in WAL mode since a previous look.
///
/// It reads the wal-index header at the start of the database's `-shm` file,
/// which every connection shares (SQLite's documented format,
/// <https://www.sqlite.org/walformat.html> §2.1): two 48-byte copies of
/// `WalIndexHdr` (`iChange`, incremented by every transaction, `mxFrame`, the
/// salts and checksums, …). Every commit rewrites the header — second copy
/// first, then the first — so equal copies that differ from an earlier look mean
/// something was committed, and an unchanged header means nothing was. A torn
/// or uninitialised header reads as "unknown" and the caller reads the database.
///
/// The file is read with `pread`, not mapped: a mapping faults (SIGBUS) if the
/// file ever shrinks. And the descriptor stays open until the store's
/// connections are closed, because closing *any* descriptor of a file drops all
/// of the process's POSIX locks on it — SQLite's own locks on the `-shm` file
/// included — after which another process may reinitialise the file under
/// SQLite's feet (this was seen: a bus error inside SQLite once the command line
/// opened the database).
///
/// Written by hand because no SQLite wrapper exposes this: GRDB's reads go
/// through a dispatch queue and the file locks of a read transaction, which made
/// the per-request check of the access counter cost more than proxying the request.
final class WALCommitWatch: Sendable {
    /// The header as one value: equal values mean no commit in between.
    struct Header: Equatable, Sendable {
        var w0: UInt64 = 0, w1: UInt64 = 0, w2: UInt64 = 0, w3: UInt64 = 0, w4: UInt64 = 0, w5: UInt64 = 0

        /// `iChange` (bytes 8–11, native order): incremented by every commit.
        var commitCounter: UInt32 {
            #if _endian(little)
            UInt32(truncatingIfNeeded: w1)
            #else
            UInt32(truncatingIfNeeded: w1 >> 32)
            #endif
        }

        init(at p: UnsafeRawPointer) {
            w0 = p.loadUnaligned(fromByteOffset: 0, as: UInt64.self); w1 = p.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
            w2 = p.loadUnaligned(fromByteOffset: 16, as: UInt64.self); w3 = p.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
            w4 = p.loadUnaligned(fromByteOffset: 32, as: UInt64.self); w5 = p.loadUnaligned(fromByteOffset: 40, as: UInt64.self)
        }
    }

    static let headerBytes = 48

    /// The open `-shm` descriptor, or -1 once closed.
    private let descriptor: Mutex<Int32>

    /// Opens `<databasePath>-shm` read-only; nil when it does not exist yet or is too short to hold the header.
    init?(databasePath: String) {
        let fd = open(databasePath + "-shm", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        var info = stat()
        guard fstat(fd, &info) == 0, Int(info.st_size) >= 2 * Self.headerBytes else {
            // Nothing of SQLite's can be locked on a file this short (it is not a live wal-index),
            // so closing this descriptor drops no lock that matters.
            close(fd)
            return nil
        }
        descriptor = Mutex(fd)
    }

    /// Closes the descriptor. Call only after every connection to the database is closed
    /// (see the type's documentation); `header()` answers nil from then on.
    func closeFile() {
        descriptor.withLock { fd in
            if fd >= 0 { close(fd); fd = -1 }
        }
    }

    deinit { closeFile() }

    /// The current header when both copies agree and it is initialised; nil otherwise.
    func header() -> Header? {
        withUnsafeTemporaryAllocation(byteCount: 2 * Self.headerBytes, alignment: 8) { buffer -> Header? in
            guard let base = buffer.baseAddress else { return nil }
            let read = descriptor.withLock { fd in fd >= 0 ? pread(fd, base, 2 * Self.headerBytes, 0) : -1 }
            guard read == 2 * Self.headerBytes else { return nil }
            let p = UnsafeRawPointer(base)
            let first = Header(at: p), second = Header(at: p + Self.headerBytes)
            // isInit is the byte at offset 12. A header read while a commit rewrites it differs between the copies.
            guard first == second, p.load(fromByteOffset: 12, as: UInt8.self) == 1 else { return nil }
            return first
        }
    }
}
