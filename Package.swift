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
        .executable(name: "varstore", targets: ["varstore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .target(
            name: "VarStoreCore",
            swiftSettings: [.enableExperimentalFeature("StrictConcurrency")]
        ),
        .target(
            name: "VarStoreHost",
            dependencies: ["VarStoreCore"]
        ),
        .executableTarget(
            name: "varstore",
            dependencies: [
                "VarStoreCore", "VarStoreHost",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "VarStoreCoreTests",
            dependencies: ["VarStoreCore", "VarStoreHost"]
        ),
        .testTarget(
            name: "VarStoreHostTests",
            dependencies: ["VarStoreCore", "VarStoreHost"]
        ),
    ]
)
