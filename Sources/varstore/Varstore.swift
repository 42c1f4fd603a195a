import ArgumentParser

@main
struct Varstore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "varstore",
        abstract: "UEFI variable service for confidential VMs: simulator, tools and benchmarks.",
        subcommands: [QTest.self, Create.self, Inspect.self, Enroll.self, List.self, Get.self, SetCommand.self, Delete.self, Import.self, Export.self,
                      Sign.self, Verify.self, Keyslot.self, Rekey.self, Upgrade.self, Demo.self, Bench.self])
}
