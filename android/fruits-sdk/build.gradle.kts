// The SDK as an AAR. Two tasks run before every build:
//   cargoNdk          the Rust library for arm64-v8a, armeabi-v7a and x86_64 (cargo-ndk,
//                     mobile profile, 16 KB-aligned: see the workspace's .cargo/config.toml)
//   generateBindings  the Kotlin bindings, generated in library mode from a host build
// Needs: the Android NDK (ANDROID_NDK_HOME), `cargo install cargo-ndk`, and
// `rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android`.
plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

val workspace = rootDir.parentFile
val jniLibs = layout.buildDirectory.dir("rust/jniLibs")
val generated = layout.buildDirectory.dir("generated/uniffi")

android {
    namespace = "org.fruits.sdk"
    compileSdk = 35
    ndkVersion = "27.2.12479018"
    defaultConfig {
        minSdk = 24
        consumerProguardFiles("consumer-rules.pro")
    }
    sourceSets["main"].jniLibs.srcDir(jniLibs)
    sourceSets["main"].java.srcDir(generated)
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    // The generated bindings call the library through JNA (the AAR carries its .so files).
    implementation("net.java.dev.jna:jna:5.15.0@aar")
}

val cargoNdk by tasks.registering(Exec::class) {
    workingDir = workspace
    commandLine(
        "cargo", "ndk",
        "-t", "arm64-v8a", "-t", "armeabi-v7a", "-t", "x86_64",
        "--platform", "24",
        "-o", jniLibs.get().asFile.path,
        "build", "--locked", "-p", "fruits-ffi", "--lib", "--profile", "mobile",
    )
}

val hostLibrary by tasks.registering(Exec::class) {
    workingDir = workspace
    commandLine("cargo", "build", "--locked", "-p", "fruits-ffi", "-p", "fruits-uniffi-bindgen")
}

val generateBindings by tasks.registering(Exec::class) {
    dependsOn(hostLibrary)
    workingDir = workspace
    commandLine(
        "target/debug/uniffi-bindgen", "generate",
        "--library", "target/debug/libfruits_ffi.so",
        "--language", "kotlin",
        "--config", "android/fruits-sdk/uniffi-android.toml",
        "--out-dir", generated.get().asFile.path,
    )
}

tasks.named("preBuild") { dependsOn(cargoNdk, generateBindings) }
