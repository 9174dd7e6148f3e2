// swift-tools-version:6.1
//
// Menshen — a zero-trust access platform for financial institutions.
// One target per NIST SP 800-207 role or guideline pillar; dependencies point
// inward toward pure code. See docs/architecture.md.
import Foundation
import PackageDescription

/// Shared strict settings for every target (Swift 6 language mode, strict
/// concurrency, explicit `any` for existentials).
let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "menshen",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "menshen", targets: ["menshen"]),
        .executable(name: "menshen-agent", targets: ["menshen-agent"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.3.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    ],
    targets: [
        // Pure vocabulary: identifiers, clock, randomness, limits, event records. No I/O.
        .target(
            name: "MenshenCore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        // The Cedar policy language: parser, schema, validator, evaluator,
        // authorizer, policy index. No I/O, no dependency beyond Foundation.
        .target(name: "MenshenCedar", swiftSettings: strict),
        // Runs cedar-integration-tests files (directories and .tar.gz) against MenshenCedar.
        .target(name: "MenshenCedarConformance", dependencies: ["MenshenCedar"], swiftSettings: strict),
        // The decision point facade: AccessRequest → AccessDecision (allow, deny,
        // step-up; reasons, determining policies, obligations). No I/O.
        .target(name: "MenshenPolicyEngine", dependencies: ["MenshenCedar"], swiftSettings: strict),
        // Identity pillar building blocks: TOTP, WebAuthn, passwords, recovery codes,
        // assurance levels, CBOR and QR. No I/O.
        .target(
            name: "MenshenIdentity",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: strict
        ),
        // Device pillar's pure core: Debian version order, OSV advisories and
        // matching, the device CA (certificates from CSRs, revocation, client
        // verification), signed posture reports, compliance policy. No I/O
        // except reading the advisory directory a caller names.
        .target(
            name: "MenshenDevice",
            dependencies: [
                "MenshenCore", "MenshenPolicyEngine",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: strict
        ),
        // OpenID Connect relying party: discovery, JWKS with rotation, code + PKCE
        // exchange against real providers (the HTTP half of Identity/Federation).
        .target(
            name: "MenshenFederation",
            dependencies: [
                "MenshenCore", "MenshenIdentity",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Sessions, sign-in orchestration, throttling and identity events: the
        // policy administrator's session half. Talks to storage through protocols; no HTTP.
        .target(
            name: "MenshenPolicyAdministrator",
            dependencies: [
                "MenshenCore", "MenshenStorage", "MenshenIdentity",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        // The enforcement point's data path: an HTTP/1.1 reverse proxy on SwiftNIO
        // that puts every request to an AccessGate.
        .target(
            name: "MenshenEnforcementPoint",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // One typed, documented configuration tree (YAML + MENSHEN_* overrides).
        .target(
            name: "MenshenConfig",
            dependencies: ["MenshenCore", .product(name: "Yams", package: "Yams")],
            swiftSettings: strict
        ),
        // Store protocols, records, migrations vocabulary and the in-memory store.
        .target(
            name: "MenshenStorage",
            dependencies: ["MenshenCore", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .target(
            name: "MenshenStorageSQLite",
            dependencies: ["MenshenStorage", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: strict
        ),
        .target(
            name: "MenshenStoragePostgres",
            dependencies: [
                "MenshenStorage",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Visibility pillar, detection half: OCSF event access, Sigma detection and
        // correlation rules, ATT&CK-mapped built-in detections, per-user baselines
        // and risk scores. No I/O: it reads parsed events and returns findings.
        .target(
            name: "MenshenVisibility",
            dependencies: [
                "MenshenCore", "MenshenStorage",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        // Runtime assembly: store bootstrap, operations (admin) listener, demo
        // organisation and the sample upstream application.
        // The maturity assessment: principle catalog → measurements → Level I–IV
        // report, renderers and the signed evidence pack. No I/O.
        .target(
            name: "MenshenAssessment",
            dependencies: ["MenshenCore", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .target(
            name: "MenshenServer",
            dependencies: [
                "MenshenCore", "MenshenConfig", "MenshenStorage", "MenshenStorageSQLite", "MenshenStoragePostgres",
                "MenshenPolicyEngine", "MenshenIdentity", "MenshenPolicyAdministrator", "MenshenFederation", "MenshenEnforcementPoint",
                "MenshenVisibility", "MenshenDevice", "MenshenAssessment",
                .product(name: "NIOPosix", package: "swift-nio"),   // the SIEM export (Export/)
                .product(name: "AsyncHTTPClient", package: "async-http-client"),   // playbook webhooks (Response/)
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ],
            swiftSettings: strict
        ),
        // The executable: command line and wiring only.
        .executableTarget(
            name: "menshen",
            dependencies: [
                "MenshenCore", "MenshenConfig", "MenshenStorage", "MenshenServer", "MenshenCedar", "MenshenCedarConformance", "MenshenPolicyEngine",
                "MenshenPolicyAdministrator", "MenshenVisibility", "MenshenStorageSQLite", "MenshenStoragePostgres",
                // menshen agent: the device key, CSR and signed posture reports.
                "MenshenAgent", "MenshenDevice", "MenshenAssessment", .product(name: "X509", package: "swift-certificates"), .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The device agent (menshen agent, menshen-agent): enrolment with a software or TPM key, signed
        // posture reports. HTTPS to the portal and tpm2-tools subprocesses; no server code.
        .target(
            name: "MenshenAgent",
            dependencies: [
                "MenshenCore", "MenshenDevice",
                .product(name: "X509", package: "swift-certificates"), .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "menshen-agent",
            dependencies: ["MenshenAgent", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict
        ),
        // Helpers shared by the test targets (a seeded generator); linked only into them.
        .target(name: "MenshenTestSupport", path: "Tests/MenshenTestSupport", swiftSettings: strict),
        .testTarget(name: "MenshenCedarTests", dependencies: ["MenshenCedar", "MenshenCedarConformance"], swiftSettings: strict),
        .testTarget(name: "MenshenPolicyEngineTests", dependencies: ["MenshenPolicyEngine", "MenshenTestSupport"], swiftSettings: strict),
        .testTarget(name: "MenshenAssessmentTests", dependencies: ["MenshenAssessment", "MenshenTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "MenshenIdentityTests",
            dependencies: [
                "MenshenIdentity", "MenshenTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "MenshenEnforcementPointTests",
            dependencies: [
                "MenshenEnforcementPoint",
                // The continuous-verification tests run the real gate (sessions, policies, SQLite) behind the proxy.
                "MenshenServer", "MenshenPolicyAdministrator", "MenshenPolicyEngine", "MenshenStorage", "MenshenStorageSQLite", "MenshenCore",
                // The device tests issue real device certificates (MenshenDevice's CA) for curl to present.
                "MenshenDevice", .product(name: "X509", package: "swift-certificates"), .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                "MenshenTestSupport",
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "MenshenFederationTests",
            dependencies: ["MenshenFederation", "MenshenIdentity", "MenshenTestSupport", .product(name: "JWTKit", package: "jwt-kit")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "MenshenPolicyAdministratorTests",
            dependencies: ["MenshenPolicyAdministrator", "MenshenStorage", "MenshenStorageSQLite", "MenshenIdentity", "MenshenCore",
                           .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "MenshenVisibilityTests",
            dependencies: [
                "MenshenVisibility", "MenshenCore", "MenshenStorage",
                // The detection tests build their events with the real producers (sign-in and decision events).
                "MenshenPolicyAdministrator", "MenshenServer", "MenshenPolicyEngine", "MenshenTestSupport",
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "MenshenDeviceTests",
            dependencies: [
                "MenshenDevice", "MenshenCore", "MenshenPolicyEngine", "MenshenTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            exclude: ["Fixtures"],
            swiftSettings: strict
        ),
        .testTarget(name: "MenshenCoreTests", dependencies: ["MenshenCore"], swiftSettings: strict),
        .testTarget(name: "MenshenConfigTests", dependencies: ["MenshenConfig"], swiftSettings: strict),
        .testTarget(
            name: "StorageConformanceTests",
            dependencies: [
                "MenshenCore", "MenshenStorage", "MenshenStorageSQLite", "MenshenStoragePostgres", "MenshenTestSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["MenshenCore", "MenshenServer", "MenshenStorage", "MenshenStorageSQLite", "MenshenCedar",
                           "MenshenPolicyEngine", "MenshenPolicyAdministrator", "MenshenEnforcementPoint", "MenshenIdentity",
                           "MenshenVisibility", "MenshenDevice", "MenshenAssessment", "MenshenTestSupport",
                           .product(name: "X509", package: "swift-certificates"), .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: strict
        ),
    ]
)

// libFuzzer targets (no `main`; they would break a normal build), only with MENSHEN_FUZZ=1.
// Build and run one with `scripts/fuzz TARGET SECONDS` (see docs/testing.md).
if ProcessInfo.processInfo.environment["MENSHEN_FUZZ"] == "1" {
    for name in ["FuzzCedarPolicy", "FuzzCedarJSON", "FuzzCedarSchema"] {
        package.targets.append(.executableTarget(name: name, dependencies: ["MenshenCedar"], swiftSettings: strict))
        package.products.append(.executable(name: name, targets: [name]))
    }
    package.targets.append(.executableTarget(name: "FuzzWebAuthn", dependencies: ["MenshenIdentity"], swiftSettings: strict))
    package.products.append(.executable(name: "FuzzWebAuthn", targets: ["FuzzWebAuthn"]))
}
