import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Tells, without a system call, whether any connection of any process has
/// committed to a SQLite database in WAL mode since a previous look.
///
/// It reads the wal-index header at the start of the database's `-shm` file,
/// which every connection shares through a memory map (SQLite's documented
/// format, <https://www.sqlite.org/walformat.html> §2.1): two 48-byte copies of
/// `WalIndexHdr` (`iChange`, incremented by every transaction, `mxFrame`, the
/// salts and checksums, …). Every commit rewrites the header — second copy
/// first, then the first — so equal copies that differ from an earlier look mean
/// something was committed, and an unchanged header means nothing was. A torn
/// or uninitialised header reads as "unknown" and the caller reads the database.
///
/// Written by hand because no SQLite wrapper exposes this: GRDB's reads go
/// through a dispatch queue and the file locks of a read transaction, which made
/// the per-request check of the access counter cost more than proxying the request.
final class WALCommitWatch: Sendable {
    /// The header as one value: equal values mean no commit in between.
    struct Header: Equatable, Sendable {
        var w0: UInt64 = 0, w1: UInt64 = 0, w2: UInt64 = 0, w3: UInt64 = 0, w4: UInt64 = 0, w5: UInt64 = 0

        init(at p: UnsafeRawPointer) {
            w0 = p.loadUnaligned(fromByteOffset: 0, as: UInt64.self); w1 = p.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
            w2 = p.loadUnaligned(fromByteOffset: 16, as: UInt64.self); w3 = p.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
            w4 = p.loadUnaligned(fromByteOffset: 32, as: UInt64.self); w5 = p.loadUnaligned(fromByteOffset: 40, as: UInt64.self)
        }
    }

    static let headerBytes = 48
    /// The two header copies plus the checkpoint information that follows them.
    static let mappedBytes = 136

    private let base: UInt   // address of the read-only mapping (0 when none), kept as an integer to be Sendable
    private let closed = Atomic<Bool>(false)

    /// Maps `<databasePath>-shm` read-only; nil when it does not exist yet or is too short.
    init?(databasePath: String) {
        let fd = open(databasePath + "-shm", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, Int(info.st_size) >= Self.mappedBytes else { return nil }
        guard let address = mmap(nil, Self.mappedBytes, PROT_READ, MAP_SHARED, fd, 0), address != MAP_FAILED else { return nil }
        base = UInt(bitPattern: address)
    }

    deinit {
        if base != 0, let pointer = UnsafeMutableRawPointer(bitPattern: base) { munmap(pointer, Self.mappedBytes) }
    }

    /// Stops reading the mapping: call before the database's connections close (the last
    /// connection to close may shrink the file, and reading past its end would fault).
    func invalidate() { closed.store(true, ordering: .sequentiallyConsistent) }

    /// The current header when both copies agree and it is initialised; nil otherwise.
    func header() -> Header? {
        guard !closed.load(ordering: .sequentiallyConsistent), let p = UnsafeRawPointer(bitPattern: base) else { return nil }
        // First copy, then second: a writer updates the second first, so a header read in the
        // middle of a commit differs between the copies.
        let first = Header(at: p)
        atomicFence()
        let second = Header(at: p + Self.headerBytes)
        // isInit is the byte at offset 12.
        guard first == second, p.load(fromByteOffset: 12, as: UInt8.self) == 1 else { return nil }
        return first
    }

    /// Keeps the two copies' loads in program order (the compiler may not move them across it).
    @inline(never)
    private func atomicFence() {
        let fence = Atomic<Int>(0)
        _ = fence.load(ordering: .sequentiallyConsistent)
    }
}
