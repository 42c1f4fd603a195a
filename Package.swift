// swift-tools-version:6.1
// Layers point one way: transports → service → store (→ storage, in later issues).
// VarStoreCore is freestanding (no Foundation) so an SVSM can link it as Embedded Swift;
// everything that touches files, JSON or the terminal lives in VarStoreHost and `varstore`.
import PackageDescription

let package = Package(
    name: "VarStore",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "VarStoreCore", targets: ["VarStoreCore"]),
        .library(name: "VarStoreCrypto", targets: ["VarStoreCrypto"]),
        // The C ABI (include/varstore.h) as a shared library, for C hosts and the C test.
        .library(name: "VarStoreSVSM", type: .dynamic, targets: ["VarStoreSVSM"]),
        .executable(name: "varstore", targets: ["varstore"]),
        // The reference witness (spec/rollback.md): its own product, so the image tools and the
        // embedded build never pull in a server stack.
        .executable(name: "varstore-witness", targets: ["varstore-witness"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    ],
    targets: [
        .target(
            name: "VarStoreCore",
            swiftSettings: [
                .enableExperimentalFeature("StrictConcurrency"),
                // Release builds specialise the core's generics across modules (spec/benchmark.md).
                // The runtime exclusivity checks stay: turning them off would win about a quarter
                // of a request, but they are a safety check, and no check is traded for time.
                .unsafeFlags(["-cross-module-optimization"], .when(configuration: .release)),
            ]
        ),
        // libcrypto (OpenSSL 3, Debian libssl-dev) behind VarStoreCore's AuthenticationCrypto.
        .systemLibrary(
            name: "CLibcrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .target(
            name: "VarStoreCrypto",
            dependencies: ["VarStoreCore", "CLibcrypto"]
        ),
        // include/varstore.h, the C ABI's header, as a module the Swift side implements.
        .systemLibrary(name: "CVarStore", path: "include"),
        .target(
            name: "VarStoreSVSM",
            dependencies: ["VarStoreCore", "VarStoreCrypto", "CVarStore"]
        ),
        // libcryptsetup (Debian libcryptsetup-dev): creating images and managing keyslots.
        .systemLibrary(
            name: "CLibcryptsetup",
            pkgConfig: "libcryptsetup",
            providers: [.apt(["libcryptsetup-dev"])]
        ),
        .target(
            name: "VarStoreHost",
            dependencies: ["VarStoreCore", "VarStoreCrypto", "CLibcrypto", "CLibcryptsetup"]
        ),
        // Counts the process's heap allocations for `varstore bench` (glibc only; spec/benchmark.md).
        .target(name: "CAllocationCounter"),
        // `qtest --witness`'s HTTP: libcurl, loaded only when a witness is used (not at start-up).
        .target(name: "CWitnessHTTP", linkerSettings: [.linkedLibrary("dl")]),
        .executableTarget(
            name: "varstore",
            dependencies: [
                "VarStoreCore", "VarStoreCrypto", "VarStoreHost", "CAllocationCounter", "CWitnessHTTP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            // Release builds link the Swift runtime and Foundation into the executable: every
            // command is a short process, and resolving their symbols at each start took about
            // 4 ms of it (spec/benchmark.md, "Provisioning"). libcrypto and libcryptsetup stay
            // shared (the system's).
            swiftSettings: [.unsafeFlags(["-static-stdlib"], .when(platforms: [.linux], configuration: .release))],
            linkerSettings: [.unsafeFlags(["-static-stdlib"], .when(platforms: [.linux], configuration: .release))]
        ),
        // HTTP on loopback (Hummingbird), the ledger in SQLite (GRDB); reports parsed and
        // checked by the core's own WitnessReport, MACs over libcrypto's SHA-256.
        .executableTarget(
            name: "varstore-witness",
            dependencies: [
                "VarStoreCore", "VarStoreCrypto",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Test doubles (fault-injecting and flaky flash, flat guest memory): not shipped.
        .target(
            name: "VarStoreTestSupport",
            dependencies: ["VarStoreCore"],
            path: "Tests/VarStoreTestSupport"
        ),
        // Tests mirror the sources: one folder per VarStoreCore folder.
        .testTarget(
            name: "VarStoreCoreTests",
            dependencies: ["VarStoreCore", "VarStoreCrypto", "VarStoreHost", "VarStoreTestSupport"]
        ),
        // End to end: `varstore qtest --witness` against a `varstore-witness serve` the tests
        // start on 127.0.0.1 (both binaries from the build directory).
        .testTarget(
            name: "WitnessTests",
            dependencies: ["VarStoreCore", "VarStoreCrypto", "VarStoreHost"]
        ),
        .testTarget(
            name: "VarStoreHostTests",
            dependencies: ["VarStoreCore", "VarStoreCrypto", "VarStoreHost", "VarStoreTestSupport"]
        ),
    ]
)
