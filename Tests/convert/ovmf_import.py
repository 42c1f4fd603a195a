#!/usr/bin/env python3
"""Imports every OVMF_VARS*.fd of Debian's ovmf package into an encrypted image and checks
that the image lists exactly the variables virt-fw-vars (PyPI virt-firmware) reads from the
same file: names, GUIDs, attributes, data, times, in order; then exports the image back into
the file's layout and checks that virt-fw-vars reads the same variables from the result.
Usage: ovmf_import.py PATH-TO-varstore [OVMF-DIRECTORY]"""
import glob, json, os, subprocess, sys, tempfile

def main(binary, directory="/usr/share/OVMF"):
    files = sorted(glob.glob(os.path.join(directory, "OVMF_VARS*.fd")))
    assert files, f"no OVMF_VARS*.fd in {directory}"
    work = tempfile.mkdtemp(prefix="varstore-ovmf-")
    key = os.path.join(work, "key")
    open(key, "wb").write(os.urandom(64))
    for index, fd in enumerate(files):
        reference = os.path.join(work, f"ref{index}.json")
        subprocess.run(["virt-fw-vars", "-i", fd, "--output-json", reference], check=True, capture_output=True)
        image = os.path.join(work, f"vars{index}.img")
        subprocess.run([binary, "create", image, "--size", "2M", "--key-file", key], check=True, capture_output=True)
        subprocess.run([binary, "import", image, fd, "--key-file", key], check=True, capture_output=True)
        ours = json.loads(subprocess.run([binary, "list", image, "--json", "--key-file", key], check=True,
                                         capture_output=True, text=True).stdout)["variables"]
        theirs = json.load(open(reference))["variables"]
        def normal(v):  # virt-fw-vars leaves out an all-zero time
            return (v["name"], v["guid"], v["attr"], v["data"], v.get("time", "0" * 32))
        assert [normal(v) for v in ours] == [normal(v) for v in theirs], (fd, [normal(v)[:3] for v in ours][:5])
        # And back: exported into the same file's layout, virt-fw-vars reads what it read before.
        exported = os.path.join(work, f"out{index}.fd")
        subprocess.run([binary, "export", image, exported, "--template", fd, "--key-file", key],
                       check=True, capture_output=True)
        again = os.path.join(work, f"again{index}.json")
        subprocess.run(["virt-fw-vars", "-i", exported, "--output-json", again], check=True, capture_output=True)
        assert [normal(v) for v in json.load(open(again))["variables"]] == [normal(v) for v in theirs], fd
        print(f"ovmf import: {os.path.basename(fd)}: {len(ours)} variables, as virt-fw-vars reads them, and back")

if __name__ == "__main__":
    main(*sys.argv[1:])
