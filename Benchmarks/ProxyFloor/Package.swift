// swift-tools-version:6.0
// A measuring device, not part of Menshen: the cost of a bare SwiftNIO reverse proxy per request, built
// with NIOHTTP1 and with hand-written parsing. Built and run by scripts/bench-proxy-floor (not by CI).
import PackageDescription

let package = Package(
    name: "proxy-floor",
    dependencies: [.package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3")],
    targets: [
        .executableTarget(name: "proxy-floor", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ], swiftSettings: [.swiftLanguageMode(.v6)]),
    ]
)
