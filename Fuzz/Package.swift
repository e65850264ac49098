// swift-tools-version:6.0
// libFuzzer targets for Sluice's hostile-input parsers. Kept out of the root package so that
// `swift build` / `swift test` there never see the fuzzer flags. Build and run with `scripts/fuzz`.
//
// SluiceCore comes from the root package by path (its SluiceCore library product). The
// -sanitize=fuzzer,address flags that scripts/fuzz passes apply to every Swift target of this
// build, dependencies included, so the parsers are instrumented for coverage as libFuzzer
// needs, while the root package's own build is untouched.
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
            .product(name: "SluiceCore", package: "sluice"), .product(name: "SluiceQUIC", package: "sluice"), "FuzzSupport",
            .product(name: "NIOCore", package: "swift-nio"),
        ],
        swiftSettings: strict
    )
}

let package = Package(
    name: "sluice-fuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        // Named: a path dependency's identity is its folder's name, which differs by checkout.
        .package(name: "sluice", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .target(name: "CLibFuzzer"),
        .target(name: "FuzzSupport", dependencies: ["CLibFuzzer"], swiftSettings: strict),
        fuzzTarget("FuzzClientHello"),
        fuzzTarget("FuzzProtocolDetector"),
        fuzzTarget("FuzzRegistryLoader"),
        fuzzTarget("FuzzConfig"),
        fuzzTarget("FuzzHTTP1"),
        fuzzTarget("FuzzAuthority"),
        fuzzTarget("FuzzAccessLogLine"),
        fuzzTarget("FuzzDNSMessage"),
        fuzzTarget("FuzzQUICInitial"),
        fuzzTarget("FuzzHTTP2Frames"),
    ]
)
