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
            abstract: "Print the backend, schema version and record counts, and check the event hash chain (exit 1 when it is broken)."
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
                // Page by page, carrying the previous hash: memory stays flat however long the log is.
                var checked = 0
                // After a retention prune the chain starts from the pruned boundary (`audit verify` checks its checkpoint).
                let pruned = try await db.lastPrune()
                var after: Int64 = pruned?.throughSequence ?? 0
                var previous = pruned?.throughHash ?? genesisEventHash
                var broken: Int64?
                while broken == nil {
                    let page = try await db.events(after: after, limit: 1000)
                    guard let last = page.last else { break }
                    broken = EventChain.firstBrokenLink(page, expectedPrevious: previous)
                    checked += page.count
                    previous = last.hash
                    after = last.sequence
                }
                if let broken {
                    lines.append("event chain:     BROKEN at sequence \(broken) (run `menshen audit verify` for the kind of break)")
                } else {
                    lines.append("event chain:     intact (\(checked) records)")
                }
                print(lines.joined(separator: "\n"))
                try await db.close()
                // A broken chain is a finding, not a status line to miss in a script: exit 1, as `audit verify` does.
                if broken != nil { throw ExitCode(1) }
            } catch let exit as ExitCode {
                throw exit
            } catch {
                try? await db.close()
                throw fail(error)
            }
        }
    }
}
