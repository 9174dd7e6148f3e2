import Foundation
import MenshenCore
import MenshenVisibility
import Synchronization

/// The playbooks in force, swapped whole on reload. Built from
/// `response.playbooks_file`, or the built-in set when that is empty.
///
/// ``reloadIfChanged()`` reads the file again and installs it only when its
/// bytes changed and it loads; a file that does not load is refused with the
/// loader's message (file, playbook, field) and the running set stays.
public final class PlaybookState: Sendable {
    public enum Outcome: Sendable, Equatable {
        case unchanged
        case reloaded(playbooks: Int)
        case refused(String)
    }

    private struct Current { var set: PlaybookSet; var fingerprint: String }
    private let current: Mutex<Current>
    /// The file, or nil for the built-in set.
    public let file: String?

    /// Loads the set to start with; throws (with the precise message) when the file is missing or malformed,
    /// so the server refuses to start rather than run without the playbooks it was given.
    public init(file: String) throws {
        if file.isEmpty {
            self.file = nil
            current = Mutex(Current(set: .builtIn, fingerprint: "built-in"))
        } else {
            self.file = file
            let (set, fingerprint) = try Self.read(file)
            current = Mutex(Current(set: set, fingerprint: fingerprint))
        }
    }

    public var set: PlaybookSet { current.withLock { $0.set } }

    public func reloadIfChanged() -> Outcome {
        guard let file else { return .unchanged }
        let before = current.withLock { $0.fingerprint }
        do {
            guard let data = FileManager.default.contents(atPath: file) else { throw PlaybookFileError("\(file): cannot be read") }
            guard Self.fingerprint(data) != before else { return .unchanged }
            let (set, fingerprint) = try Self.read(file)
            current.withLock { $0 = Current(set: set, fingerprint: fingerprint) }
            return .reloaded(playbooks: set.playbooks.count)
        } catch {
            return .refused("\(error)")
        }
    }

    static func read(_ file: String) throws -> (PlaybookSet, String) {
        let attributes = try? FileManager.default.attributesOfItem(atPath: file)
        if let size = attributes?[.size] as? Int, size > PlaybookLimits.maxFileBytes {
            throw PlaybookFileError("\(file): \(size) bytes; the limit for a playbook file is \(PlaybookLimits.maxFileBytes)")
        }
        guard let data = FileManager.default.contents(atPath: file) else { throw PlaybookFileError("\(file): cannot be read") }
        guard let text = String(data: data, encoding: .utf8) else { throw PlaybookFileError("\(file): not UTF-8 text") }
        do {
            return (try PlaybookSet.load(yaml: text, file: file), fingerprint(data))
        } catch {
            throw PlaybookFileError(error.message)
        }
    }

    static func fingerprint(_ data: Data) -> String {
        SecretHash.sha256Hex(bytes: [UInt8](data))
    }
}

/// A playbook file that cannot be used; the message names the file, the playbook and the field.
public struct PlaybookFileError: Error, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}
