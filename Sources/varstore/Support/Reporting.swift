import ArgumentParser
import Foundation

/// Runs a command's work; any failure other than a usage error becomes one line on stderr,
/// `varstore COMMAND: what went wrong`, and exit status 1 (spec/cli.md, "Errors").
func reporting(_ command: String, _ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ValidationError {
        fail(command, error.message)
    } catch {
        fail(command, describe(error))
    }
}

/// Prints the one error line and exits with status 1.
func fail(_ command: String, _ message: String) -> Never {
    FileHandle.standardError.write("varstore \(command): \(message)\n".data(using: .utf8)!)
    Varstore.exit(withError: ExitCode(1))
}

/// A progress line for a slow step, on a terminal only (scripts see one line per error).
func progress(_ command: String, _ step: String) {
    if isatty(2) == 1 { FileHandle.standardError.write("varstore \(command): \(step)…\n".data(using: .utf8)!) }
}

/// A warning on stderr; the command goes on.
func warn(_ message: String) {
    FileHandle.standardError.write("varstore: warning: \(message)\n".data(using: .utf8)!)
}
