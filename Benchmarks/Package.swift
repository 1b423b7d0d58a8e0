// swift-tools-version:6.1
// Kernels of the storage engine, measured with ordo-one/benchmark. A separate package (as in swift-nio), so the
// root package's `swift build` and `swift test` never compile the benchmark tool.
import PackageDescription

let package = Package(
    name: "tally-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.0", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "StoreBenchmarks",
            dependencies: [
                .product(name: "TallyStore", package: "main"),
                .product(name: "TallyWorkloads", package: "main"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "StoreBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
