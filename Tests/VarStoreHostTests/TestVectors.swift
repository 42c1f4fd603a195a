import Foundation

/// Tests/Vectors: real vectors produced by others, carried by the repository (see its
/// README.md for where each came from), so a fresh clone runs every test.
enum TestVectors {
    static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<2 { url.deleteLastPathComponent() }  // Tests/VarStoreHostTests/<file> → Tests
        return url.appendingPathComponent("Vectors")
    }()

    static func url(_ relative: String) -> URL { root.appendingPathComponent(relative) }
}
