/// The `menshen` executable: the command line and the wiring of services.
/// Everything of substance lives in the library targets.
import ArgumentParser
import Foundation
import MenshenAgent

@main
struct Menshen: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "menshen",
        abstract: "門神 Menshen — zero-trust access for financial institutions.",
        discussion: """
            Every request to a protected application is authorized from identity, device, context and the
            resource's classification (FSC Zero Trust Architecture Reference Guideline for the Financial Industry).

            Start with `menshen demo`: an embedded store, a demo organisation and everything on loopback.
            """,
        version: MenshenVersion.text,
        subcommands: [DemoCommand.self, ServeCommand.self, ConfigCommand.self, StoreCommand.self, UserCommand.self, GroupCommand.self, RoleCommand.self, DeviceCommand.self, AgentCommand.self, PolicyCommand.self, AuditCommand.self, PlaybookCommand.self,
                      AssessCommand.self, AttestCommand.self, CaseCommand.self,
                      VersionCommand.self]
    )
}
