#!/usr/bin/env python3
"""End-to-end: drive `varstore qtest --json FILE` through its stdin/stdout exactly as an
external harness would drive `qemu-system-x86_64 -qtest stdio -device uefi-vars-x64,jsonfile=`.

Request bytes are built here from the documented layouts (spec/semantics.md, spec/mmio.md), independently of
the Swift code. Usage: session.py PATH-TO-varstore
"""
import json, os, struct, subprocess, sys, tempfile, uuid

DEVICE = 0xFEF10000
BUFFER = 0x100000
SMM_VARIABLE = uuid.UUID("ed32d533-99e6-4209-9cc0-2d72cdd998a7").bytes_le
VENDOR = uuid.UUID("3f1b2a4c-5d6e-4f70-8192-a3b4c5d6e7f8")
NOT_FOUND = 0x800000000000000E
INVALID_PARAMETER = 0x8000000000000002
SECURITY_VIOLATION = 0x800000000000001A
GLOBAL = uuid.UUID("8be4df61-93ca-11d2-aa0d-00e098032b8c")
IMAGE_SECURITY = uuid.UUID("d719b2cb-3d3a-4596-a3bc-dad00e67656f")

class QTest:
    def __init__(self, binary, *args):
        self.proc = subprocess.Popen([binary, "qtest", *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline().rstrip("\n")
        return reply

    def expect(self, line, reply):
        got = self.send(line)
        assert got == reply, f"{line!r}: expected {reply!r}, got {got!r}"

    def kill(self):
        self.proc.kill()
        self.proc.wait()

def write_secret(path, data):
    """A key or passphrase file as an operator makes one: readable by its owner only (varstore
    warns about others, on a line of its own)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, data if isinstance(data, bytes) else data.encode())
    os.close(fd)

def ucs2(name):
    return name.encode("utf-16-le") + b"\0\0"

def init(q):
    q.expect(f"readw {DEVICE:#x}", "OK 0x0000000000000ef1")
    q.expect(f"writew {DEVICE + 2:#x} 0x1", "OK")
    q.expect(f"readw {DEVICE + 2:#x}", "OK 0x0000000000000000")
    q.expect(f"writel {DEVICE + 4:#x} 0x10000", "OK")
    q.expect(f"writel {DEVICE + 8:#x} {BUFFER:#x}", "OK")
    q.expect(f"writel {DEVICE + 0xc:#x} 0x0", "OK")

def mm(q, function, body):
    payload = struct.pack("<QQ", function, 0) + body
    request = SMM_VARIABLE + struct.pack("<Q", len(payload)) + payload
    q.expect(f"write {BUFFER:#x} {len(request)} 0x{request.hex()}", "OK")
    q.expect(f"writew {DEVICE + 2:#x} 0x2", "OK")
    q.expect(f"readw {DEVICE + 2:#x}", "OK 0x0000000000000000")
    reply = q.send(f"read {BUFFER:#x} {len(request)}")
    assert reply.startswith("OK 0x"), reply
    data = bytes.fromhex(reply[5:])
    return struct.unpack_from("<Q", data, 32)[0], data

def set_variable(q, name, attributes, data, guid=VENDOR):
    n = ucs2(name)
    body = guid.bytes_le + struct.pack("<QQI", len(data), len(n), attributes) + n + data
    return mm(q, 3, body)[0]

def get_variable(q, name, size=64, guid=VENDOR):
    n = ucs2(name)
    body = guid.bytes_le + struct.pack("<QQI", size, len(n), 0) + n + bytes(size)
    status, data = mm(q, 1, body)
    length, = struct.unpack_from("<Q", data, 56)
    attributes, = struct.unpack_from("<I", data, 72)
    return status, attributes, data[76 + len(n):76 + len(n) + length] if status == 0 else b""

# Variables the service keeps for Secure Boot from power-on (none enrolled): volatile status
# variables, and the non-volatile CustomMode (60 + 22 + 1 bytes) and VendorKeysNv (60 + 26 + 1).
SERVICE = {"SetupMode", "SignatureSupport", "SecureBoot", "AuditMode", "DeployedMode", "CustomMode",
           "VendorKeysNv", "VendorKeys"}
SERVICE_NV_BYTES = 83 + 87

def enumerate_names(q, everything=False):
    names, name, guid = [], "", uuid.UUID(int=0)
    while True:
        n = ucs2(name) if name else b"\0\0"
        body = guid.bytes_le + struct.pack("<Q", 512) + n + bytes(512 - len(n))
        status, data = mm(q, 2, body)
        if status != 0:
            assert status == NOT_FOUND, hex(status)
            return names
        size, = struct.unpack_from("<Q", data, 56)
        name = data[64:64 + size - 2].decode("utf-16-le")
        guid = uuid.UUID(bytes_le=data[40:56])
        if everything or name not in SERVICE:
            names.append(name)

def query(q, attributes):
    status, data = mm(q, 4, struct.pack("<QQQI", 0, 0, 0, attributes))
    return (status,) + struct.unpack_from("<QQQ", data, 40)

def main(binary):
    store = os.path.join(tempfile.mkdtemp(prefix="varstore-qtest-"), "vars.json")
    q = QTest(binary, "--json", store)
    init(q)
    assert set_variable(q, "Greeting", 7, b"hello") == 0
    assert set_variable(q, "Scratch", 6, b"\x01\x02") == 0
    assert set_variable(q, "Greeting", 7 | 0x40, b" world") == 0
    assert get_variable(q, "Greeting") == (0, 7, b"hello world")
    assert get_variable(q, "Missing")[0] == NOT_FOUND
    assert set_variable(q, "Greeting", 6, b"x") == INVALID_PARAMETER
    assert enumerate_names(q) == ["Scratch", "Greeting"], enumerate_names(q)
    status, maximum, remaining, largest = query(q, 7)
    assert status == 0 and maximum == 0x40000 and remaining == 0x40000 - SERVICE_NV_BYTES - (60 + 18 + 11), (maximum, remaining)
    # The JSON file already holds the non-volatile variable, and of ours only it.
    saved = json.load(open(store))
    assert saved["version"] == 2
    ours = [(v["name"], v["attr"], v["data"]) for v in saved["variables"] if v["name"] not in SERVICE]
    assert ours == [("Greeting", 7, b"hello world".hex())], ours
    assert {v["name"] for v in saved["variables"]} - {"Greeting"} == {"CustomMode", "VendorKeysNv"}
    assert set_variable(q, "Scratch", 6, b"") == 0
    assert set_variable(q, "Scratch", 6, b"") == NOT_FOUND
    assert enumerate_names(q) == ["Greeting"]
    # A killed simulator restarts from the file: NV survives, volatile does not.
    assert set_variable(q, "Volatile", 6, b"v") == 0
    q.kill()
    q = QTest(binary, "--json", store)
    init(q)
    assert get_variable(q, "Greeting") == (0, 7, b"hello world")
    assert get_variable(q, "Volatile")[0] == NOT_FOUND
    assert set_variable(q, "Greeting", 7, b"") == 0
    q.proc.stdin.close()
    q.proc.wait()
    assert [v["name"] for v in json.load(open(store))["variables"] if v["name"] not in SERVICE] == []
    # A malformed store is refused with a message naming the problem, and left untouched.
    with open(store, "w") as f:
        f.write('{"version": 2, "variables": [{"guid": "nope", "name": "A", "attr": 7, "data": "00"}]}')
    bad = subprocess.run([binary, "qtest", "--json", store], input="", capture_output=True, text=True)
    assert bad.returncode != 0 and "variables[0].guid 'nope' is not a GUID" in bad.stderr, bad.stderr
    assert "nope" in open(store).read()
    secure_boot(binary)
    encrypted_image(binary)
    svsm_transport(binary)
    bad_input(binary)
    key_management(binary)
    operator_edges(binary)
    witness_answers(binary)
    print("qtest session: every check passed")

def bad_input(binary):
    """Every command given a wrong key, a damaged image, a malformed certificate, JSON with a
    bad field, bad hex or a bad GUID: exit status 1, exactly one line on stderr naming the
    problem, and the image byte for byte as it was."""
    import hashlib
    work = tempfile.mkdtemp(prefix="varstore-bad-")
    image, key, wrong = (os.path.join(work, n) for n in ("vars.img", "key", "wrong"))
    write_secret(key, os.urandom(64))
    write_secret(wrong, os.urandom(64))
    subprocess.run([binary, "create", image, "--size", "1M", "--key-file", key], check=True, capture_output=True)
    subprocess.run([binary, "set", image, "Keep", "--guid", str(VENDOR), "--hex", "01", "--key-file", key], check=True)
    damaged = os.path.join(work, "damaged.img")
    raw = bytearray(open(image, "rb").read())
    for offset in (0, 16384):
        raw[offset] ^= 0xFF  # both LUKS2 magics
    open(damaged, "wb").write(bytes(raw))
    open(os.path.join(work, "garbage.pem"), "w").write("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n")
    open(os.path.join(work, "bad.json"), "w").write('{"version": 2, "variables": [{"guid": "nope", "name": "A", "attr": 7, "data": "00"}]}')
    # A DER-looking file that is no certificate, an EC certificate (UEFI lists need RSA), a
    # valid RSA certificate for KEK beside a PK list that is not one, and an import larger
    # than the store: each must leave the image exactly as it was (nothing half-enrolled).
    open(os.path.join(work, "garbage.der"), "wb").write(b"\x30\x82\x01\x00" + os.urandom(256))
    run(work, "openssl", "req", "-new", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-subj", "/CN=ec/", "-keyout", "ec.key", "-out", "ec.crt")
    run(work, "openssl", "req", "-new", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=kek/",
        "-keyout", "kek.key", "-out", "kek.crt")
    open(os.path.join(work, "bad.esl"), "wb").write(os.urandom(60))
    huge = {"version": 2, "variables": [{"guid": str(VENDOR), "name": f"Big{i}", "attr": 7, "data": "ab" * 30000}
                                        for i in range(40)]}
    json.dump(huge, open(os.path.join(work, "huge.json"), "w"))
    taken = os.path.join(work, "taken")
    os.mkdir(taken)
    open(os.path.join(taken, "KEK.key"), "w").write("precious")
    digest = lambda path: hashlib.sha256(open(path, "rb").read()).hexdigest()
    before, damaged_before = digest(image), digest(damaged)
    cases = [
        (["list", image, "--key-file", wrong], "no keyslot opens"),
        (["list", damaged, "--key-file", key], "varstore list:"),
        (["inspect", damaged], "not a LUKS2 image"),
        (["set", image, "X", "--guid", str(VENDOR), "--hex", "0g", "--key-file", key], "hex"),
        (["set", image, "X", "--guid", "not-a-guid", "--hex", "00", "--key-file", key], "not a GUID"),
        (["set", image, "X", "--guid", str(VENDOR), "--hex", "00", "--key-file", wrong], "no keyslot opens"),
        (["enroll", image, "--kek", os.path.join(work, "garbage.pem"), "--key-file", key], "malformed PEM"),
        (["import", image, os.path.join(work, "bad.json"), "--key-file", key], "is not a GUID"),
        (["delete", image, "Missing", "--guid", str(VENDOR), "--key-file", key], "EFI_NOT_FOUND"),
        (["verify", image, "db", "--update", os.path.join(work, "bad.json"), "--key-file", key], "would be refused"),
        (["rekey", image, "--key-file", wrong], "no keyslot opens"),
        (["create", image, "--size", "1M", "--key-file", key], "already exists"),
        (["enroll", image, "--db", os.path.join(work, "garbage.der"), "--key-file", key], "not an X.509 certificate"),
        (["enroll", image, "--db", os.path.join(work, "ec.crt"), "--key-file", key], "not RSA"),
        (["enroll", image, "--kek", os.path.join(work, "kek.crt"), "--pk", os.path.join(work, "bad.esl"), "--key-file", key],
         "nothing was written"),
        (["enroll", image, "--kek", os.path.join(work, "kek.crt"), "--secure-boot", "--key-file", key], "nothing gives the image a PK"),
        (["enroll", image, "--test-keys", taken, "--key-file", key], "not overwriting keys"),
        (["import", image, os.path.join(work, "huge.json"), "--key-file", key], "would need"),
        (["import", image, os.path.join(work, "garbage.der"), "--key-file", key], "neither QEMU JSON nor an edk2 firmware volume"),
        (["keyslot", "add", image, "--volume-key-file", wrong, "--new-key-file", key], "a volume key opens no keyslot"),
        (["sign", "db", os.path.join(work, "bad.json"), os.path.join(work, "out.auth"), "--cert", os.path.join(work, "kek.crt"),
          "--key", os.path.join(work, "kek.key")], "neither a certificate (PEM or DER) nor EFI_SIGNATURE_LISTs"),
        (["list", os.path.join(work, "missing.img"), "--key-file", key], "no such file: "),
        (["enroll", image, "--pk", os.path.join(work, "kek.crt"), "--test-keys", os.path.join(work, "unused"), "--key-file", key],
         "--pk and --test-keys"),
    ]
    for args, expected in cases:
        result = subprocess.run([binary, *args], capture_output=True, text=True)
        lines = result.stderr.splitlines()
        assert result.returncode == 1 and len(lines) == 1 and expected in lines[0], (args, result.returncode, result.stderr)
        assert digest(image) == before and digest(damaged) == damaged_before, args
    assert digest(image) == before and digest(damaged) == damaged_before
    assert open(os.path.join(taken, "KEK.key")).read() == "precious" and sorted(os.listdir(taken)) == ["KEK.key"]
    print(f"qtest session: {len(cases)} kinds of bad input each get one line and leave the image as it was")

def svsm_transport(binary):
    """The `svsm` line command: an SVSM UEFI MM call (protocol 4, call 1) into the same
    service the uefi-vars device reaches."""
    q = QTest(binary)
    init(q)
    q.expect("svsm 0x6 0x400000001 0", "OK 0x0000000000000000 0x0000000100000001")
    name = ucs2("ViaSvsm")
    body = VENDOR.bytes_le + struct.pack("<QQI", 3, len(name), 7) + name + b"abc"
    payload = struct.pack("<QQ", 3, 0) + body
    request = SMM_VARIABLE + struct.pack("<Q", len(payload)) + payload
    q.expect(f"write {BUFFER:#x} {len(request)} 0x{request.hex()}", "OK")
    q.expect(f"svsm 0x400000001 {BUFFER:#x} {len(request)}", f"OK 0x0000000000000000 {BUFFER:#018x}")
    reply = bytes.fromhex(q.send(f"read {BUFFER:#x} {len(request)}")[5:])
    assert struct.unpack_from("<Q", reply, 32)[0] == 0
    assert get_variable(q, "ViaSvsm") == (0, 7, b"abc")
    q.expect(f"svsm 0x400000001 {BUFFER + 8:#x} 4096", f"OK 0x0000000080000003 {BUFFER + 8:#018x}")
    q.proc.stdin.close()
    q.proc.wait()
    print("qtest session: an SVSM call and the MMIO device reach the same service")

def encrypted_image(binary):
    """Serve from an encrypted image: write, SIGKILL, restart, read back; a wrong key fails
    with one clear line; nothing readable reaches the image file."""
    work = tempfile.mkdtemp(prefix="varstore-image-")
    image, key, other = (os.path.join(work, n) for n in ("vars.img", "key", "other"))
    write_secret(key, os.urandom(64))
    write_secret(other, os.urandom(64))
    subprocess.run([binary, "create", image, "--size", "1M", "--key-file", key], check=True, capture_output=True)
    secret = b"TopSecretPayload" * 4
    q = QTest(binary, "--image", image, "--key-file", key)
    init(q)
    assert set_variable(q, "ImageSecret", 7, secret) == 0
    assert set_variable(q, "ImageVolatile", 6, b"gone") == 0
    q.kill()                       # SIGKILL: nothing is flushed on the way out
    q = QTest(binary, "--image", image, "--key-file", key)
    init(q)
    assert get_variable(q, "ImageSecret") == (0, 7, secret)
    assert get_variable(q, "ImageVolatile")[0] == NOT_FOUND
    q.proc.stdin.close()
    q.proc.wait()
    raw = open(image, "rb").read()
    for pattern in (secret[:16], "ImageSecret".encode("utf-16-le"), b"ImageSecret"):
        assert pattern not in raw, pattern
    bad = subprocess.run([binary, "qtest", "--image", image, "--key-file", other], input="", capture_output=True, text=True)
    assert bad.returncode != 0 and "no keyslot opens" in bad.stderr, bad.stderr
    dump = subprocess.run(["cryptsetup", "luksDump", image], capture_output=True, text=True)
    assert dump.returncode == 0 and "aes-xts-plain64" in dump.stdout, dump.stderr
    # The data segment is what dm-crypt would show: take the volume key from cryptsetup's own
    # keyslot, decrypt segment sectors as aes-xts-plain64 with an independent XTS, and find
    # the store's superblock and record magics where spec/storage.md puts them.
    keydump = subprocess.run(["cryptsetup", "luksDump", "--dump-volume-key", "--batch-mode", "--key-file", key, image],
                             capture_output=True, text=True, check=True).stdout
    hexkey = "".join(keydump.split("MK dump:")[1].split()[:64])
    offset = int(dump.stdout.split("offset:")[1].split()[0])
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    def sector(n):
        decryptor = Cipher(algorithms.AES(bytes.fromhex(hexkey)), modes.XTS(n.to_bytes(16, "little"))).decryptor()
        return decryptor.update(raw[offset + 512 * n:offset + 512 * (n + 1)]) + decryptor.finalize()
    superblocks = [sector(n) for n in (0, 1) if sector(n)[:8] == b"VSSUPER2"]
    assert superblocks, (sector(0)[:8], sector(1)[:8])
    # Store version 2: version 2, reserved 0, then the 32-byte master key, the same in each slot.
    assert all(struct.unpack_from("<II", sb, 8) == (2, 0) for sb in superblocks)
    masters = {sb[16:48] for sb in superblocks}
    assert len(masters) == 1, "the slots carry different master keys"
    assert sector(2)[:4] == b"VSR1", sector(2)[:4]
    # The record header key is HKDF-SHA-256(master key, salt = the UUID in lower case, info
    # "varstore v2 record header"): with it, an independent AES-GCM opens the first record's
    # header (AAD = "VSR1" ‖ binding ‖ log sector 0, u64) — the keys follow the segment's data.
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    binding = dump.stdout.split("UUID:")[1].split()[0].lower().encode()
    header_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=binding, info=b"varstore v2 record header").derive(masters.pop())
    record = sector(2)
    plain = AESGCM(header_key).decrypt(record[4:16], record[16:64], b"VSR1" + binding + struct.pack("<Q", 0))
    assert len(plain) == 32 and struct.unpack_from("<Q", plain, 0)[0] >= 1, plain
    print("qtest session: an encrypted image survives SIGKILL and shows no plaintext")
    image_commands(binary, work, image, key)

def image_commands(binary, work, image, key):
    """list / get / set / delete / export / import on an image, through the CLI."""
    def run_cli(*args, ok=True):
        result = subprocess.run([binary, *args, "--key-file", key], capture_output=True, text=True)
        assert (result.returncode == 0) == ok, (args, result.stderr)
        return result
    vendor = str(VENDOR)
    run_cli("set", image, "CliVar", "--guid", vendor, "--hex", "0102ff")
    assert run_cli("get", image, "CliVar", "--guid", vendor).stdout.strip() == "0102ff"
    listed = json.loads(run_cli("list", image, "--json").stdout)
    assert {"name": "CliVar", "guid": vendor, "attr": 7, "data": "0102ff"} in listed["variables"], listed
    refused = run_cli("set", image, "SetupMode", "--attributes", "6", "--hex", "00", ok=False)
    assert "EFI_WRITE_PROTECTED" in refused.stderr and refused.stderr.count("\n") == 1, refused.stderr
    exported = os.path.join(work, "exported.json")
    assert json.loads(run_cli("export", image, exported, "--json").stdout)["format"] == "json"
    other = os.path.join(work, "other.img")
    subprocess.run([binary, "create", other, "--size", "1M", "--key-file", key], check=True, capture_output=True)
    assert json.loads(run_cli("import", other, exported, "--json").stdout)["format"] == "json"
    assert json.loads(run_cli("list", other, "--json").stdout) == json.load(open(exported))
    run_cli("delete", image, "CliVar", "--guid", vendor)
    assert "no variable CliVar" in run_cli("get", image, "CliVar", "--guid", vendor, ok=False).stderr
    print("qtest session: list, get, set, delete, export and import work on images")
    enrolled_image(binary, work, key)

def enrolled_image(binary, work, key):
    """The README's main job: an encrypted image enrolled for Secure Boot (Microsoft's keys and
    fresh test keys), which boots with SecureBoot = 1 and takes a db update signed with the
    test KEK; Microsoft's own dbx update applies as a signed append."""
    image, keys = os.path.join(work, "sb.img"), os.path.join(work, "test-keys")
    subprocess.run([binary, "create", image, "--size", "1M", "--key-file", key], check=True, capture_output=True)
    subprocess.run([binary, "enroll", image, "--key-file", key, "--microsoft", "--test-keys", keys, "--secure-boot"],
                   check=True, capture_output=True)
    for name in ("PK", "KEK", "db"):
        assert os.path.exists(os.path.join(keys, name + ".key")) and os.path.exists(os.path.join(keys, name + ".crt"))
        assert os.stat(os.path.join(keys, name + ".key")).st_mode & 0o777 == 0o600
    q = QTest(binary, "--image", image, "--key-file", key)
    init(q)
    assert get_variable(q, "SecureBoot", guid=GLOBAL) == (0, 6, b"\x01")
    assert get_variable(q, "SetupMode", guid=GLOBAL) == (0, 6, b"\x00")
    q.proc.stdin.close()
    q.proc.wait()
    run(work, "openssl", "req", "-new", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=extra db/",
        "-keyout", "extra.key", "-out", "extra.crt")
    run(work, "cert-to-efi-sig-list", "extra.crt", "extra.esl")
    update = os.path.join(work, "extra.auth")
    subprocess.run([binary, "sign", "db", os.path.join(work, "extra.esl"), update, "--append",
                    "--cert", os.path.join(keys, "KEK.crt"), "--key", os.path.join(keys, "KEK.key")], check=True)
    subprocess.run([binary, "set", image, "db", "--attributes", "0x67", "--data-file", update, "--key-file", key], check=True)
    db = subprocess.run([binary, "get", image, "db", "--key-file", key], check=True, capture_output=True, text=True).stdout
    assert open(os.path.join(work, "extra.esl"), "rb").read().hex() in db
    unsigned = subprocess.run([binary, "set", image, "db", "--attributes", "0x67", "--data-file",
                               os.path.join(work, "extra.esl"), "--key-file", key], capture_output=True, text=True)
    assert unsigned.returncode != 0 and "SetVariable returned" in unsigned.stderr, unsigned.stderr
    print("qtest session: an image enrolled with Microsoft's and test keys boots with SecureBoot = 1")
    # Rekey: a new volume key and secret, the same variables; a leftover from an interrupted
    # rekey (the half-written new image beside the old) changes nothing.
    listing = lambda k: subprocess.run([binary, "list", image, "--json", "--key-file", k], check=True,
                                       capture_output=True, text=True).stdout
    before = listing(key)
    open(image + ".rekey", "wb").write(b"half-written")
    newkey = os.path.join(work, "newkey")
    write_secret(newkey, os.urandom(64))
    subprocess.run([binary, "rekey", image, "--key-file", key, "--new-key-file", newkey], check=True, capture_output=True)
    assert listing(newkey) == before and not os.path.exists(image + ".rekey")
    old = subprocess.run([binary, "list", image, "--key-file", key], capture_output=True, text=True)
    assert old.returncode != 0 and "no keyslot opens" in old.stderr, old.stderr
    print("qtest session: rekey keeps every variable under a new volume key")

def key_management(binary):
    """Keyslots and rekey as an operator uses them: a default image has room to add a slot,
    rekey keeps every slot (number and KDF), the mode, and a generation a rollback anchor
    accepts; a slot without its secret is not silently dropped; a running simulator locks the
    image against other writers."""
    work = tempfile.mkdtemp(prefix="varstore-keys-")
    image, k1, k2, phrase = (os.path.join(work, n) for n in ("vars.img", "k1", "k2", "phrase"))
    write_secret(k1, os.urandom(64))
    write_secret(k2, os.urandom(64))
    write_secret(phrase, "correct horse battery staple\n")
    cli = lambda *args, ok=True: check_cli(binary, args, ok)
    created = json.loads(cli("create", image, "--key-file", k1, "--json").stdout)
    assert created["keyslot_room"] == 2, created
    cli("set", image, "Kept", "--guid", str(VENDOR), "--hex", "c0ffee", "--key-file", k1)
    assert json.loads(cli("keyslot", "add", image, "--key-file", k1, "--new-passphrase-file", phrase, "--json").stdout) == {"keyslot": 1}
    slots = json.loads(cli("keyslot", "list", image, "--json").stdout)["keyslots"]
    assert slots == [{"slot": 0, "kdf": "pbkdf2"}, {"slot": 1, "kdf": "argon2id"}], slots
    assert json.loads(cli("inspect", image, "--json").stdout)["keyslots"] == slots
    full = cli("keyslot", "add", image, "--key-file", k1, "--new-key-file", k2, ok=False)
    assert "no room" in full.stderr, full.stderr
    assert "c0ffee" in cli("get", image, "Kept", "--guid", str(VENDOR), "--passphrase-file", phrase).stdout
    assert os.stat(image).st_mode & 0o777 == 0o600      # created owner-only
    os.chmod(image, 0o640)
    generation = json.loads(cli("inspect", image, "--key-file", k1, "--json").stdout)["generation"]
    before = open(image, "rb").read()
    lost = cli("rekey", image, "--key-file", k1, ok=False)
    assert "keyslot 1 would be lost" in lost.stderr and open(image, "rb").read() == before, lost.stderr
    rekeyed = json.loads(cli("rekey", image, "--key-file", k1, "--new-key-file", k2, "--other-passphrase-file", phrase,
                             "--json").stdout)
    assert rekeyed["keyslots"] == [0, 1] and rekeyed["old_generation"] == generation, (rekeyed, generation)
    assert rekeyed["generation"] > generation, (rekeyed, generation)
    # Given the anchor, a rekey refuses an image older than it (a host's rolled-back copy).
    stale = cli("rekey", image, "--key-file", k2, "--other-passphrase-file", phrase, "--minimum-generation",
                str(rekeyed["generation"] + 1), ok=False)
    assert "older than allowed" in stale.stderr, stale.stderr
    assert json.loads(cli("keyslot", "list", image, "--json").stdout)["keyslots"] == slots
    assert os.stat(image).st_mode & 0o777 == 0o640
    for secret in (["--key-file", k2], ["--passphrase-file", phrase]):
        assert "c0ffee" in cli("get", image, "Kept", "--guid", str(VENDOR), *secret).stdout
    assert "no keyslot opens" in cli("list", image, "--key-file", k1, ok=False).stderr
    # The rollback anchor taken before the rekey accepts the new image.
    served = subprocess.run([binary, "qtest", "--image", image, "--key-file", k2, "--minimum-generation", str(generation)],
                            input="", capture_output=True, text=True)
    assert served.returncode == 0, served.stderr
    # One writer at a time: while the simulator serves the image, commands are refused at once.
    q = QTest(binary, "--image", image, "--key-file", k2)
    init(q)
    busy = cli("set", image, "Other", "--guid", str(VENDOR), "--hex", "01", "--key-file", k2, ok=False)
    assert "in use by another process" in busy.stderr, busy.stderr
    q.proc.stdin.close()
    q.proc.wait()
    assert json.loads(cli("keyslot", "remove", image, "--passphrase-file", phrase, "--json").stdout) == \
        {"keyslot": 1, "revoked": False}
    last = cli("keyslot", "remove", image, "--key-file", k2, ok=False)
    assert "last one" in last.stderr, last.stderr
    print("qtest session: keyslot add/remove, rekey keeping every keyslot, mode and generation, and image locking")

def firmware_volume(variables, size=0x4000):
    """An edk2 OVMF_VARS.fd laid out from PiFirmwareVolume.h and VariableFormat.h: FvLength
    @0x20, "_FVH" @0x28, HeaderLength @0x30; the authenticated store header; each variable
    StartId 0x55AA, State 0x3F, Attributes, 28 bytes of count/time/key index, NameSize,
    DataSize, VendorGuid, name, data, 4-byte aligned."""
    fv = bytearray(0x48)
    struct.pack_into("<Q", fv, 0x20, size)
    fv[0x28:0x2C] = b"_FVH"
    fv[0x30] = 0x48
    fv += uuid.UUID("aaf32c78-947b-439a-a180-2e144ec37792").bytes_le + struct.pack("<I", size - 0x48) + b"\x5a\xfe" + bytes(6)
    for name, attributes, data in variables:
        fv += struct.pack("<HBBI", 0x55AA, 0x3F, 0, attributes) + bytes(28)
        fv += struct.pack("<II", len(name), len(data)) + VENDOR.bytes_le + name + data
        while len(fv) % 4:
            fv += b"\xff"
    return bytes(fv + b"\xff" * (size - len(fv)))

def operator_edges(binary):
    """Issue 12: what an operator hands the tools may not brick or weaken an image. Empty and
    short secrets are refused wherever a secret is read; an OVMF_VARS.fd with an empty name,
    a cut-short one, a JSON pin no record holds, attributes the service never stores (unless
    --raw) are refused before anything is written; a QEMU JSON store has one writer."""
    import hashlib
    work = tempfile.mkdtemp(prefix="varstore-edges-")
    image, key = os.path.join(work, "vars.img"), os.path.join(work, "key")
    write_secret(key, os.urandom(64))
    cli = lambda *args, ok=True: check_cli(binary, args, ok)
    cli("create", image, "--size", "1M", "--key-file", key)
    # On a new image too, a refused request writes nothing (not even the service's own
    # CustomMode and VendorKeysNv, which go with the first request that succeeds).
    fresh = hashlib.sha256(open(image, "rb").read()).hexdigest()
    cli("delete", image, "Missing", "--guid", str(VENDOR), "--key-file", key, ok=False)
    cli("set", image, "Bad", "--guid", str(VENDOR), "--attributes", "0x80", "--hex", "01", "--key-file", key, ok=False)
    assert hashlib.sha256(open(image, "rb").read()).hexdigest() == fresh
    cli("set", image, "Keep", "--guid", str(VENDOR), "--hex", "01", "--key-file", key)
    secrets = {"empty": b"", "short": os.urandom(31), "newline": "\n", "seven": "1234567\n", "typo": os.urandom(10)}
    for name, data in secrets.items():
        write_secret(os.path.join(work, name), data)
    path = lambda name: os.path.join(work, name)
    digest = lambda: hashlib.sha256(open(image, "rb").read()).hexdigest()
    fd_empty_name = path("empty-name.fd")
    open(fd_empty_name, "wb").write(firmware_volume([(ucs2("Boot0000"), 7, b"\x01"), (b"\0\0", 7, b"\x02")]))
    fd_short = path("short.fd")
    open(fd_short, "wb").write(firmware_volume([(ucs2("Boot0000"), 7, b"\x01")])[:0x3000])
    fd_odd = path("odd.fd")
    open(fd_odd, "wb").write(firmware_volume([(ucs2("Odd"), 1, b"\x01")]))
    long_pin = path("long-pin.json")
    json.dump({"version": 2, "variables": [{"guid": str(VENDOR), "name": "P", "attr": 39, "data": "00",
                                            "digest": "ab" * 256}]}, open(long_pin, "w"))
    before = digest()
    cases = [
        (["create", path("new.img"), "--key-file", path("empty")], "the key file is empty"),
        (["create", path("new.img"), "--key-file", path("short")], "a key file must hold at least 32"),
        (["create", path("new.img"), "--passphrase-file", path("newline")], "the passphrase is empty"),
        (["create", path("new.img"), "--passphrase-file", path("seven")], "a passphrase must have at least 8"),
        (["create", path("new.img"), "--key-file", key, "--recovery-passphrase-file", path("newline")], "the passphrase is empty"),
        (["keyslot", "add", image, "--key-file", key, "--new-key-file", path("empty")], "the key file is empty"),
        (["keyslot", "add", image, "--key-file", key, "--new-passphrase-file", path("newline")], "the passphrase is empty"),
        (["rekey", image, "--key-file", key, "--new-key-file", path("typo")], "a key file must hold at least 32"),
        (["list", image, "--key-file", path("empty")], "the key file is empty"),
        (["qtest", "--image", image, "--key-file", path("empty")], "the key file is empty"),
        (["import", image, fd_empty_name, "--key-file", key], "has an empty name"),
        (["import", image, fd_short, "--key-file", key], "truncated"),
        (["import", image, long_pin, "--key-file", key], "has 256 bytes"),
        (["import", image, fd_odd, "--key-file", key], "--raw"),
    ]
    for args, expected in cases:
        result = subprocess.run([binary, *args], capture_output=True, text=True, input="")
        lines = result.stderr.splitlines()
        assert result.returncode == 1 and len(lines) == 1 and expected in lines[0], (args, result.returncode, result.stderr)
        assert digest() == before, args
    assert not os.path.exists(path("new.img"))
    cli("import", image, fd_odd, "--raw", "--key-file", key)
    assert {"name": "Odd", "guid": str(VENDOR), "attr": 1, "data": "01"} in \
        json.loads(cli("list", image, "--json", "--key-file", key).stdout)["variables"]
    # A key file others can read works, with a warning naming it.
    loose = path("loose")
    open(loose, "wb").write(open(key, "rb").read())
    os.chmod(loose, 0o644)
    warned = subprocess.run([binary, "list", image, "--key-file", loose], capture_output=True, text=True)
    assert warned.returncode == 0 and "can be read by others" in warned.stderr, warned.stderr
    # Exports and new JSON stores are readable by their owner only.
    exported = path("exported.json")
    cli("export", image, exported, "--key-file", key)
    assert os.stat(exported).st_mode & 0o777 == 0o600
    # One writer per JSON store: a second simulator on the same file is refused at once.
    store = path("vars.json")
    q = QTest(binary, "--json", store)
    init(q)
    assert os.stat(store).st_mode & 0o777 == 0o600
    second = subprocess.run([binary, "qtest", "--json", store], input="", capture_output=True, text=True)
    assert second.returncode == 1 and "in use by another process" in second.stderr, second.stderr
    q.proc.stdin.close()
    q.proc.wait()
    print(f"qtest session: {len(cases)} weak secrets and unstorable imports refused with the image unchanged; "
          "--raw, key file modes and the JSON store lock")

def check_cli(binary, args, ok):
    result = subprocess.run([binary, *args], capture_output=True, text=True)
    assert (result.returncode == 0) == ok, (args, result.returncode, result.stderr)
    if not ok:
        assert len(result.stderr.splitlines()) == 1, result.stderr
    return result

def run(directory, *command):
    subprocess.run(command, cwd=directory, check=True, capture_output=True, env=dict(os.environ, TZ="UTC"))

def secure_boot(binary):
    """Enroll PK, KEK and db with updates signed by efitools, as a guest would, and read
    SecureBoot back; then restart from the JSON store."""
    work = tempfile.mkdtemp(prefix="varstore-secureboot-")
    for name in ("PK", "KEK", "DB", "Stranger"):
        run(work, "openssl", "req", "-new", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "365",
            "-subj", f"/CN=qtest {name}/", "-keyout", f"{name}.key", "-out", f"{name}.crt")
        run(work, "cert-to-efi-sig-list", "-g", str(VENDOR), f"{name}.crt", f"{name}.esl")
    def signed(variable, esl, signer, time="2026-01-01 00:00:00"):
        out = f"{variable}-{signer}.auth"
        run(work, "sign-efi-sig-list", "-t", time, "-k", f"{signer}.key", "-c", f"{signer}.crt", variable, esl, out)
        return open(os.path.join(work, out), "rb").read()
    store = os.path.join(work, "vars.json")
    q = QTest(binary, "--json", store)
    init(q)
    assert get_variable(q, "SetupMode", guid=GLOBAL) == (0, 6, b"\x01")
    assert get_variable(q, "SecureBoot", guid=GLOBAL) == (0, 6, b"\x00")
    assert set_variable(q, "PK", 0x27, signed("PK", "PK.esl", "PK"), guid=GLOBAL) == 0
    assert set_variable(q, "KEK", 0x27, signed("KEK", "KEK.esl", "PK"), guid=GLOBAL) == 0
    assert set_variable(q, "db", 0x27, signed("db", "DB.esl", "Stranger"), guid=IMAGE_SECURITY) == SECURITY_VIOLATION
    assert set_variable(q, "db", 0x27, signed("db", "DB.esl", "KEK"), guid=IMAGE_SECURITY) == 0
    assert get_variable(q, "SecureBoot", guid=GLOBAL) == (0, 6, b"\x01")
    assert get_variable(q, "SetupMode", guid=GLOBAL) == (0, 6, b"\x00")
    db = open(os.path.join(work, "DB.esl"), "rb").read()
    assert get_variable(q, "db", size=4096, guid=IMAGE_SECURITY) == (0, 0x27, db)
    q.kill()
    # PK, KEK and db persisted with their timestamps; the mode follows from PK after a restart.
    saved = {v["name"]: v for v in json.load(open(store))["variables"]}
    assert saved["PK"]["attr"] == 0x27 and saved["PK"]["time"].startswith("ea07010100"), saved["PK"]
    q = QTest(binary, "--json", store)
    init(q)
    assert get_variable(q, "SecureBoot", guid=GLOBAL) == (0, 6, b"\x01")
    assert get_variable(q, "db", size=4096, guid=IMAGE_SECURITY) == (0, 0x27, db)
    # An older update is refused: the stored time came back from the file.
    assert set_variable(q, "db", 0x27, signed("db", "Stranger.esl", "KEK", "2025-01-01 00:00:00"),
                        guid=IMAGE_SECURITY) == SECURITY_VIOLATION
    q.proc.stdin.close()
    q.proc.wait()
    print("qtest session: Secure Boot enrolled with signed updates; SecureBoot reads 1")

def witness_answers(binary):
    """`qtest --witness` against a stand-in witness whose `minimum` answer is not an anchor: each
    must refuse to serve the image with a named reason (spec/rollback.md: an unknown image is
    exactly generation 0 with a null digest). Once, a generation without a digest and numbers
    outside UInt64 read as "no anchor" and the image was served."""
    import http.server, threading
    work = tempfile.mkdtemp(prefix="varstore-witness-answers-")
    image, key = os.path.join(work, "vars.img"), os.path.join(work, "key")
    write_secret(key, os.urandom(64))
    subprocess.run([binary, "create", image, "--size", "1M", "--key-file", key], check=True, capture_output=True)
    cases = [('{"minimum_generation":100,"digest":null}', "without a digest"),
             ('{"minimum_generation":18446744073709551616,"digest":null}', "malformed minimum"),
             ('{"minimum_generation":-1,"digest":null}', "malformed minimum"),
             ('{"minimum_generation":1.5,"digest":null}', "malformed minimum"),
             ('{"minimum_generation":true,"digest":null}', "malformed minimum"),
             ('{"minimum_generation":0,"digest":"00"}', "with a digest for an unknown image"),
             ('{"minimum_generation":0,"digest":null}', None)]
    for answer, reason in cases:
        body = answer.encode()
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def do_POST(self):
                # Reports are recorded (the unknown image's first state is reported at open).
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")
            def log_message(self, *arguments):
                pass
        server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            result = subprocess.run([binary, "qtest", "--image", image, "--key-file", key,
                                     "--witness", f"http://127.0.0.1:{server.server_address[1]}"],
                                    stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        finally:
            server.shutdown()
            server.server_close()
        if reason is None:
            assert result.returncode == 0, (answer, result.stderr)
        else:
            assert result.returncode == 1 and reason in result.stderr, (answer, result.returncode, result.stderr)
    result = subprocess.run([binary, "qtest", "--image", image, "--key-file", key, "--witness", "ftp://127.0.0.1:1"],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "http://HOST:PORT or https://" in result.stderr, result.stderr
    print(f"qtest session: {len(cases) - 1} witness answers that are no anchor refused; an unknown image's opens; ftp refused")

if __name__ == "__main__":
    main(sys.argv[1])
