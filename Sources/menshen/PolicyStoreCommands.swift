import ArgumentParser
import Foundation
import MenshenCore
import MenshenPolicyEngine
import MenshenServer
import MenshenStorage

/// `menshen policy save|list`: the policies a deployment's store holds
/// (versioned; every gateway node picks a change up at once through the
/// store's change feed). A save is checked first against everything the
/// gateway would load with it — the other stored policies and the routes
/// file — and refused whole when the result would not validate.
struct PolicySave: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "save",
        abstract: "Save a Cedar policy document to the deployment's store as a new version (checked before saving).")

    @Argument(help: "Policy document id: 1–128 characters from A–Z a–z 0–9 . _ @ -") var id: String
    @Argument(help: ArgumentHelp("Cedar file (`-` for standard input).", valueName: "file")) var file: String
    @Option(help: "Why this change is made (kept with the version).") var comment: String = ""
    @OptionGroup var store: StoreOptions

    func validate() throws {
        guard IdentifierSyntax.isValid(id) else { throw ValidationError("policy id must be 1–128 characters from A–Z a–z 0–9 . _ @ -") }
        guard comment.count <= 1000 else { throw ValidationError("--comment must be at most 1000 characters") }
    }

    func run() async throws {
        let text: String
        do { text = try PolicyIO.readText(file, what: "policy") } catch { throw fail(error) }
        try await UserCommand.withServices(store) { db, _, config in
            // The set as it would be after the save: stored policies with this one replaced, plus the routes file.
            let current = try await db.currentPolicies().filter { $0.policyID.rawValue != id }
            let routes = config.gateway.routesFile.isEmpty ? RoutesFile.Contents.empty : try RoutesFile.load(path: config.gateway.routesFile, at: Date())
            let documents = current.map { (name: "\($0.policyID).cedar (v\($0.version))", text: $0.text) } + [(name: file, text: text)]
                + routes.documents.map { (name: $0.name, text: $0.text) }
            _ = try PolicyDecisionPoint(documents: documents)
            let saved = try await db.savePolicy(PolicyID(id), text: text, author: UserCommand.operatorName, comment: comment, at: Date())
            print("saved policy \(id) version \(saved.version)")
        }
    }
}

struct PolicyList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List the policy documents in the deployment's store with their current versions.")
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await UserCommand.withServices(store) { db, _, _ in
            let policies = try await db.currentPolicies()
            for p in policies {
                print("\(p.policyID.rawValue)\tv\(p.version)\t\(ISO8601DateFormatter().string(from: p.createdAt))\t\(p.author)\t\(p.comment)")
            }
            print("\(policies.count) polic\(policies.count == 1 ? "y" : "ies")")
        }
    }
}
