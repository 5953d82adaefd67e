//! The UniFFI bindings generator, pinned with the library:
//! `target/debug/uniffi-bindgen generate --library target/debug/libfruits_ffi.so
//! --language kotlin --out-dir out/` (also `--language python` and `swift`).

fn main() {
    uniffi::uniffi_bindgen_main()
}
