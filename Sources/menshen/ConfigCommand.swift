import ArgumentParser
import Foundation
import MenshenConfig

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Check or print configuration files.",
        subcommands: [Check.self, Example.self]
    )

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a configuration file and print every problem with its key path.",
            discussion: "Exit status 0 only when the file (with the MENSHEN_* environment applied) is valid."
        )

        @Argument(help: ArgumentHelp("The configuration file to check.", valueName: "file"))
        var file: String

        @Flag(help: "Ignore MENSHEN_* environment variables.")
        var noEnvironment = false

        func run() throws {
            let problems = ConfigLoader.check(file: file, environment: noEnvironment ? [:] : ProcessInfo.processInfo.environment)
            if problems.isEmpty {
                print("\(file): valid")
                return
            }
            for p in problems { print(p) }
            print("\(problems.count) problem\(problems.count == 1 ? "" : "s") found in \(file)")
            throw ExitCode(1)
        }
    }

    struct Example: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a configuration file with every key, its default and its documentation.")
        func run() { print(ConfigLoader.exampleYAML(), terminator: "") }
    }
}
