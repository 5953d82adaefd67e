//! The UniFFI bindings generator at the version the library is built with:
//! `cargo run -p fruits-ffi --features cli --bin uniffi-bindgen -- generate --library
//! target/debug/libfruits_ffi.so --language kotlin --out-dir out/`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
