import ArgumentParser
import Foundation

/// `menshen assess verify FILE`: checks a signed evidence pack. A placeholder
/// until the evidence pack lands (issue #8, its own branch replaces this file):
/// it refuses, so nobody mistakes it for a verification.
struct AssessVerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Verify a signed evidence pack (not built yet).")

    @Argument(help: ArgumentHelp("The evidence pack to verify.", valueName: "file"))
    var file: String

    func run() async throws {
        FileHandle.standardError.write(Data("menshen: error: assess verify is not built yet\n".utf8))
        throw ExitCode(2)
    }
}
