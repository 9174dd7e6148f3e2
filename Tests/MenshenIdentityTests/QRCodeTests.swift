import Foundation
import MenshenTestSupport
import Testing
@testable import MenshenIdentity

@Suite("QR code")
struct QRCodeTests {
    /// Binary PGM (P5), 8 pixels per module, 4-module quiet zone.
    static func pgm(_ code: QRCode, scale: Int = 8, quiet: Int = 4) -> Data {
        let side = (code.size + 2 * quiet) * scale
        var data = Data("P5\n\(side) \(side)\n255\n".utf8)
        data.reserveCapacity(data.count + side * side)
        for py in 0..<side {
            for px in 0..<side {
                data.append(code.isDark(x: px / scale - quiet, y: py / scale - quiet) ? 0 : 255)
            }
        }
        return data
    }

    static func uri(issuer: String, account: String, secretBytes: Int, algorithm: OTPAlgorithm = .sha1) throws -> String {
        var generator = SeededGenerator(seed: UInt64(secretBytes))
        let secret = TOTPSecret.generate(byteCount: secretBytes, using: &generator)
        return try OTPAuthURI(issuer: issuer, accountName: account, secret: secret,
                              configuration: try TOTPConfiguration(algorithm: algorithm)).uri
    }

    @Test("The smallest version is chosen and oversize payloads are refused")
    func versionSelection() throws {
        #expect(try QRCode(text: "HELLO").version == 1)
        #expect(try QRCode(bytes: [UInt8](repeating: 0x41, count: 14)).version == 1)
        #expect(try QRCode(bytes: [UInt8](repeating: 0x41, count: 15)).version == 2)
        #expect(try QRCode(bytes: [UInt8](repeating: 0x41, count: 412)).version == 15)
        #expect(try QRCode(bytes: [UInt8](repeating: 0x41, count: 413)).version == 16)
        #expect(try QRCode(bytes: [UInt8](repeating: 0x41, count: 666)).version == 20)
        #expect(throws: QRError(.dataTooLong)) { try QRCode(bytes: [UInt8](repeating: 0x41, count: 667)) }
        let code = try QRCode(text: "otpauth://totp/x")
        #expect(code.size == 17 + 4 * code.version)
        #expect(code.modules.count == code.size * code.size)
    }

    @Test("Reed-Solomon matches the ISO/IEC 18004 Annex I example (1-M, 01234567)")
    func reedSolomonExample() {
        let data: [UInt8] = [0x10, 0x20, 0x0C, 0x56, 0x61, 0x80, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11]
        let ec = ReedSolomon.remainder(data, generator: ReedSolomon.generator(degree: 10))
        #expect(ec == [0xA5, 0x24, 0xD4, 0xC1, 0xED, 0x36, 0xC7, 0x87, 0x2C, 0x55])
    }

    @Test("The SVG has no script, no external reference and one path")
    func svgIsInert() throws {
        let svg = try QRCode(text: "otpauth://totp/A:b?secret=JBSWY3DPEHPK3PXP").svg()
        #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        #expect(!svg.lowercased().contains("script"))
        #expect(!svg.contains("href"))
        #expect(!svg.contains("style"))
        #expect(svg.components(separatedBy: "<path").count == 2)
    }

    @Test("zbarimg decodes otpauth URIs of several lengths and versions exactly")
    func zbarDecodes() throws {
        if let message = Oracle.missing(Oracle.commandExists("zbarimg"), "zbarimg (apt-get install zbar-tools)") {
            if Oracle.isCI { Issue.record(Comment(rawValue: message)) }
            return
        }
        let payloads = [
            "otpauth://totp/A:b",
            try Self.uri(issuer: "Menshen", account: "alice", secretBytes: 20),
            try Self.uri(issuer: "Example Bank", account: "alice@example.com", secretBytes: 20, algorithm: .sha256),
            try Self.uri(issuer: "臺灣銀行", account: "王小明@bank.example.tw", secretBytes: 20),
            try Self.uri(issuer: "中華郵政股份有限公司 Chunghwa Post", account: "very.long.account.name@branch.example.com.tw", secretBytes: 32, algorithm: .sha512),
            try Self.uri(issuer: "第一商業銀行股份有限公司", account: "一位使用者@example.com.tw", secretBytes: 40),
            try Self.uri(issuer: "第一商業銀行股份有限公司數位金融處", account: "一位有很長名字的使用者@example.com.tw", secretBytes: 32),
            String(repeating: "x", count: 400),
            String(repeating: "y", count: 560),
            String(repeating: "z", count: 666),
        ]
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("menshen-qr-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var versions = Set<Int>()
        for (index, payload) in payloads.enumerated() {
            let code = try QRCode(text: payload)
            versions.insert(code.version)
            let file = directory.appendingPathComponent("qr\(index).pgm")
            try Self.pgm(code).write(to: file)
            let output = try Oracle.run(["zbarimg", "--quiet", "--raw", file.path])
            #expect(output.status == 0, "zbarimg failed for version \(code.version) mask \(code.mask): \(output.stderr)")
            var decoded = output.stdout
            if decoded.hasSuffix("\n") { decoded.removeLast() }
            #expect(decoded == payload, "version \(code.version) mask \(code.mask)")
        }
        #expect(versions.count >= 7, "versions covered: \(versions.sorted())")
    }

    @Test("Every mask pattern produces a decodable symbol")
    func everyMaskDecodes() throws {
        if let message = Oracle.missing(Oracle.commandExists("zbarimg"), "zbarimg (apt-get install zbar-tools)") {
            if Oracle.isCI { Issue.record(Comment(rawValue: message)) }
            return
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("menshen-qrm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var masks = Set<Int>()
        var attempt = 0
        while masks.count < 8 && attempt < 200 {
            let payload = "otpauth://totp/M:\(attempt)?secret=JBSWY3DPEHPK3PXP&x=\(String(repeating: "a", count: attempt % 60))"
            attempt += 1
            let code = try QRCode(text: payload)
            guard masks.insert(code.mask).inserted else { continue }
            let file = directory.appendingPathComponent("m\(code.mask).pgm")
            try Self.pgm(code).write(to: file)
            let output = try Oracle.run(["zbarimg", "--quiet", "--raw", file.path])
            #expect(output.stdout.trimmingCharacters(in: .newlines) == payload, "mask \(code.mask) version \(code.version)")
        }
        #expect(masks.count == 8)
    }
}
