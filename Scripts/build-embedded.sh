#!/usr/bin/env bash
# Builds what an SVSM links — VarStoreCore, VarStoreCrypto and the C ABI (VarStoreSVSM,
# include/varstore.h) — as Embedded Swift for a bare target, links them into one relocatable
# object, and fails if it needs anything beyond a short allow-list: memory functions, an
# allocator, a random source, the stack protector, soft-float routines and libcrypto's entry
# points, or if the x86-64 object's disassembly shows an SSE, AVX, MMX or x87 register or
# instruction. Prints the text size (goal: at most 400 KiB at -Osize) and the undefined symbols.
#
#   Scripts/build-embedded.sh [OUTPUT-DIRECTORY]
# x86_64-unknown-none-elf always; aarch64-none-none-elf as well when the toolchain builds it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$(mktemp -d)}
mkdir -p "$out"
out=$(cd "$out" && pwd)  # the builds run inside it

# Soft-float routines (compiler-rt / Rust's compiler_builtins): the standard library's hash
# table and array capacity math uses Double.
softfloat='__(add|sub|mul|div)df3|__(eq|ne|lt|le|gt|ge|unord)df2|__float(un)?didf|__fix(uns)?dfdi'
allowed='^(memset|memcpy|memmove|memcmp|free|posix_memalign|malloc|arc4random_buf|__stack_chk_fail|__stack_chk_guard|ceil|'"$softfloat"'|(ASN1|BIO|CRYPTO|ERR|EVP|OBJ|OPENSSL|PKCS5|PKCS7|RAND|X509)_[A-Za-z0-9_]+|(d2i|i2d)_[A-Za-z0-9_]+)$'

build() {  # target triple, libcrypto's arch include directory
    local target=$1 archinclude=$2 dir="$out/$1"
    mkdir -p "$dir"
    # No red zone: an SVSM takes interrupts on the kernel stack (coconut's target disables it).
    local codegen=(-Xcc -mno-red-zone)
    case $target in
    x86_64-*)
        # No SSE, MMX or x87 registers: an SVSM kernel (coconut's x86_64-unknown-none) does not save them, so
        # floating point becomes soft-float library calls (__muldf3, …) with doubles passed
        # in general registers, the convention of Rust's x86_64-unknown-none.
        codegen+=(-Xcc -mno-mmx -Xcc -mno-sse
                 -Xcc -Xclang -Xcc -target-feature -Xcc -Xclang -Xcc +soft-float) ;;
    esac
    local flags=(-enable-experimental-feature Embedded -wmo -Osize -parse-as-library -target "$target" "${codegen[@]}"
                 -I "$dir" -I "$root/Sources/CLibcrypto" -I "$root/include"
                 -Xcc -I/usr/include -Xcc -I"$archinclude")
    (cd "$dir" &&
     swiftc "${flags[@]}" -module-name VarStoreCore $(find "$root/Sources/VarStoreCore" -name '*.swift' | sort) \
         -c -o VarStoreCore.o -emit-module -emit-module-path VarStoreCore.swiftmodule &&
     swiftc "${flags[@]}" -module-name VarStoreCrypto $(find "$root/Sources/VarStoreCrypto" -name '*.swift' | sort) \
         -c -o VarStoreCrypto.o -emit-module -emit-module-path VarStoreCrypto.swiftmodule &&
     swiftc "${flags[@]}" -module-name VarStoreSVSM $(find "$root/Sources/VarStoreSVSM" -name '*.swift' | sort) \
         -c -o VarStoreSVSM.o &&
     ld -r VarStoreCore.o VarStoreCrypto.o VarStoreSVSM.o -o varstore-embedded.o)
}

report() {  # target triple
    local object="$out/$1/varstore-embedded.o"
    local undefined unexpected text exported
    undefined=$(nm -u "$object" | awk '{print $2}' | sort -u)
    unexpected=$(printf '%s\n' "$undefined" | grep -Ev "$allowed" || true)
    text=$(size -A "$object" | awk '$1 ~ /^\.text/ {sum += $2} END {print sum + 0}')
    exported=$(nm -g --defined-only "$object" | awk '$3 ~ /^varstore_/ {print $3}' | sort | tr '\n' ' ')
    echo "embedded: $1, -Osize: text ${text} bytes ($(( text / 1024 )) KiB; goal <= 400 KiB)"
    echo "embedded: C ABI exported: $exported"
    echo "embedded: undefined symbols: $(printf '%s ' $undefined)"
    if [ -n "$unexpected" ]; then
        echo "embedded: FAILED: $1 needs symbols outside the allow-list: $unexpected" >&2
        return 1
    fi
    if [ "$text" -gt $((400 * 1024)) ]; then
        echo "embedded: FAILED: $1 text is over 400 KiB" >&2
        return 1
    fi
    case $1 in x86_64-*) floating_point_free "$object" ;; esac
}

floating_point_free() {  # object: no xmm/ymm/zmm/mm/st/k register, no x87, MXCSR or AVX-state instruction
    local listing offending
    listing=$(objdump -d --no-show-raw-insn "$1")
    offending=$(printf '%s\n' "$listing" | awk -F'\t' 'NF >= 2 {
        split($2, word, " "); mnemonic = word[1]
        if (mnemonic ~ /^(f[a-z0-9]*|v?(ld|st)mxcsr|emms|vzero(upper|all)|xsave.*|xrstor.*)$/ ||
            $2 ~ /%([xyz]?mm[0-9]+|st[^a-z]|st$|k[0-7]([^0-9]|$))/) print
    }')
    if [ -n "$offending" ]; then
        echo "embedded: FAILED: the object uses floating-point or vector registers an SVSM does not save:" >&2
        printf '%s\n' "$offending" | head -20 >&2
        return 1
    fi
    echo "embedded: disassembly: $(printf '%s\n' "$listing" | awk -F'\t' 'NF >= 2' | wc -l) instructions, no SSE/AVX/MMX/x87 register or instruction"
}

build x86_64-unknown-none-elf /usr/include/x86_64-linux-gnu
report x86_64-unknown-none-elf
# The aarch64 build borrows the x86-64 libcrypto configuration header (only type sizes matter
# to the declarations used); it is attempted, not required.
if build aarch64-none-none-elf /usr/include/x86_64-linux-gnu 2>"$out/aarch64.log"; then
    report aarch64-none-none-elf || true
else
    echo "embedded: aarch64-none-none-elf not built ($(grep -m1 -o 'error: .*' "$out/aarch64.log" || echo 'see log'))"
fi
