import Foundation

/// Encodings shared by the SQL backends so both store exactly the same values.
public enum StoreCoding {
    /// Milliseconds since the Unix epoch (the resolution every backend keeps).
    public static func millis(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded())
    }

    public static func date(millis: Int64) -> Date {
        Date(timeIntervalSince1970: Double(millis) / 1000)
    }

    /// Encodes a string list as a JSON array.
    public static func jsonArray(_ values: [String]) -> String {
        guard let data = try? JSONEncoder().encode(values), let s = String(data: data, encoding: .utf8) else { return "[]" }
        return s
    }

    /// Decodes a JSON array of strings; malformed text is a corrupt store.
    public static func stringArray(_ json: String) throws -> [String] {
        do { return try JSONDecoder().decode([String].self, from: Data(json.utf8)) } catch {
            throw StoreError(.corrupt, "stored list is not a JSON array of strings")
        }
    }

    /// Encodes a device's vulnerability findings as a JSON array.
    public static func findingsJSON(_ findings: [DeviceFindingRecord]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(findings), let s = String(data: data, encoding: .utf8) else { return "[]" }
        return s
    }

    /// Decodes stored findings; malformed text is a corrupt store.
    public static func findings(_ json: String) throws -> [DeviceFindingRecord] {
        do { return try JSONDecoder().decode([DeviceFindingRecord].self, from: Data(json.utf8)) } catch {
            throw StoreError(.corrupt, "stored vulnerability findings are not a JSON array of findings")
        }
    }
}
