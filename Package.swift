// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "tally",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "TallyStore", targets: ["TallyStore"]),
        .library(name: "TallyWorkloads", targets: ["TallyWorkloads"]),
        .library(name: "TallyTracking", targets: ["TallyTracking"]),
        .library(name: "TallyServer", targets: ["TallyServer"]),
        .executable(name: "tally", targets: ["tally"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.4.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.70.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.5.0"),
        // Already in the graph through Hummingbird; named so the server's own services can use it.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.0.0"),
        // Password hashing (scrypt) and token digests for access control.
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.0.0"),
        // TLS for `tally server --tls-cert/--tls-key` (HummingbirdTLS is Hummingbird's; PostgresNIO needs it too).
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.30.0"),
        // The PostgreSQL metadata backend.
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.25.0"),
        // HTTP(S) client: `tally import` from a running MLflow server, `tally export` to one, and S3 (signed by hand,
        // SigV4 over swift-crypto: there is no S3 SDK among this machine's packages).
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        // The Prometheus text format of `tally server --expose-prometheus` (its swift-metrics and swift-atomics are
        // already in the graph through Hummingbird and swift-nio).
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.0"),
    ],
    targets: [
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        // gzip and deflate request bodies (OTLP/HTTP's `Content-Encoding`).
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "CTallyShims"),
        .systemLibrary(name: "CSQLite3", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .target(
            name: "TallyStore",
            dependencies: [
                "CZstd", "CLZ4", "CTallyShims",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(name: "TallyWorkloads", swiftSettings: swiftSettings),
        .target(
            name: "TallyServer",
            dependencies: [
                "TallyStore", "TallyTracking", "CZstd", "CZlib",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            exclude: ["UI/Assets"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TallyTracking",
            dependencies: [
                "TallyStore", "CSQLite3", "CZstd",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "tally",
            dependencies: [
                "CTallyShims",
                "TallyStore",
                "TallyTracking",
                "TallyServer",
                "TallyWorkloads",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                // `tally bench postgres` measures PostgresNIO's own async path beside the metadata store's pool.
                .product(name: "PostgresNIO", package: "postgres-nio"),
                // and PostgresNIO's protocol driven by the calling thread over an embedded channel.
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TallyStoreTests",
            dependencies: ["TallyStore", "TallyWorkloads", "CTallyShims"],
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TallyTrackingTests",
            dependencies: ["TallyTracking", "TallyStore", "TallyWorkloads"],
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TallyServerTests",
            dependencies: [
                "TallyServer", "TallyTracking", "TallyStore", "TallyWorkloads",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
