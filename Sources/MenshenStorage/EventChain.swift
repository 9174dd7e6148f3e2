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

    /// SHA-256 over `len:bytes` fields. Every field but the payload is laid out in one small buffer on the stack
    /// and the hasher is fed twice (that buffer, then the payload in place): the payload, the bulk of an event, is
    /// never copied, and the small fields are formatted without Foundation or intermediate strings (every event
    /// is hashed when written and again whenever the chain is checked).
    public static func hash(previous: String, event: NewEvent) -> String {
        var sha = SHA256()
        var previous = previous
        var user = event.userID?.rawValue ?? ""
        var payload = event.payloadJSON
        previous.withUTF8 { prev in
            user.withUTF8 { userBytes in
                // Fixed fields at most: tag 19, UUID 39, three numbers 3 × 24; previous and user with their prefixes.
                let capacity = 19 + 39 + 3 * 24 + (prev.count + 21) + (userBytes.count + 21) + 21
                withUnsafeTemporaryAllocation(of: UInt8.self, capacity: capacity) { buf in
                    var n = 0
                    func put(_ bytes: UnsafeBufferPointer<UInt8>) {
                        n = decimal(bytes.count, into: buf, at: n)
                        buf[n] = UInt8(ascii: ":"); n += 1
                        for b in bytes { buf[n] = b; n += 1 }
                    }
                    func putNumber(_ value: Int64) {
                        // The number's decimal text, then its length in front of it.
                        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 21) { digits in
                            let end = decimal(value, into: digits, at: 0)
                            put(UnsafeBufferPointer(rebasing: digits[0..<end]))
                        }
                    }
                    tag.withUnsafeBufferPointer { put($0) }
                    put(prev)
                    UUIDText.withUpperBytes(event.id) { put($0) }
                    putNumber(StoreCoding.millis(event.time))
                    putNumber(Int64(event.classUID))
                    putNumber(Int64(event.severityID))
                    put(userBytes)
                    sha.update(bufferPointer: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: buf[0..<n])))
                }
            }
        }
        payload.withUTF8 { u in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 21) { prefix in
                var n = decimal(u.count, into: prefix, at: 0)
                prefix[n] = UInt8(ascii: ":"); n += 1
                sha.update(bufferPointer: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: prefix[0..<n])))
            }
            sha.update(bufferPointer: UnsafeRawBufferPointer(u))
        }
        return SecretHash.hex(sha.finalize())
    }

    private static let tag: [UInt8] = Array("menshen-event-v1".utf8)

    /// Writes `value` in ASCII decimal (a leading `-` when negative) at `at`; returns the index after it.
    static func decimal<I: BinaryInteger>(_ value: I, into buf: UnsafeMutableBufferPointer<UInt8>, at: Int) -> Int {
        at + ASCIIDecimal.write(Int64(value), to: buf.baseAddress! + at)
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

/// Integers as ASCII decimal, written in place (what `String(value)` gives, without the `String`): for the chain hash
/// and the event text, which format several numbers per event.
enum ASCIIDecimal {
    /// Writes `value` at `out` (room for 20 bytes needed); returns the number of bytes written.
    static func write(_ value: Int64, to out: UnsafeMutablePointer<UInt8>) -> Int {
        var magnitude = value.magnitude
        var i = 0
        if value < 0 { out[0] = UInt8(ascii: "-"); i = 1 }
        let first = i
        repeat {
            out[i] = UInt8(ascii: "0") + UInt8(magnitude % 10)
            magnitude /= 10
            i += 1
        } while magnitude > 0
        // Written least significant first: reverse in place.
        var lo = first, hi = i - 1
        while lo < hi { let t = out[lo]; out[lo] = out[hi]; out[hi] = t; lo += 1; hi -= 1 }
        return i
    }
}
