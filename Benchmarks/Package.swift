// swift-tools-version:6.1
// Micro-benchmarks for Sluice's hot pure functions, in a package of their own so that the
// root `swift build` neither resolves nor builds ordo-one/benchmark and its dependencies.
//
//   cd Benchmarks && swift package benchmark            # run all, with allocation counts
//   cd Benchmarks && swift package benchmark --filter Registry
//
// Why SluiceCore is compiled here from a symlink (Sources/SluiceCore -> ../../Sources/SluiceCore)
// instead of `.package(path: "..")`: the root package exports only the `sluice` executable, and
// SwiftPM lets another package use a dependency's *products* only. Once the root declares
// `.library(name: "SluiceCore", targets: ["SluiceCore"])`, replace the symlinked target with
// `.package(path: "..")` and `.product(name: "SluiceCore", package: "main")`.
import PackageDescription

let package = Package(
    name: "SluiceBenchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        // Same minimums as the root Package.swift, for the same SluiceCore.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        // Only the malloc interposer trait: allocation counts are what we want from it, and the
        // ARC runtime interposer (a default trait on Linux + Swift 6.3) needs a package that is
        // not on this machine's mirror.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .target(
            name: "SluiceCore",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
            ],
            path: "Sources/SluiceCore",
            swiftSettings: [
                .enableUpcomingFeature("ExistentialAny"),
                .enableUpcomingFeature("InternalImportsByDefault"),
            ]
        ),
        .executableTarget(
            name: "SluiceCoreBenchmarks",
            dependencies: [
                "SluiceCore",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/SluiceCoreBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
