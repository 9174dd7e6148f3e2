import Crypto
import Foundation
import MenshenCore

/// The hash chain over the event log: each record's hash is SHA-256 over the
/// previous hash and a canonical, length-prefixed encoding of the event's
/// stored fields, so any edit, deletion, insertion or reordering breaks the
/// chain from that record on. (The audit pipeline adds signed checkpoints.)
public enum EventChain {
    /// The hasher every writer passes to ``EventStore/appendEvents(_:hasher:)``.
    public static let hasher: EventChainHasher = { previous, event in hash(previous: previous, event: event) }

    /// SHA-256 over `len:bytes` fields, fed to the hasher in place: the payload (the bulk of an event) is
    /// never copied, and the small fields are formatted without Foundation (every event is hashed when
    /// written and again whenever the chain is checked).
    public static func hash(previous: String, event: NewEvent) -> String {
        var sha = SHA256()
        func field(_ s: String) {
            var s = s
            s.withUTF8 { u in
                lengthPrefix(u.count, into: &sha)
                sha.update(bufferPointer: UnsafeRawBufferPointer(u))
            }
        }
        field("menshen-event-v1")
        field(previous)
        field(UUIDText.upper(event.id))
        field(String(StoreCoding.millis(event.time)))
        field(String(event.classUID))
        field(String(event.severityID))
        field(event.userID?.rawValue ?? "")
        field(event.payloadJSON)
        return SecretHash.hex(sha.finalize())
    }

    /// `"<count>:"` in ASCII decimal.
    private static func lengthPrefix(_ count: Int, into sha: inout SHA256) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { buf in
            var n = UInt64(count), i = buf.count - 1
            buf[i] = UInt8(ascii: ":")
            repeat {
                i -= 1
                buf[i] = UInt8(ascii: "0") + UInt8(n % 10)
                n /= 10
            } while n > 0
            sha.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buf[i...]))
        }
    }

    /// Checks a contiguous run of records; returns the sequence of the first
    /// broken link, or nil when every link holds.
    public static func firstBrokenLink(_ records: [StoredEvent], expectedPrevious: String = genesisEventHash) -> Int64? {
        var previous = expectedPrevious
        var expectedSequence = records.first?.sequence ?? 1
        for r in records {
            if r.sequence != expectedSequence || r.previousHash != previous || hash(previous: previous, event: r.event) != r.hash {
                return r.sequence
            }
            previous = r.hash
            expectedSequence += 1
        }
        return nil
    }
}
