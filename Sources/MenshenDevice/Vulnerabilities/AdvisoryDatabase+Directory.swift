import Foundation

extension AdvisoryDatabase {
    /// Loads every `*.json` file under `directory` (one OSV record per file,
    /// as osv.dev's per-ecosystem exports and Debian's converter write them),
    /// descending into subdirectories up to ``OSVLoadLimits/maxDirectoryDepth``.
    /// Files in a directory are read in name order. Names starting with `.`
    /// and files not ending in `.json` are skipped; symbolic links below the
    /// directory are refused (a link could lead outside it or loop).
    ///
    /// All or nothing: the first problem (unreadable, over a limit, malformed
    /// JSON, schema violation, bad version, an id seen twice) throws an
    /// ``OSVError`` naming the file, and nothing from this call is returned.
    /// The only I/O in this module.
    public static func load(directory: String, limits: OSVLoadLimits = OSVLoadLimits()) throws(OSVError) -> AdvisoryDatabase {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw OSVError(.unreadable, path: directory, "not a directory")
        }
        var files: [String] = []
        try collect(directory, depth: 0, limits: limits, into: &files)

        var advisories: [OSVAdvisory] = []
        var firstFile: [String: String] = [:] // advisory id → file
        var total = 0
        for path in files {
            let bytes = try read(path, limits: limits)
            total += bytes.count
            guard total <= limits.maxTotalBytes else {
                throw OSVError(.totalSizeTooLarge, path: path, "more than \(limits.maxTotalBytes) bytes in all")
            }
            let advisory = try OSVAdvisory.decode(bytes, path: path, limits: limits)
            if let earlier = firstFile[advisory.id] {
                throw OSVError(.duplicateAdvisoryID, path: path, "the id \(advisory.id) is also in \(earlier)")
            }
            firstFile[advisory.id] = path
            advisories.append(advisory)
        }
        return try AdvisoryDatabase(advisories: advisories)
    }

    private static func collect(_ directory: String, depth: Int, limits: OSVLoadLimits, into files: inout [String]) throws(OSVError) {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted() } catch {
            throw OSVError(.unreadable, path: directory, "cannot list the directory: \(error.localizedDescription)")
        }
        for name in names where !name.hasPrefix(".") {
            let path = (directory as NSString).appendingPathComponent(name)
            let type: FileAttributeType?
            do {
                // attributesOfItem does not follow a final symbolic link (lstat).
                type = try FileManager.default.attributesOfItem(atPath: path)[.type] as? FileAttributeType
            } catch {
                throw OSVError(.unreadable, path: path, error.localizedDescription)
            }
            switch type {
            case .typeDirectory?:
                guard depth < limits.maxDirectoryDepth else {
                    throw OSVError(.directoryTooDeep, path: path, "more than \(limits.maxDirectoryDepth) levels below \(directory)")
                }
                try collect(path, depth: depth + 1, limits: limits, into: &files)
            case .typeSymbolicLink?:
                throw OSVError(.notARegularFile, path: path, "symbolic links are not followed")
            case .typeRegular? where name.hasSuffix(".json"):
                guard files.count < limits.maxFiles else {
                    throw OSVError(.tooManyFiles, path: directory, "more than \(limits.maxFiles) advisory files")
                }
                files.append(path)
            case _ where name.hasSuffix(".json"):
                throw OSVError(.notARegularFile, path: path, "not a regular file")
            default:
                continue
            }
        }
    }

    private static func read(_ path: String, limits: OSVLoadLimits) throws(OSVError) -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw OSVError(.unreadable, path: path, "cannot open the file")
        }
        defer { try? handle.close() }
        let data: Data?
        do { data = try handle.read(upToCount: limits.maxFileBytes + 1) } catch {
            throw OSVError(.unreadable, path: path, error.localizedDescription)
        }
        let bytes = [UInt8](data ?? Data())
        guard bytes.count <= limits.maxFileBytes else {
            throw OSVError(.fileTooLarge, path: path, "larger than \(limits.maxFileBytes) bytes")
        }
        return bytes
    }
}
