/*
 * Drives the C ABI (include/varstore.h) as an SVSM would: guest memory and flash through
 * callbacks, one SetVariable and one GetVariable through varstore_svsm_call and again through
 * the uefi-vars registers (varstore_mmio_write/read). Request bytes are built here from the
 * documented layouts (EFI_MM_COMMUNICATE_HEADER, SMM_VARIABLE_COMMUNICATE_HEADER,
 * SMM_VARIABLE_COMMUNICATE_ACCESS_VARIABLE).
 *
 *   svsm_test                      variables in memory only
 *   svsm_test IMAGE KEYFILE        an encrypted image opened with a keyslot secret; the
 *                                  variable must survive destroying and re-creating the store
 *   svsm_test IMAGE KEYFILE --volume-key
 *                                  the same, KEYFILE holding the volume key (VARSTORE_KEY_VOLUME)
 *   svsm_test --replay TRACE...    recorded OVMF request streams (the .bin files in Tests/Vectors/ovmf,
 *                                  format UVTRACE1) sent to two stores, one through
 *                                  varstore_svsm_call with RDX = 64 KiB as edk2's VirtMmSvsmComm
 *                                  sends them, one through the uefi-vars device by DMA with
 *                                  BUFFER_SIZE = 64 KiB: every reply must be the same bytes
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "varstore.h"

#define RAM_SIZE (1u << 20)
#define BUFFER_GPA 0x10000u
static uint8_t ram[RAM_SIZE];
static FILE *image;
static varstore_t *current;       /* for the re-entry check */
static int reenter, reentered_status, fail_writes;
static unsigned long flash_reads;  /* to check that a refused create reads nothing */

static int guest_read(void *c, uint64_t gpa, void *buffer, size_t length) {
    (void)c;
    if (reenter) {             /* a callback that calls back into the store */
        uint64_t rcx = BUFFER_GPA;
        reenter = 0;
        reentered_status = (int)(varstore_svsm_call(current, 4ull << 32 | 1, &rcx, 4096, 0) == 0x80000007u);
    }
    if (gpa > RAM_SIZE || length > RAM_SIZE - gpa) return -1;
    memcpy(buffer, ram + gpa, length);
    return 0;
}
static int guest_write(void *c, uint64_t gpa, const void *buffer, size_t length) {
    (void)c;
    if (fail_writes) return -1;
    if (gpa > RAM_SIZE || length > RAM_SIZE - gpa) return -1;
    memcpy(ram + gpa, buffer, length);
    return 0;
}
static int flash_read(void *c, uint64_t offset, void *buffer, size_t length) {
    (void)c;
    flash_reads++;
    return fseek(image, (long)offset, SEEK_SET) == 0 && fread(buffer, 1, length, image) == length ? 0 : -1;
}
static int flash_write(void *c, uint64_t offset, const void *buffer, size_t length) {
    (void)c;
    return fseek(image, (long)offset, SEEK_SET) == 0 && fwrite(buffer, 1, length, image) == length ? 0 : -1;
}
static int flash_flush(void *c) { (void)c; return fflush(image) == 0 ? 0 : -1; }
static int random_bytes(void *c, void *buffer, size_t length) {
    (void)c;
    FILE *u = fopen("/dev/urandom", "rb");
    int ok = u && fread(buffer, 1, length, u) == length;
    if (u) fclose(u);
    return ok ? 0 : -1;
}

/* The optional witness callback (spec/rollback.md): answers witness_result, counts reports. */
static int witness_result, witness_calls, witness_bad_length;
static int witness_cb(void *c, const uint8_t *report, size_t length) {
    (void)c;
    witness_calls++;
    if (length != 164 || memcmp(report, "VSWITN01", 8) != 0) witness_bad_length++;
    return witness_result;
}

static const uint8_t smm_variable_guid[16] = {0x33, 0xd5, 0x32, 0xed, 0xe6, 0x99, 0x09, 0x42,
                                             0x9c, 0xc0, 0x2d, 0x72, 0xcd, 0xd9, 0x98, 0xa7};
static const uint8_t vendor_guid[16] = {0x4c, 0x2a, 0x1b, 0x3f, 0x6e, 0x5d, 0x70, 0x4f,
                                       0x81, 0x92, 0xa3, 0xb4, 0xc5, 0xd6, 0xe7, 0xf8};

static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint64_t get64(const uint8_t *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = v << 8 | p[i]; return v; }

/* Builds an SMM variable request at BUFFER_GPA; returns its total length. */
static size_t access_variable(uint64_t function, const char *name, uint32_t attributes, const uint8_t *data,
                              size_t data_size) {
    uint8_t *m = ram + BUFFER_GPA;
    size_t name_size = 2 * (strlen(name) + 1);
    size_t payload = 16 + 16 + 8 + 8 + 4 + name_size + data_size;
    memset(m, 0, 24 + payload);
    memcpy(m, smm_variable_guid, 16);
    put64(m + 16, payload);
    put64(m + 24, function);          /* Function */
    put64(m + 32, 0);                 /* ReturnStatus */
    memcpy(m + 40, vendor_guid, 16);
    put64(m + 56, data_size);         /* DataSize */
    put64(m + 64, name_size);         /* NameSize */
    put32(m + 72, attributes);
    for (size_t i = 0; name[i]; i++) m[76 + 2 * i] = (uint8_t)name[i];
    if (data) memcpy(m + 76 + name_size, data, data_size);
    return 24 + payload;
}

static int failures;
#define CHECK(cond, what) do { if (!(cond)) { fprintf(stderr, "svsm_test: FAILED: %s\n", what); failures++; } } while (0)

static void through_svsm(varstore_t *store, const char *name, const uint8_t *value, size_t length, int set) {
    uint64_t rcx = BUFFER_GPA;
    if (set) {
        size_t total = access_variable(3, name, 7, value, length);
        CHECK(varstore_svsm_call(store, 4ull << 32 | 1, &rcx, total, 0) == 0, "svsm SetVariable: SVSM status");
        CHECK(get64(ram + BUFFER_GPA + 32) == 0, "svsm SetVariable: EFI_SUCCESS");
    }
    uint8_t empty[64] = {0};
    size_t total = access_variable(1, name, 0, empty, sizeof empty);
    rcx = BUFFER_GPA;
    CHECK(varstore_svsm_call(store, 4ull << 32 | 1, &rcx, total, 0) == 0, "svsm GetVariable: SVSM status");
    CHECK(get64(ram + BUFFER_GPA + 32) == 0, "svsm GetVariable: EFI_SUCCESS");
    CHECK(get64(ram + BUFFER_GPA + 56) == length, "svsm GetVariable: DataSize");
    CHECK(memcmp(ram + BUFFER_GPA + 76 + 2 * (strlen(name) + 1), value, length) == 0, "svsm GetVariable: data");
}

static void through_mmio(varstore_t *store) {
    /* QEMU's register block: MAGIC @0, CMD_STS @2, BUFFER_SIZE @4, DMA address @8/@0xC. */
    CHECK(varstore_mmio_read(store, 0, 2) == 0xEF1, "mmio magic");
    varstore_mmio_write(store, 2, 2, 1);                       /* RESET */
    varstore_mmio_write(store, 4, 4, 0x10000);
    varstore_mmio_write(store, 8, 4, BUFFER_GPA);
    varstore_mmio_write(store, 0xC, 4, 0);
    const uint8_t value[] = "mmio";
    access_variable(3, "ViaMmio", 7, value, 4);
    varstore_mmio_write(store, 2, 2, 2);                       /* DMA_MM */
    CHECK(varstore_mmio_read(store, 2, 2) == 0, "mmio SetVariable: device status");
    CHECK(get64(ram + BUFFER_GPA + 32) == 0, "mmio SetVariable: EFI_SUCCESS");
    uint8_t empty[16] = {0};
    access_variable(1, "ViaMmio", 0, empty, sizeof empty);
    varstore_mmio_write(store, 2, 2, 2);
    CHECK(varstore_mmio_read(store, 2, 2) == 0 && get64(ram + BUFFER_GPA + 32) == 0, "mmio GetVariable");
    CHECK(memcmp(ram + BUFFER_GPA + 76 + 16, value, 4) == 0, "mmio GetVariable: data");
}

/* UVTRACE1: a 16-byte file header, then records of a 24-byte header (tag[4], seq u32, mode
 * u16, status u16, len u32, arg u64) and len payload bytes. A REQ holds the MM buffer as the
 * firmware sent it (24-byte header and MessageLength bytes). */
#define SVSM_GPA 0x20000u
#define DMA_GPA 0x40000u
#define COMM_BUFFER_SIZE 0x10000u
static int replay(const char *path, const varstore_platform_t *platform) {
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "svsm_test: cannot open %s\n", path); return -1; }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *trace = malloc((size_t)size);
    int ok = trace && fread(trace, 1, (size_t)size, f) == (size_t)size && size >= 16 && memcmp(trace, "UVTRACE1", 8) == 0;
    fclose(f);
    if (!ok) { fprintf(stderr, "svsm_test: %s is not a UVTRACE1 file\n", path); free(trace); return -1; }
    varstore_config_t config = {0};
    int error = 0;
    varstore_t *svsm = varstore_create(&config, platform, &error);
    varstore_t *mmio = varstore_create(&config, platform, &error);
    if (!svsm || !mmio) { fprintf(stderr, "svsm_test: varstore_create failed: %d\n", error); free(trace); return -1; }
    varstore_mmio_write(mmio, 4, 4, COMM_BUFFER_SIZE);
    varstore_mmio_write(mmio, 8, 4, DMA_GPA);
    varstore_mmio_write(mmio, 0xC, 4, 0);
    size_t offset = 16, requests = 0, identical = 0;
    while (offset + 24 <= (size_t)size) {
        const uint8_t *record = trace + offset;
        uint32_t length = (uint32_t)record[12] | (uint32_t)record[13] << 8 | (uint32_t)record[14] << 16 |
                          (uint32_t)record[15] << 24;
        if (length > (size_t)size - offset - 24) break;
        const uint8_t *payload = record + 24;
        offset += 24 + length;
        if (memcmp(record, "REQ ", 4) != 0 || length < 24 || length > COMM_BUFFER_SIZE) continue;
        requests++;
        memcpy(ram + SVSM_GPA, payload, length);
        memcpy(ram + DMA_GPA, payload, length);
        uint64_t rcx = SVSM_GPA;
        uint64_t svsm_status = varstore_svsm_call(svsm, 4ull << 32 | 1, &rcx, COMM_BUFFER_SIZE, 0);
        varstore_mmio_write(mmio, 2, 2, 2);                     /* DMA_MM */
        uint64_t device_status = varstore_mmio_read(mmio, 2, 2);
        /* SVSM_SUCCESS is device status 0; SVSM_ERR_INVALID_REQUEST 0x11; INVALID_PARAMETER 0x12. */
        int same_status = (svsm_status == 0 && device_status == 0) ||
                          (svsm_status == 0x80000006u && device_status == 0x11) ||
                          (svsm_status == 0x80000005u && device_status == 0x12);
        if (same_status && memcmp(ram + SVSM_GPA, ram + DMA_GPA, length) == 0) {
            identical++;
        } else if (failures++ < 10) {
            fprintf(stderr, "svsm_test: %s: request %zu (function %llu): SVSM 0x%llx, device 0x%llx, replies %s\n", path,
                    requests, (unsigned long long)get64(payload + 24), (unsigned long long)svsm_status,
                    (unsigned long long)device_status, memcmp(ram + SVSM_GPA, ram + DMA_GPA, length) ? "differ" : "equal");
        }
    }
    varstore_destroy(svsm);
    varstore_destroy(mmio);
    free(trace);
    printf("svsm_test: %s: %zu requests, %zu replies identical through varstore_svsm_call and DMA\n", path, requests,
           identical);
    return requests > 0 && identical == requests ? 0 : -1;
}

int main(int argc, char **argv) {
    varstore_platform_t platform = {0};
    platform.guest_read = guest_read;
    platform.guest_write = guest_write;
    varstore_config_t config = {0};
    uint8_t key[4096];
    if (argc >= 2 && strcmp(argv[1], "--replay") == 0) {
        int result = argc > 2 ? 0 : 2;
        for (int i = 2; i < argc; i++) {
            if (replay(argv[i], &platform) != 0) result = 1;
        }
        return result;
    }
    /* IMAGE KEY: KEY opens a PBKDF2 keyslot; IMAGE KEY --volume-key: KEY is the volume key itself. */
    if (argc == 3 || (argc == 4 && strcmp(argv[3], "--volume-key") == 0)) {
        image = fopen(argv[1], "r+b");
        FILE *k = fopen(argv[2], "rb");
        if (!image || !k) { fprintf(stderr, "svsm_test: cannot open %s or %s\n", argv[1], argv[2]); return 2; }
        config.key_length = fread(key, 1, sizeof key, k);
        fclose(k);
        config.key = key;
        config.key_kind = argc == 4 ? VARSTORE_KEY_VOLUME : VARSTORE_KEY_KEYSLOT;
        fseek(image, 0, SEEK_END);
        platform.flash_size = (uint64_t)ftell(image);
        platform.flash_sector_size = 512;
        platform.flash_read = flash_read;
        platform.flash_write = flash_write;
        platform.flash_flush = flash_flush;
        platform.random = random_bytes;
    }
    int error = -1;
    varstore_config_t bad = config;
    bad.minimum_generation = image ? 0 : 5;
    bad.key_kind = image ? 7 : bad.key_kind;
    CHECK(varstore_create(&bad, &platform, &error) == NULL && error == VARSTORE_ERR_INVALID_ARGUMENT,
          "create refuses an unknown key kind, or an anchor without an image");
    varstore_t *store = varstore_create(&config, &platform, &error);
    if (!store) { fprintf(stderr, "svsm_test: varstore_create failed: %d\n", error); return 1; }

    uint64_t rcx = 4ull << 32 | 1;
    CHECK(varstore_svsm_call(store, 6, &rcx, 0, 0) == 0 && rcx == (1ull << 32 | 1), "QUERY_PROTOCOL(4, 1)");
    rcx = BUFFER_GPA + 8;
    CHECK(varstore_svsm_call(store, 4ull << 32 | 1, &rcx, 4096, 0) == 0x80000003u, "misaligned buffer");

    const uint8_t secret[] = "c-abi value";
    through_svsm(store, "ViaSvsm", secret, sizeof secret, 1);
    through_mmio(store);
    uint8_t manifest[48];
    size_t written = varstore_manifest(store, 1, manifest, sizeof manifest);
    CHECK(written == 48 && manifest[0] == 1, "manifest version 1");
    CHECK(((manifest[4] & 1) != 0) == (image != NULL), "manifest: persistent_nv_vars");
    CHECK(varstore_manifest(store, 0, manifest, sizeof manifest) == 8 && manifest[0] == 0 && manifest[4] == (image ? 5 : 4),
          "manifest version 0 (coconut's): persistent, no PK, verified updates");
    CHECK(varstore_manifest(store, 0, manifest, 7) == 0 && varstore_manifest(store, 2, manifest, 48) == 0,
          "manifest: short buffer and unknown version");

    /* Failing callbacks and misuse are statuses, not crashes. */
    rcx = BUFFER_GPA;
    CHECK(varstore_svsm_call(NULL, 4ull << 32 | 1, &rcx, 4096, 0) != 0, "NULL store");
    fail_writes = 1;
    size_t total = access_variable(1, "ViaSvsm", 0, NULL, 0);
    rcx = BUFFER_GPA;
    CHECK(varstore_svsm_call(store, 4ull << 32 | 1, &rcx, total, 0) == 0x80000003u, "guest_write failure: INVALID_ADDRESS");
    fail_writes = 0;
    current = store;
    reenter = 1;
    rcx = BUFFER_GPA;
    varstore_svsm_call(store, 4ull << 32 | 1, &rcx, total, 0);
    CHECK(reentered_status == 1, "a re-entrant call answers SVSM_ERR_BUSY");
    varstore_destroy(store);

    if (image) {
        /* A fresh service on the same image reads the variable back. */
        store = varstore_create(&config, &platform, &error);
        if (!store) { fprintf(stderr, "svsm_test: reopening failed: %d\n", error); return 1; }
        through_svsm(store, "ViaSvsm", secret, sizeof secret, 0);
        varstore_destroy(store);
        /* A witness that does not record a report fails a commit that must be witnessed with
         * EFI_DEVICE_ERROR and takes it back; a commit that need not be is acknowledged. */
        platform.witness = witness_cb;
        witness_result = -1;
        varstore_config_t every = config;
        every.flags |= VARSTORE_FLAG_WITNESS_EVERY_CHANGE;
        store = varstore_create(&every, &platform, &error);
        if (!store) { fprintf(stderr, "svsm_test: create with a witness failed: %d\n", error); return 1; }
        const uint8_t witnessed[] = "witnessed";
        size_t length = access_variable(3, "Witnessed", 7, witnessed, sizeof witnessed);
        rcx = BUFFER_GPA;
        int calls = witness_calls;
        CHECK(varstore_svsm_call(store, 4ull << 32 | 1, &rcx, length, 0) == 0
              && get64(ram + BUFFER_GPA + 32) == 0x8000000000000007ull && witness_calls > calls,
              "witness refuses: SetVariable answers EFI_DEVICE_ERROR");
        uint8_t empty[16] = {0};
        length = access_variable(1, "Witnessed", 0, empty, sizeof empty);
        rcx = BUFFER_GPA;
        CHECK(varstore_svsm_call(store, 4ull << 32 | 1, &rcx, length, 0) == 0
              && get64(ram + BUFFER_GPA + 32) == 0x800000000000000Eull, "witness refuses: the variable is not there");
        varstore_destroy(store);
        store = varstore_create(&config, &platform, &error);
        if (!store) { fprintf(stderr, "svsm_test: reopen with a witness failed: %d\n", error); return 1; }
        through_svsm(store, "Lazy", secret, sizeof secret, 1);
        varstore_destroy(store);
        witness_result = 0;
        store = varstore_create(&every, &platform, &error);
        if (!store) { fprintf(stderr, "svsm_test: reopen with a witness failed: %d\n", error); return 1; }
        through_svsm(store, "Witnessed", witnessed, sizeof witnessed, 1);
        CHECK(witness_bad_length == 0, "witness reports are 164 bytes starting VSWITN01");
        /* Deleted again (witnessed too), so a second run on the same image starts as this one did. */
        length = access_variable(3, "Witnessed", 0, NULL, 0);
        rcx = BUFFER_GPA;
        CHECK(varstore_svsm_call(store, 4ull << 32 | 1, &rcx, length, 0) == 0 && get64(ram + BUFFER_GPA + 32) == 0,
              "witness accepts: the variable is deleted again");
        varstore_destroy(store);
        platform.witness = NULL;
        /* A wrong key is an error code, not a crash. */
        key[0] ^= 1;
        CHECK(varstore_create(&config, &platform, &error) == NULL && error == VARSTORE_ERR_WRONG_KEY, "wrong key");
        /* A keyslot secret shorter than 8 bytes (the floor for a passphrase) is refused before
         * the flash is read: no keyslot derivation is spent on it. */
        size_t lengths[] = {0, 1, 7};
        for (size_t i = 0; config.key_kind == VARSTORE_KEY_KEYSLOT && i < sizeof lengths / sizeof lengths[0]; i++) {
            varstore_config_t short_key = config;
            short_key.key_length = lengths[i];
            unsigned long reads = flash_reads;
            error = -1;
            CHECK(varstore_create(&short_key, &platform, &error) == NULL && error == VARSTORE_ERR_INVALID_ARGUMENT
                  && flash_reads == reads, "a keyslot secret under 8 bytes: INVALID_ARGUMENT, nothing read");
        }
        fclose(image);
    }
    if (failures) return 1;
    printf("svsm_test: %s: SVSM call, MMIO and manifest checks passed\n", image ? "encrypted image" : "memory");
    return 0;
}
