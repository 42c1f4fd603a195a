//! Links the embedded object, not the hosted shared library: the object built by
//! Scripts/build-embedded.sh (VARSTORE_EMBEDDED_OBJECT, or .build/embedded at the repository
//! root) goes into a static archive placed after this crate, so every symbol it needs that
//! this crate defines (allocator, memory functions, soft-float, …) resolves here, and only the
//! libcrypto functions come from a shared library.
use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let object = env::var_os("VARSTORE_EMBEDDED_OBJECT").map(PathBuf::from).unwrap_or_else(|| {
        manifest.join("../../.build/embedded/x86_64-unknown-none-elf/varstore-embedded.o")
    });
    println!("cargo:rerun-if-env-changed=VARSTORE_EMBEDDED_OBJECT");
    println!("cargo:rerun-if-changed={}", object.display());
    if !object.exists() {
        panic!("{} is missing: run Scripts/build-embedded.sh .build/embedded first", object.display());
    }
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let archive = out.join("libvarstore_embedded.a");
    let _ = std::fs::remove_file(&archive);
    let status = Command::new("ar").arg("crs").arg(&archive).arg(&object).status().expect("ar");
    assert!(status.success(), "ar failed");
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static=varstore_embedded");
    // Debian's libcrypto (OpenSSL 3) stands in for the OpenSSL build an SVSM carries.
    println!("cargo:rustc-link-lib=dylib=crypto");
    // The host process itself: startup, write/open/read/mmap/fork. Never the object's needs.
    println!("cargo:rustc-link-lib=dylib=c");
}
