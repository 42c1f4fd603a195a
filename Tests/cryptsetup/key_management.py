#!/usr/bin/env python3
"""cryptsetup's own key management on a varstore image, as an operator runs it (issue 17).

Each command of spec/storage.md's table ("cryptsetup on an image") is applied to one image, and
after each the image is opened with `varstore` and must hold every variable; the commands that
cannot be supported must fail to open with the named error and leave the image as it was.
Needs root (loop devices for `cryptsetup reencrypt`) and cryptsetup; CI runs as root.

Usage: key_management.py PATH-TO-varstore [PATH-TO-svsm_test]
With svsm_test (Tests/c/svsm_test.c), the reencrypted image and the version-1 vector are also
opened and written through the C ABI, with the volume key and with the key file.
"""
import hashlib, json, os, shutil, subprocess, sys, tempfile

VARSTORE = os.path.abspath(sys.argv[1])
SVSM_TEST = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else None
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KEYS = os.path.join(ROOT, "images", "secureboot-keys")
VECTOR = os.path.join(ROOT, "Tests", "Vectors", "images")
GLOBAL = "8be4df61-93ca-11d2-aa0d-00e098032b8c"
# Fast key derivation for the slots cryptsetup makes here (key files are random bytes).
FAST = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"]


def run(*args, ok=True):
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if ok and result.returncode != 0:
        raise SystemExit(f"FAILED: {' '.join(map(str, args))}\n{result.stdout}{result.stderr}")
    return result


def varstore(*args, ok=True):
    return run(VARSTORE, *args, ok=ok)


def secret(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, data)
    os.close(fd)
    return path


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def variables(image, *key):
    return json.loads(varstore("list", image, *key, "--json").stdout)["variables"]


def inspect(image, *key):
    return json.loads(varstore("inspect", image, *key, "--json").stdout)


def volume_key(image, key, out):
    run("cryptsetup", "luksDump", "-q", "--dump-volume-key", "--volume-key-file", out, "--key-file", key, image)
    data = open(out, "rb").read()
    os.chmod(out, 0o600)
    return data


def slot_of(image, key):
    """The keyslot `key` opens (reencrypt keeps one slot, and may renumber it)."""
    out = run("cryptsetup", "open", "--test-passphrase", "-v", "--key-file", key, image).stdout
    return out.split("Key slot ")[1].split()[0]


def reencrypt(image, key, *options):
    with Loop(image) as device:
        run("cryptsetup", "reencrypt", "-q", *FAST, *options, "--key-file", key, "--key-slot", slot_of(image, key), device)


class Loop:
    """`cryptsetup reencrypt` works on a block device: the image on a loop device."""

    def __init__(self, image):
        self.image = image

    def __enter__(self):
        self.device = run("losetup", "-f", "--show", self.image).stdout.strip()
        return self.device

    def __exit__(self, *exc):
        run("losetup", "-d", self.device)


def main():
    if os.geteuid() != 0:
        print("SKIP: cryptsetup key management needs root (loop devices); CI runs as root")
        return
    for tool in ("cryptsetup", "losetup"):
        if shutil.which(tool) is None:
            print(f"SKIP: {tool} is not installed (Debian cryptsetup-bin, util-linux)")
            return
    work = tempfile.mkdtemp(prefix="varstore-cryptsetup-")
    try:
        check_every_command(work)
        if SVSM_TEST:
            check_the_c_abi_after_reencrypt(work)
        check_the_version_one_vector(work)
    finally:
        shutil.rmtree(work)
    print("cryptsetup key management: every command kept the variables")


def check_every_command(work):
    k = secret(f"{work}/k", os.urandom(64))
    k2 = secret(f"{work}/k2", os.urandom(64))
    k3 = secret(f"{work}/k3", os.urandom(64))
    img = f"{work}/vars.img"
    # Room for 4 keyslots: two in use at most, and `reencrypt` needs one more for the new
    # volume key's slot and one for its resilience area (spec/storage.md).
    varstore("create", img, "--size", "2M", "--key-file", k, "--keyslots", "4")
    varstore("enroll", img, "--key-file", k, "--pk", f"{KEYS}/PK.crt", "--kek", f"{KEYS}/KEK.crt",
             "--db", f"{KEYS}/db.crt", "--secure-boot")
    data = secret(f"{work}/data", os.urandom(3000))
    varstore("set", img, "BigOne", "--guid", GLOBAL, "--attributes", "0x7", "--data-file", data, "--key-file", k)
    varstore("set", img, "Small", "--guid", GLOBAL, "--attributes", "0x7", "--hex", "0102", "--key-file", k)
    expected = variables(img, "--key-file", k)
    assert {"PK", "KEK", "db", "BigOne", "Small"} <= {v["name"] for v in expected}, expected
    uuid = inspect(img)["uuid"]
    assert inspect(img, "--key-file", k)["store_version"] == 2

    def holds(step, *key):
        got = variables(img, *key)
        assert got == expected, f"after {step}: {got}"
        facts = inspect(img, *key)
        assert facts["uuid"].lower() == uuid.lower() and facts["store_version"] == 2, facts
        print(f"  {step}: {len(got)} variables, keyslots {facts['keyslots']}")

    def refused(step, message, *key):
        """Opening fails with the named error, and neither a read nor a write changes a byte."""
        before = digest(img)
        for command in (["list", img, *key], ["set", img, "Refused", "--guid", GLOBAL, "--attributes", "0x7",
                                               "--hex", "01", *key]):
            result = varstore(*command, ok=False)
            assert result.returncode == 1 and message in result.stderr, f"after {step}: {result.stderr}"
        assert digest(img) == before, f"after {step}: the image changed"
        print(f"  {step}: refused ({message})")

    holds("create, enroll, set", "--key-file", k)

    run("cryptsetup", "luksAddKey", "-q", *FAST, "--key-file", k, img, k2)
    holds("luksAddKey (new key file)", "--key-file", k2)
    holds("luksAddKey (old key file)", "--key-file", k)

    run("cryptsetup", "luksChangeKey", "-q", *FAST, "--key-file", k2, img, k3)
    holds("luksChangeKey", "--key-file", k3)
    assert varstore("list", img, "--key-file", k2, ok=False).returncode == 1

    run("cryptsetup", "luksKillSlot", "-q", "--key-file", k, img, slot_of(img, k3))
    holds("luksKillSlot", "--key-file", k)
    assert varstore("list", img, "--key-file", k3, ok=False).returncode == 1

    # PBKDF2 → Argon2id: the host tools price the slot from libcryptsetup's view and open it.
    run("cryptsetup", "luksConvertKey", "-q", "--key-file", k, "--pbkdf", "argon2id", "--pbkdf-memory", "32768",
        "--pbkdf-force-iterations", "4", img)
    holds("luksConvertKey (argon2id)", "--key-file", k)
    assert [s["kdf"] for s in inspect(img)["keyslots"]] == ["argon2id"], inspect(img)

    backup = f"{work}/header.backup"
    run("cryptsetup", "luksHeaderBackup", "-q", "--header-backup-file", backup, img)
    run("cryptsetup", "luksAddKey", "-q", *FAST, "--key-file", k, img, k2)
    holds("luksAddKey after the backup", "--key-file", k2)
    run("cryptsetup", "luksHeaderRestore", "-q", "--header-backup-file", backup, img)
    holds("luksHeaderBackup / luksHeaderRestore", "--key-file", k)
    assert varstore("list", img, "--key-file", k2, ok=False).returncode == 1

    # reencrypt: a new volume key for every sector, the same cipher, sector size and UUID.
    old_key = volume_key(img, k, f"{work}/old.vk")
    reencrypt(img, k)
    new_key = volume_key(img, k, f"{work}/new.vk")
    assert new_key != old_key and len(new_key) == 64
    holds("reencrypt (new volume key)", "--key-file", k)
    holds("reencrypt, opened with the new volume key", "--volume-key-file", f"{work}/new.vk")
    result = varstore("list", img, "--volume-key-file", f"{work}/old.vk", ok=False)
    assert result.returncode == 1 and "wrong key" in result.stderr, result.stderr
    # And it stays writable: a write after the reencryption, then the next one on top of it.
    varstore("set", img, "After", "--guid", GLOBAL, "--attributes", "0x7", "--hex", "aa", "--key-file", k)
    expected = variables(img, "--key-file", k)
    holds("set after reencrypt", "--key-file", k)

    # A reencryption to what the store cannot read fails to open by name and writes nothing;
    # reencrypting back brings every variable back (the plaintext was kept throughout).
    for change, message in ((["--sector-size", "4096", "--force-offline-reencrypt"], "segment sector size"),
                            (["--cipher", "aes-cbc-essiv:sha256", "--key-size", "256"], "segment cipher")):
        reencrypt(img, k, *change)
        refused(f"reencrypt {' '.join(change)}", message, "--key-file", k)
        reencrypt(img, k, "--cipher", "aes-xts-plain64", "--key-size", "512", "--sector-size", "512")
        holds(f"reencrypt back from {' '.join(change)}", "--key-file", k)

    # AES-128-XTS (a 256-bit aes-xts-plain64 key) is still aes-xts-plain64 with 512-byte sectors.
    reencrypt(img, k, "--key-size", "256")
    holds("reencrypt --key-size 256", "--key-file", k)
    reencrypt(img, k, "--key-size", "512")

    # An unfinished reencryption: half the segment under each key. Refused by name until done.
    reencrypt(img, k, "--init-only")
    refused("reencrypt --init-only (unfinished)", "unfinished cryptsetup reencryption", "--key-file", k)
    with Loop(img) as device:
        run("cryptsetup", "reencrypt", "-q", "--resume-only", "--key-file", k, device)
    holds("reencrypt --resume-only", "--key-file", k)

    # luksUUID: the store's keys are bound to the UUID; a new one is refused by name, the old
    # one set back opens it again (cryptsetup writes it in lower case: the binding ignores case).
    run("cryptsetup", "luksUUID", "-q", "--uuid", "01234567-89ab-cdef-0123-456789abcdef", img)
    refused("luksUUID --uuid NEW", "was it changed (cryptsetup luksUUID)", "--key-file", k)
    run("cryptsetup", "luksUUID", "-q", "--uuid", uuid, img)
    holds("luksUUID --uuid OLD", "--key-file", k)


def check_the_c_abi_after_reencrypt(work):
    """The C ABI as an SVSM calls it, after a reencryption: given the new volume key (the
    master key then comes from the segment) and given the key file (the core's own PBKDF2
    keyslot reader). Each svsm_test run writes a variable through the SVSM call and the device
    and reads it back after re-creating the service. (A fresh image: svsm_test expects no PK.)"""
    k = secret(f"{work}/c.key", os.urandom(64))
    img = f"{work}/c.img"
    varstore("create", img, "--size", "1M", "--key-file", k, "--keyslots", "3")
    varstore("set", img, "Before", "--guid", GLOBAL, "--attributes", "0x7", "--hex", "01", "--key-file", k)
    reencrypt(img, k)
    volume_key(img, k, f"{work}/c.vk")
    run(SVSM_TEST, img, f"{work}/c.vk", "--volume-key")
    run(SVSM_TEST, img, k)
    names = {v["name"] for v in variables(img, "--key-file", k)}
    assert {"Before", "ViaSvsm"} <= names, names
    print("  C ABI after reencrypt: opened and written with the new volume key and with the key file")


def check_the_version_one_vector(work):
    """The image of before store version 2 upgrades with `varstore upgrade`, once."""
    img = f"{work}/v1.img"
    shutil.copyfile(f"{VECTOR}/v1-store.img", img)
    key = secret(f"{work}/v1.key", open(f"{VECTOR}/v1-store.key", "rb").read())
    expected = json.load(open(f"{VECTOR}/v1-store.json"))["variables"]
    assert inspect(img, "--key-file", key)["store_version"] == 1
    first = json.loads(varstore("upgrade", img, "--key-file", key, "--json").stdout)
    assert first["upgraded"] is True and first["old_store_version"] == 1 and first["store_version"] == 2, first
    second = json.loads(varstore("upgrade", img, "--key-file", key, "--json").stdout)
    assert second["upgraded"] is False and second["store_version"] == 2, second
    assert variables(img, "--key-file", key) == expected
    print(f"  the version-1 vector: upgraded to store version 2, generation {first['old_generation']} → {first['generation']}")


if __name__ == "__main__":
    main()
