import ArgumentParser
import Foundation
import MenshenCore
import MenshenStorage

/// `menshen group …` and `menshen role …`: the directory's groups and roles,
/// which policies and routes refer to (`principal in Group::"staff"`,
/// `require.groups`). (Directory changes are not yet recorded as OCSF Group
/// Management events: noted on the visibility issue.)
struct GroupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "group", abstract: "Manage groups: add, list.", subcommands: [Add.self, List.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a group (then `menshen user add USER --group GROUP`).")
        @Argument(help: "Group id: 1–128 characters from A–Z a–z 0–9 . _ @ -") var group: String
        @Option(help: "Display name (default: the id).") var name: String?
        @OptionGroup var store: StoreOptions

        func validate() throws {
            guard IdentifierSyntax.isValid(group) else { throw ValidationError("group id must be 1–128 characters from A–Z a–z 0–9 . _ @ -") }
            if let name, name.isEmpty || name.count > 200 { throw ValidationError("--name must be 1–200 characters") }
        }

        func run() async throws {
            try await UserCommand.withServices(store) { db, _, _ in
                if try await db.listGroups().contains(where: { $0.id.rawValue == group }) {
                    throw StoreError(.conflict, "group \(group) already exists")
                }
                try await db.createGroup(GroupRecord(id: GroupID(group), displayName: name ?? group))
                print("added group \(group)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List groups.")
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await UserCommand.withServices(store) { db, _, _ in
                let groups = try await db.listGroups()
                for g in groups { print("\(g.id.rawValue)\t\(g.displayName)") }
                print("\(groups.count) group\(groups.count == 1 ? "" : "s")")
            }
        }
    }
}

struct RoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "role", abstract: "Manage roles and their risk tiers: add, list.", subcommands: [Add.self, List.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a role. Privileged roles are active only in a separate privileged session (principle 4.1).")
        @Argument(help: "Role id: 1–128 characters from A–Z a–z 0–9 . _ @ -") var role: String
        @Option(help: "standard, sensitive or privileged.") var tier: String = "standard"
        @Option(help: "Display name (default: the id).") var name: String?
        @OptionGroup var store: StoreOptions

        func validate() throws {
            guard IdentifierSyntax.isValid(role) else { throw ValidationError("role id must be 1–128 characters from A–Z a–z 0–9 . _ @ -") }
            guard RiskTier(rawValue: tier) != nil else { throw ValidationError("--tier must be standard, sensitive or privileged") }
            if let name, name.isEmpty || name.count > 200 { throw ValidationError("--name must be 1–200 characters") }
        }

        func run() async throws {
            try await UserCommand.withServices(store) { db, _, _ in
                if try await db.listRoles().contains(where: { $0.id.rawValue == role }) {
                    throw StoreError(.conflict, "role \(role) already exists")
                }
                try await db.createRole(RoleRecord(id: RoleID(role), displayName: name ?? role, riskTier: RiskTier(rawValue: tier) ?? .standard))
                print("added role \(role) (\(tier))")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List roles with their risk tiers.")
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await UserCommand.withServices(store) { db, _, _ in
                let roles = try await db.listRoles()
                for r in roles { print("\(r.id.rawValue)\t\(r.riskTier.rawValue)\t\(r.displayName)") }
                print("\(roles.count) role\(roles.count == 1 ? "" : "s")")
            }
        }
    }
}
