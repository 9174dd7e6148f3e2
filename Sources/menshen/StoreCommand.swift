import ArgumentParser
import Foundation
import Logging
import MenshenConfig
import MenshenServer
import MenshenStorage

struct StoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Inspect the store of a deployment.",
        subcommands: [Status.self, EventBench.self]
    )

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the backend, schema version and record counts, and check the event hash chain."
        )

        @OptionGroup var store: StoreOptions

        func run() async throws {
            let (_, db) = try await store.openExisting()
            do {
                let version = try await db.schemaVersion()
                var lines = [
                    "backend:         \(db.backendName)",
                    "schema version:  \(version)",
                    "users:           \(try await db.listUsers().count)",
                    "groups:          \(try await db.listGroups().count)",
                    "roles:           \(try await db.listRoles().count)",
                    "applications:    \(try await db.listApplications().count)",
                    "policies:        \(try await db.currentPolicies().count)",
                    "events:          \(try await db.eventCount())",
                ]
                var all: [StoredEvent] = []
                var after: Int64 = 0
                while true {
                    let page = try await db.events(after: after, limit: 1000)
                    guard let last = page.last else { break }
                    all += page; after = last.sequence
                }
                if let broken = EventChain.firstBrokenLink(all) {
                    lines.append("event chain:     BROKEN at sequence \(broken)")
                } else {
                    lines.append("event chain:     intact (\(all.count) records)")
                }
                print(lines.joined(separator: "\n"))
                try await db.close()
            } catch {
                try? await db.close()
                throw fail(error)
            }
        }
    }
}
