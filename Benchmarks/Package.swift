// swift-tools-version:6.1
// Micro-benchmarks for Sluice's hot pure functions, in a package of their own so that the
// root `swift build` neither resolves nor builds ordo-one/benchmark and its dependencies.
//
//   cd Benchmarks && swift package benchmark            # run all, with allocation counts
//   cd Benchmarks && swift package benchmark --filter Registry
//
// SluiceCore comes from the root package by path (its SluiceCore library product): the code
// measured is the code shipped, with no copy or symlink.
import PackageDescription

let package = Package(
    name: "SluiceBenchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        // Named: a path dependency's identity is its folder's name, which differs by checkout.
        .package(name: "sluice", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        // Only the malloc interposer trait: allocation counts are what we want from it, and the
        // ARC runtime interposer (a default trait on Linux + Swift 6.3) needs a package that is
        // not on this machine's mirror.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "SluiceCoreBenchmarks",
            dependencies: [
                .product(name: "SluiceCore", package: "sluice"),
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/SluiceCoreBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
