/*
 * varstore.h — the C ABI of the UEFI variable service, for an SVSM (coconut-svsm is Rust)
 * or any other host that links the core. See spec/svsm-integration.md.
 *
 * No Swift type crosses this boundary. Every callback returns 0 on success and non-zero on
 * failure; a failure becomes an SVSM or EFI error for the request at hand, never a trap.
 * The functions are not re-entrant for one store: callers serialise calls on the same
 * varstore_t (coconut holds its store behind one lock).
 */
#ifndef VARSTORE_H
#define VARSTORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct varstore_platform {
    void *context;
    /* Guest memory by guest-physical address (the SVSM's own checks: guest RAM only, no
     * VMSA or CAA pages). */
    int (*guest_read)(void *context, uint64_t gpa, void *buffer, size_t length);
    int (*guest_write)(void *context, uint64_t gpa, const void *buffer, size_t length);
    /* Optional: the flash holding the encrypted LUKS2 image (pflash or virtio-blk). With
     * flash_read NULL the variables live in memory only. */
    int (*flash_read)(void *context, uint64_t offset, void *buffer, size_t length);
    int (*flash_write)(void *context, uint64_t offset, const void *buffer, size_t length);
    int (*flash_flush)(void *context);
    uint64_t flash_size;
    uint32_t flash_sector_size;  /* the atomic write unit; must divide 512 (0 means 512) */
    /* Random bytes for the store's nonces (required with a flash). */
    int (*random)(void *context, void *buffer, size_t length);
    /* Optional diagnostics, one NUL-terminated line without a newline (why create failed). */
    void (*log)(void *context, const char *message);
    /* Optional (NULL: no witness, nothing changes): hands a witness report (spec/rollback.md,
     * 164 bytes) to the party that released the key, over the SVSM's attested channel; returns
     * 0 only once that party has recorded it. A commit that must be witnessed (the Secure Boot
     * keys, databases and modes; every change with VARSTORE_FLAG_WITNESS_EVERY_CHANGE) is
     * taken back and fails with EFI_DEVICE_ERROR when this returns non-zero. Added at the end:
     * a caller that zero-initialises the struct gets no witness. */
    int (*witness)(void *context, const uint8_t *report, size_t length);
} varstore_platform_t;

enum {
    VARSTORE_KEY_VOLUME = 0,   /* key is the 64-byte LUKS2 volume key (32 after cryptsetup reencrypt --key-size 256) */
    VARSTORE_KEY_KEYSLOT = 1,  /* key opens a PBKDF2 keyslot of the image; at least 8 bytes */
};

enum {
    VARSTORE_FLAG_NO_CUSTOM_MODE = 1u << 0,       /* CustomMode writes are refused */
    VARSTORE_FLAG_NO_PHYSICAL_PRESENCE = 1u << 1, /* nobody is ever physically present */
    VARSTORE_FLAG_WITNESS_EVERY_CHANGE = 1u << 2, /* every non-volatile commit waits for the witness */
};

typedef struct varstore_config {
    uint64_t nonvolatile_bytes; /* 0: the image's capacity, or 256 KiB without an image */
    uint64_t volatile_bytes;    /* 0: 256 KiB */
    const uint8_t *key;         /* with a flash: the volume key or a keyslot secret */
    size_t key_length;
    uint32_t key_kind;          /* VARSTORE_KEY_* */
    uint32_t flags;             /* VARSTORE_FLAG_* */
    uint64_t minimum_generation; /* refuse an older image (rollback anchor); 0: none */
    /* Optional, with a witness: the 32-byte state digest the witness recorded at
     * minimum_generation. An image at that generation with another digest is refused
     * (VARSTORE_ERR_FORKED); a newer one is reported at once. NULL: the opened state is taken as
     * what the witness holds (none if minimum_generation is 0). */
    const uint8_t *minimum_digest;
} varstore_config_t;

enum {
    VARSTORE_OK = 0,
    VARSTORE_ERR_INVALID_ARGUMENT = 1,
    VARSTORE_ERR_NOT_LUKS2 = 2,
    VARSTORE_ERR_UNSUPPORTED_IMAGE = 3,
    VARSTORE_ERR_WRONG_KEY = 4,
    VARSTORE_ERR_NOT_FORMATTED = 5,
    VARSTORE_ERR_TAMPERED = 6,
    VARSTORE_ERR_ROLLED_BACK = 7,
    VARSTORE_ERR_IO = 8,
    VARSTORE_ERR_FORKED = 9,  /* at minimum_generation, but not the state the witness recorded */
};

typedef struct varstore varstore_t;

/* Creates a service; with a flash, opens the image (never formats it). On failure returns
 * NULL and sets *error to a VARSTORE_ERR_* code: VARSTORE_ERR_INVALID_ARGUMENT for missing
 * callbacks, a missing key or unknown key_kind with a flash, a VARSTORE_KEY_KEYSLOT secret
 * shorter than 8 bytes (refused before the flash is read), a minimum_generation without a
 * flash, or nonvolatile_bytes above the image's capacity; VARSTORE_ERR_UNSUPPORTED_IMAGE for a
 * header whose key derivation exceeds what one open may spend, an unfinished cryptsetup
 * reencryption, or a segment that is not aes-xts-plain64 with 512-byte sectors;
 * VARSTORE_ERR_NOT_FORMATTED also for a store whose keys no longer open it (a version-1 store
 * reencrypted before its upgrade, a changed UUID). The first write to a version-1 store
 * upgrades it to version 2, whose keys survive cryptsetup reencrypt (spec/storage.md). */
varstore_t *varstore_create(const varstore_config_t *config, const varstore_platform_t *platform, int *error);

/* One SVSM call for protocol 4 (UEFI MM, call 1: RCX = page-aligned buffer GPA, RDX = size)
 * or the core QUERY_PROTOCOL (protocol 0, call 6) about protocol 4. Returns RAX; *rcx is
 * updated where the call returns a value there. A call made from inside one of the store's
 * own callbacks answers SVSM_ERR_BUSY (0x80000007). */
uint64_t varstore_svsm_call(varstore_t *store, uint64_t rax, uint64_t *rcx, uint64_t rdx, uint64_t r8);

/* The uefi-vars register block (QEMU's device), for a trapped-MMIO transport. */
uint64_t varstore_mmio_read(varstore_t *store, uint64_t offset, uint32_t size);
void varstore_mmio_write(varstore_t *store, uint64_t offset, uint32_t size, uint64_t value);

/* The attestation manifest of the UEFI MM service: version 0 (8 bytes, coconut's) or 1 (48
 * bytes: adds the store generation and state digest). Returns the bytes written, or 0 if the
 * version is unknown or the buffer too small. */
size_t varstore_manifest(varstore_t *store, uint32_t version, uint8_t *buffer, size_t length);

/* Releases the service. Everything acknowledged is already on the flash. */
void varstore_destroy(varstore_t *store);

#ifdef __cplusplus
}
#endif

#endif
