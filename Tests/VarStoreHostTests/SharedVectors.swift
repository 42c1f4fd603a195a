import Foundation

/// ../shared beside the project root (DEVELOPERS.md): real vectors produced by others.
enum SharedVectors {
    static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }  // Tests/VarStoreHostTests/<file> → package root
        return url.deletingLastPathComponent().appendingPathComponent("shared")
    }()

    static var available: Bool { FileManager.default.fileExists(atPath: root.appendingPathComponent("vectors").path) }

    static func url(_ relative: String) -> URL { root.appendingPathComponent(relative) }
}
