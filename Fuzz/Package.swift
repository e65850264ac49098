// swift-tools-version:6.0
// libFuzzer targets for Sluice's hostile-input parsers. Kept out of the root package so that
// `swift build` / `swift test` there never see the fuzzer flags. Build and run with `scripts/fuzz`.
//
// SluiceCore is compiled here from the root package's sources (Sources/SluiceCore is a symlink
// to ../../Sources/SluiceCore): the root package exports no library product, and a package can
// only use another package's products. The parsers are therefore instrumented for coverage, as
// libFuzzer needs, while the root package's own build is untouched.
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

/// One executable per fuzz target: `@_cdecl("LLVMFuzzerTestOneInput")`, main comes from libFuzzer.
func fuzzTarget(_ name: String) -> Target {
    .executableTarget(
        name: name,
        dependencies: [
            "SluiceCore", "FuzzSupport",
            .product(name: "NIOCore", package: "swift-nio"),
        ],
        swiftSettings: strict
    )
}

let package = Package(
    name: "sluice-fuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        // The same packages and versions as ../Package.swift, which SluiceCore needs.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    ],
    targets: [
        .target(
            name: "SluiceCore",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        .target(name: "CLibFuzzer"),
        .target(name: "FuzzSupport", dependencies: ["CLibFuzzer"], swiftSettings: strict),
        fuzzTarget("FuzzClientHello"),
        fuzzTarget("FuzzProtocolDetector"),
        fuzzTarget("FuzzRegistryLoader"),
        fuzzTarget("FuzzConfig"),
        fuzzTarget("FuzzHTTP1"),
        fuzzTarget("FuzzAccessLogLine"),
    ]
)
