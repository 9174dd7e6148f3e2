import ArgumentParser

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the Menshen version.")
    func run() { print(MenshenVersion.text) }
}
