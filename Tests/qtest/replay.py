#!/usr/bin/env python3
"""Replays the recorded OVMF boots (Tests/Vectors/ovmf, format UVTRACE1) through the
`varstore qtest` binary twice: through the uefi-vars device by DMA (BUFFER_SIZE = 64 KiB, as
edk2's QemuMmio sets it) and through the `svsm` command (RAX = (4 << 32) | 1, RCX = the
page-aligned buffer, RDX = 64 KiB, as edk2's VirtMmSvsmComm calls it). Every reply must be the
same bytes with the same outcome. A recorded machine reset (HRST) restarts the simulator on its
JSON store: non-volatile variables stay, everything else goes, as on a real reset.

Usage: replay.py PATH-TO-varstore
"""
import base64, os, shutil, struct, subprocess, sys, tempfile

DEVICE = 0xFEF10000
BUFFER = 0x100000            # page-aligned, as VirtMmCommunicationDxe allocates it
BUFFER_SIZE = 0x10000
VECTORS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Vectors", "ovmf")
TRACES = ["a-first-boot-empty", "b-second-boot", "d-setvar-reset", "d2-reload-after-setvar"]
# The device's CMD_STS and the SVSM result code name the same outcomes.
SVSM_TO_DEVICE = {0: 0x00, 0x80000006: 0x11, 0x80000005: 0x12}


def records(path):
    data = open(path, "rb").read()
    assert data[:8] == b"UVTRACE1", f"{path}: not a UVTRACE1 file"
    offset = 16
    while offset + 24 <= len(data):
        tag, seq, _mode, _status, length, _arg = struct.unpack("<4sIHHIQ", data[offset:offset + 24])
        yield tag, seq, data[offset + 24:offset + 24 + length]
        offset += 24 + length


class Simulator:
    def __init__(self, binary, store):
        self.binary, self.store, self.proc = binary, store, None
        self.start()

    def start(self):
        self.stop()
        self.proc = subprocess.Popen([self.binary, "qtest", "--json", self.store], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
        self.send(f"writel {DEVICE + 4:#x} {BUFFER_SIZE:#x}")
        self.send(f"writel {DEVICE + 8:#x} {BUFFER & 0xFFFFFFFF:#x}")
        self.send(f"writel {DEVICE + 12:#x} {BUFFER >> 32:#x}")

    def stop(self):
        if self.proc:
            self.proc.stdin.close()
            self.proc.wait()
            self.proc = None

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline().rstrip("\n")
        assert reply.startswith("OK"), f"{line[:60]!r}: {reply!r}"
        return reply

    def exchange(self, request, transport):
        self.send(f"b64write {BUFFER:#x} {len(request)} {base64.b64encode(request).decode()}")
        if transport == "dma":
            self.send(f"writew {DEVICE + 2:#x} 0x2")
            status = int(self.send(f"readw {DEVICE + 2:#x}").split()[1], 16)
        else:
            rax = int(self.send(f"svsm {4 << 32 | 1:#x} {BUFFER:#x} {BUFFER_SIZE:#x}").split()[1], 16)
            status = SVSM_TO_DEVICE.get(rax, rax)
        reply = base64.b64decode(self.send(f"b64read {BUFFER:#x} {len(request)}").split()[1])
        return status, reply


def replies(binary, trace, transport, scratch):
    store = os.path.join(scratch, f"{trace}-{transport}.json")
    shutil.copyfile(os.path.join(VECTORS, f"{trace}.before.json"), store)
    os.chmod(store, 0o600)
    simulator = Simulator(binary, store)
    out = []
    for tag, seq, payload in records(os.path.join(VECTORS, f"{trace}.bin")):
        if tag == b"HRST":
            simulator.start()
        elif tag == b"REQ ":
            out.append((seq, *simulator.exchange(payload, transport)))
    simulator.stop()
    return out


def main():
    binary = sys.argv[1]
    passed = failed = 0
    with tempfile.TemporaryDirectory() as scratch:
        for trace in TRACES:
            dma = replies(binary, trace, "dma", scratch)
            svsm = replies(binary, trace, "svsm", scratch)
            assert len(dma) > 800 and len(dma) == len(svsm), (trace, len(dma), len(svsm))
            differing = [(a[0], a[1], b[1]) for a, b in zip(dma, svsm) if a != b]
            print(f"{trace}: {len(dma)} requests, {len(dma) - len(differing)} replies identical through "
                  f"`svsm` and DMA")
            for seq, theirs, ours in differing[:5]:
                print(f"  seq {seq}: DMA status {theirs:#x}, svsm status {ours:#x}", file=sys.stderr)
            same_store = open(os.path.join(scratch, f"{trace}-dma.json")).read() == \
                open(os.path.join(scratch, f"{trace}-svsm.json")).read()
            print(f"{trace}: JSON stores after the boot {'identical' if same_store else 'DIFFER'}")
            if differing or not same_store:
                failed += 1
            else:
                passed += 1
    print(f"replay: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
