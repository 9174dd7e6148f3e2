import Foundation
import Testing

/// docs/architecture.md must describe exactly the targets that exist.
@Suite("Architecture document")
struct ArchitectureDocTests {
    static func directories(_ folder: String) -> Set<String> {
        let url = Harness.packageRoot.appendingPathComponent(folder)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        return Set(names.filter { name in
            var isDir: ObjCBool = false
            return FileManager.default.fileExists(atPath: url.appendingPathComponent(name).path, isDirectory: &isDir) && isDir.boolValue
        })
    }

    /// Target names in the first column of the table: "| `Name` | kind | …".
    static func documentedTargets() throws -> Set<String> {
        let text = try String(contentsOf: Harness.packageRoot.appendingPathComponent("docs/architecture.md"), encoding: .utf8)
        var names = Set<String>()
        for line in text.split(separator: "\n") where line.hasPrefix("| `") {
            let cell = line.dropFirst(3).prefix(while: { $0 != "`" })
            names.insert(String(cell))
        }
        return names
    }

    @Test("every source and test target is described, and nothing else")
    func matches() throws {
        let existing = Self.directories("Sources").union(Self.directories("Tests"))
        let documented = try Self.documentedTargets()
        #expect(existing.subtracting(documented).isEmpty, "targets missing from docs/architecture.md")
        #expect(documented.subtracting(existing).isEmpty, "docs/architecture.md names targets that do not exist")
    }

    @Test("every target directory is declared in Package.swift")
    func declared() throws {
        let manifest = try String(contentsOf: Harness.packageRoot.appendingPathComponent("Package.swift"), encoding: .utf8)
        for name in Self.directories("Sources").union(Self.directories("Tests")) {
            // Targets are declared as `name: "X"` or, for the opt-in fuzz targets, listed by name.
            #expect(manifest.contains("name: \"\(name)\"") || manifest.contains("\"\(name)\""), "\(name) is not a target in Package.swift")
        }
    }
}
