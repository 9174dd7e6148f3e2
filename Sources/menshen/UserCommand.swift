import ArgumentParser
import Foundation
import Logging
import MenshenConfig
import MenshenCore
import MenshenPolicyAdministrator
import MenshenServer
import MenshenStorage

/// `menshen user …`: the directory from the command line. Every change is
/// recorded as an OCSF Account Change (3001) event naming the operator.
struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user",
        abstract: "Manage users: add, list, show, disable, enable, reset MFA, issue enrolment links.",
        subcommands: [Add.self, List.self, Show.self, Disable.self, Enable.self, ResetMFA.self, EnrolLink.self]
    )

    /// Opens the store and the identity services, runs `body`, closes the store.
    static func withServices<T>(_ options: StoreOptions, _ body: (any MenshenStore, IdentityPortal, MenshenConfiguration) async throws -> T)
        async throws -> T
    {
        let (config, store) = try await options.openExisting()
        do {
            let portal = try IdentityWiring.portal(config: config, store: store, clock: SystemClock())
            do {
                let result = try await body(store, portal, config)
                try? await portal.federation?.shutdown()
                try await store.close()
                return result
            } catch {
                try? await portal.federation?.shutdown()
                throw error
            }
        } catch let exit as ExitCode {
            try? await store.close()
            throw exit
        } catch {
            try? await store.close()
            throw fail(error)
        }
    }

    static var operatorName: String {
        "cli:" + (ProcessInfo.processInfo.environment["SUDO_USER"] ?? ProcessInfo.processInfo.environment["USER"] ?? "unknown")
    }

    static func requireUser(_ store: any MenshenStore, _ id: String) async throws -> UserRecord {
        guard IdentifierSyntax.isValid(id), let user = try await store.user(UserID(id)) else {
            throw StoreError(.notFound, "no user \(id)")
        }
        return user
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a user (then give them `menshen user enrol-link USER`).")
        @Argument(help: "User id: 1–128 characters from A–Z a–z 0–9 . _ @ -") var user: String
        @Option(help: "Display name (default: the id).") var name: String?
        @Option(help: "E-mail address.") var email: String?
        @Option(help: "internal, vendor or partner (external users are held to the same assurance scale).") var kind: String = "internal"
        @Option(name: .customLong("group"), help: "Add to this group (repeatable).") var groups: [String] = []
        @Option(name: .customLong("role"), help: "Assign this role (repeatable).") var roles: [String] = []
        @OptionGroup var store: StoreOptions

        func validate() throws {
            guard IdentifierSyntax.isValid(user) else { throw ValidationError("user id must be 1–128 characters from A–Z a–z 0–9 . _ @ -") }
            guard UserKind(rawValue: kind) != nil else { throw ValidationError("--kind must be internal, vendor or partner") }
            if let name, name.isEmpty || name.count > 200 { throw ValidationError("--name must be 1–200 characters") }
        }

        func run() async throws {
            try await UserCommand.withServices(store) { db, portal, _ in
                // Check every reference before writing anything: a typo changes nothing.
                let knownGroups = Set(try await db.listGroups().map(\.id.rawValue))
                let knownRoles = Set(try await db.listRoles().map(\.id.rawValue))
                if let g = groups.first(where: { !knownGroups.contains($0) }) { throw StoreError(.notFound, "no group \(g)") }
                if let r = roles.first(where: { !knownRoles.contains($0) }) { throw StoreError(.notFound, "no role \(r)") }
                let record = UserRecord(id: UserID(user), displayName: name ?? user, email: email, kind: UserKind(rawValue: kind) ?? .internal,
                                        createdAt: Date())
                try await db.createUser(record)
                for g in groups { try await db.addMember(record.id, to: GroupID(g)) }
                for r in roles { try await db.assignRole(RoleID(r), to: record.id) }
                try await portal.identity.events.accountChange(.create, user: record.id, actor: UserCommand.operatorName,
                                                               detail: "user created (\(kind))")
                print("added user \(user) (\(kind))\(groups.isEmpty ? "" : ", groups: \(groups.joined(separator: ", "))")\(roles.isEmpty ? "" : ", roles: \(roles.joined(separator: ", "))")")
                print("next: menshen user enrol-link \(user)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List users with their kind, state and sign-in methods.")
        @Flag(help: "One JSON object per line.") var json = false
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await UserCommand.withServices(store) { db, portal, _ in
                let users = try await db.listUsers()
                var rows: [[String]] = [["USER", "KIND", "STATE", "METHODS", "NAME"]]
                for u in users {
                    let f = try await portal.identity.factorSummary(of: u.id)
                    let methods = ([f.hasPassword ? "password" : nil] + f.secondFactors.map(\.rawValue)).compactMap { $0 }
                    if json {
                        let object: [String: Any] = ["user": u.id.rawValue, "kind": u.kind.rawValue, "disabled": u.disabled,
                                                     "methods": methods, "name": u.displayName]
                        print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
                    } else {
                        rows.append([u.id.rawValue, u.kind.rawValue, u.disabled ? "disabled" : "active",
                                     methods.isEmpty ? "-" : methods.joined(separator: ","), u.displayName])
                    }
                }
                if !json {
                    let widths = (0..<4).map { c in rows.map { $0[c].count }.max() ?? 0 }
                    for r in rows {
                        print((0..<4).map { r[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ") + "  " + r[4])
                    }
                    print("\(users.count) user\(users.count == 1 ? "" : "s")")
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one user: groups, roles, sign-in methods and sessions.")
        @Argument(help: "User id.") var user: String
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await UserCommand.withServices(store) { db, portal, _ in
                let u = try await UserCommand.requireUser(db, user)
                let f = try await portal.identity.factorSummary(of: u.id)
                let roles = try await db.listRoles()
                let held = try await db.roles(of: u.id).map { id in
                    "\(id.rawValue) (\(roles.first { $0.id == id }?.riskTier.rawValue ?? "?"))"
                }
                let now = Date()
                let active = try await db.sessions(of: u.id).filter { $0.isActive(at: now) }
                print("""
                    user:            \(u.id.rawValue)
                    name:            \(u.displayName)
                    e-mail:          \(u.email ?? "-")
                    kind:            \(u.kind.rawValue)
                    state:           \(u.disabled ? "disabled" : "active")
                    groups:          \(try await db.groups(of: u.id).map(\.rawValue).joined(separator: ", "))
                    roles:           \(held.joined(separator: ", "))
                    password:        \(f.hasPassword ? "set" : "not set")
                    passkeys:        \(f.passkeys.isEmpty ? "none" : f.passkeys.map { $0.label + ($0.cloneWarning ? " [CLONE WARNING]" : "") }.joined(separator: ", "))
                    totp:            \(f.totpCount)
                    recovery codes:  \(f.recoveryCodesRemaining) left
                    active sessions: \(active.count)\(active.map { "\n  - LoA \($0.levelOfAssurance) [\($0.amr.joined(separator: " "))] since \(ISO8601DateFormatter().string(from: $0.createdAt))" }.joined())
                    """)
            }
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a user and end all their sessions at once.")
        @Argument(help: "User id.") var user: String
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await UserCommand.withServices(store) { db, portal, _ in
                var u = try await UserCommand.requireUser(db, user)
                u.disabled = true; u.updatedAt = Date()
                try await db.updateUser(u)
                let ended = try await portal.sessions.revokeAll(of: u.id, reason: "user disabled by \(UserCommand.operatorName)")
                try await portal.identity.events.accountChange(.disable, user: u.id, actor: UserCommand.operatorName,
                                                               detail: "user disabled; \(ended) sessions ended")
                print("disabled \(user); ended \(ended) session\(ended == 1 ? "" : "s")")
            }
        }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a disabled user.")
        @Argument(help: "User id.") var user: String
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await UserCommand.withServices(store) { db, portal, _ in
                var u = try await UserCommand.requireUser(db, user)
                u.disabled = false; u.updatedAt = Date()
                try await db.updateUser(u)
                try await portal.identity.events.accountChange(.enable, user: u.id, actor: UserCommand.operatorName, detail: "user enabled")
                print("enabled \(user)")
            }
        }
    }

    struct ResetMFA: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reset-mfa",
            abstract: "Remove a user's passkeys, TOTP and recovery codes and end their sessions (the password stays).",
            discussion: "Use when a user lost their authenticators; then issue `menshen user enrol-link USER` so they enrol again."
        )
        @Argument(help: "User id.") var user: String
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await UserCommand.withServices(store) { db, portal, _ in
                let u = try await UserCommand.requireUser(db, user)
                let removed = try await portal.identity.resetMFA(user: u.id, actor: UserCommand.operatorName)
                print("removed \(removed) second factor\(removed == 1 ? "" : "s") of \(user); their sessions are ended")
            }
        }
    }

    struct EnrolLink: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "enrol-link",
            abstract: "Print a one-time enrolment URL for a user (only its hash is stored)."
        )
        @Argument(help: "User id.") var user: String
        @Option(help: "Hours the link stays valid (1–168).") var validHours: Int = 24
        @OptionGroup var store: StoreOptions

        func validate() throws {
            guard (1...168).contains(validHours) else { throw ValidationError("--valid-hours must be 1–168") }
        }

        func run() async throws {
            try await UserCommand.withServices(store) { db, portal, config in
                let u = try await UserCommand.requireUser(db, user)
                guard !u.disabled else { throw StoreError(.invalidInput, "user \(user) is disabled; enable it first") }
                let token = try await DemoOrganisation.issueEnrolmentToken(for: u.id, store: db, clock: SystemClock(), random: SystemRandomSource(),
                                                                           validFor: Double(validHours) * 3600)
                print("\(portal.publicOrigin)/enrol/\(token)")
                FileHandle.standardError.write(Data("one-time link for \(user), valid \(validHours) h\n".utf8))
            }
        }
    }
}
