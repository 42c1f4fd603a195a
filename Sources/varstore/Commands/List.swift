import ArgumentParser
import Foundation
import VarStoreHost

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the non-volatile variables in an image.")

    @OptionGroup var image: ImageArguments
    @Flag(help: "Print QEMU's uefi-vars JSON v2 instead of a table.")
    var json = false

    func run() throws {
        try reporting("list") {
            let log = try image.access.openStore()
            if json {
                print(QEMUJSONStore.render(log.live.all))
                return
            }
            for variable in log.live.all {
                var line = variable.guid.text + "  " + variable.name.text.padding(toLength: 24, withPad: " ", startingAt: 0)
                line += " " + attributeText(variable.attributes).padding(toLength: 12, withPad: " ", startingAt: 0)
                line += String(format: " %6d bytes", variable.data.count)
                if let time = variable.timestamp, variable.attributes.contains(.timeBasedAuthenticatedWriteAccess) {
                    line += String(format: "  %04d-%02d-%02d %02d:%02d:%02d", time.year, time.month, time.day, time.hour, time.minute, time.second)
                }
                print(line)
            }
        }
    }
}
