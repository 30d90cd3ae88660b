#!/usr/bin/env bash
# Builds every example contract to contracts/wasm/<name>.wasm with the canonical
# toolchain, and records that toolchain and each file's sha256 in contracts/wasm/MANIFEST.
#
#   contracts/build.sh           build and write contracts/wasm/ (then commit it)
#   contracts/build.sh --check   rebuild into a temporary directory and fail (exit 1)
#                                when any byte differs from the committed files
#
# The canonical toolchain is Debian's rustc-web (bookworm-security), with rust-web-src
# for -Zbuild-std and lld-22 for linking: one exact compiler, so the bytes are the same
# on every machine. The script installs it with apt-get when /usr/bin/rustc is missing.
# Paths are remapped (the checkout, the cargo home, the target dir), so the bytes do not
# depend on where the repo lives. If the toolchain version the manifest records can no
# longer be installed, --check says so, still builds (so the contracts must compile),
# and skips only the byte comparison.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out_dir="$here/wasm"
manifest="$out_dir/MANIFEST"
mode=build
case "${1:-}" in
    "") ;;
    --check) mode=check ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

rustc=/usr/bin/rustc
cargo=/usr/bin/cargo
# The Debian packages that make up the toolchain; rust-web-llvm comes with rustc-web
# and provides /usr/bin/rust-lld, which runs lld-22.
packages=(rustc-web cargo-web rust-web-src rust-web-llvm lld-22)
target=wasm32-unknown-unknown
# 32 KiB of shadow stack instead of rustc's 1 MiB default: contracts start with one
# page of memory, not 17, and the host resets only the few pages a call touched.
stack_bytes=32768

say() { printf 'build.sh: %s\n' "$*" >&2; }

apt_install() {
    say "installing $*"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2 && apt-get install -y -q "$@" >&2
}

installed_versions() {
    local p
    for p in "${packages[@]}"; do
        printf '%s=%s\n' "$p" "$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || echo missing)"
    done
}

toolchain_line() { "$rustc" --version; }

# --- the toolchain -----------------------------------------------------------------
missing=()
if [[ ! -x $rustc || ! -x $cargo || ! -d /usr/lib/rustlib/src/rust/library || ! -x /usr/bin/rust-lld ]]; then
    missing+=("${packages[@]}")
fi
# wasm-validate checks that the modules use only MVP features.
command -v wasm-validate >/dev/null || missing+=(wabt)
if (( ${#missing[@]} )); then
    apt_install "${missing[@]}"
fi

skip_compare=""
if [[ $mode == check ]]; then
    want_rustc="$(sed -n 's/^# rustc: //p' "$manifest")"
    want_packages="$(sed -n 's/^# package: //p' "$manifest")"
    if [[ "$(toolchain_line)" != "$want_rustc" || "$(installed_versions)" != "$want_packages" ]]; then
        say "the committed contracts were built with: $want_rustc"
        say "installed here: $(toolchain_line)"
        # shellcheck disable=SC2046  # one word per package=version
        apt_install --allow-downgrades $(printf '%s ' $want_packages) || true
        if [[ "$(toolchain_line)" != "$want_rustc" || "$(installed_versions)" != "$want_packages" ]]; then
            skip_compare="the canonical toolchain ($want_rustc; packages: $(echo $want_packages)) is not installable here"
        fi
    fi
fi

# --- the build ---------------------------------------------------------------------
if [[ $mode == check ]]; then
    target_dir="$(mktemp -d "${TMPDIR:-/tmp}/semel-contracts.XXXXXX")"
    trap 'rm -rf "$target_dir"' EXIT
else
    target_dir="$here/target/canonical"
fi
cargo_home="${CARGO_HOME:-$HOME/.cargo}"

flags=(
    -Ctarget-cpu=mvp
    -Copt-level=z
    "-Clink-arg=-zstack-size=$stack_bytes"
    # Panic locations are never shown (the panic handler reverts with the message only);
    # dropping them saves bytes and keeps file paths out of the modules altogether.
    -Zlocation-detail=none
    "--remap-path-prefix=$here=/contracts"
    "--remap-path-prefix=$cargo_home=/cargo"
    "--remap-path-prefix=$target_dir=/target"
)
# One flag per \x1f-separated field, so paths with spaces stay whole.
encoded_flags="$(IFS=$'\x1f'; echo "${flags[*]}")"

say "building with $(toolchain_line)"
(
    cd "$here"
    unset RUSTC_WRAPPER RUSTFLAGS CARGO_BUILD_RUSTFLAGS
    RUSTC="$rustc" \
    RUSTC_BOOTSTRAP=1 \
    CARGO_ENCODED_RUSTFLAGS="$encoded_flags" \
    CARGO_TARGET_DIR="$target_dir" \
    CARGO_INCREMENTAL=0 \
        "$cargo" build --locked --release --target "$target" -Zbuild-std=core,alloc \
        --workspace --exclude semel-sdk
)

names=()
for dir in "$here"/examples/*/; do
    names+=("$(basename "$dir")")
done

built="$target_dir/$target/release"
if command -v wasm-validate >/dev/null; then
    for name in "${names[@]}"; do
        # MVP only: no feature past the 1.0 spec.
        wasm-validate --disable-bulk-memory --disable-sign-extension --disable-mutable-globals \
            --disable-saturating-float-to-int --disable-multi-value --disable-reference-types \
            "$built/$name.wasm" || { say "$name.wasm is not an MVP module"; exit 1; }
    done
else
    say "wasm-validate (Debian package wabt) not found: skipping the MVP feature check"
fi

# --- build: write wasm/ ------------------------------------------------------------
if [[ $mode == build ]]; then
    mkdir -p "$out_dir"
    rm -f "$out_dir"/*.wasm
    {
        echo "# Written by contracts/build.sh; the files beside it are built from contracts/"
        echo "# with exactly this toolchain. Check: grep -v '^#' MANIFEST | sha256sum -c"
        echo "# rustc: $(toolchain_line)"
        echo "# cargo: $("$cargo" --version)"
        installed_versions | sed 's/^/# package: /'
        echo "# target: $target -Zbuild-std=core,alloc, profile release (contracts/Cargo.toml)"
        echo "# rustflags: $(printf '%s ' "${flags[@]:0:4}")--remap-path-prefix=<checkout>=/contracts --remap-path-prefix=<cargo home>=/cargo --remap-path-prefix=<target dir>=/target"
    } > "$manifest"
    for name in "${names[@]}"; do
        install -m 644 "$built/$name.wasm" "$out_dir/$name.wasm"
        (cd "$out_dir" && sha256sum "$name.wasm") >> "$manifest"
    done
    say "wrote $(printf '%s ' "${names[@]}")to $out_dir"
    exit 0
fi

# --- check: compare ------------------------------------------------------------------
status=0
if ! (cd "$out_dir" && grep -v '^#' MANIFEST | sha256sum --quiet --strict -c -); then
    say "contracts/wasm/ does not match its MANIFEST"
    status=1
fi
if [[ -n $skip_compare ]]; then
    say "NOTE: $skip_compare."
    say "NOTE: the contracts still build; skipping only the byte comparison with a fresh build."
    exit $status
fi
for name in "${names[@]}"; do
    if [[ ! -f $out_dir/$name.wasm ]]; then
        say "contracts/wasm/$name.wasm is missing (run contracts/build.sh and commit)"
        status=1
    elif ! cmp -s "$built/$name.wasm" "$out_dir/$name.wasm"; then
        say "contracts/wasm/$name.wasm differs from a fresh build (run contracts/build.sh and commit)"
        status=1
    fi
done
for file in "$out_dir"/*.wasm; do
    name="$(basename "$file" .wasm)"
    if [[ ! -d $here/examples/$name ]]; then
        say "contracts/wasm/$name.wasm has no example to build it from"
        status=1
    fi
done
if [[ $status == 0 ]]; then
    say "all ${#names[@]} contracts are byte-identical to contracts/wasm/"
fi
exit $status
