// swift-tools-version:5.9
// The Fruits SDK for iOS (and macOS): the Rust core as an XCFramework plus the
// Swift bindings UniFFI generates for it. Build the XCFramework and the bindings
// first with `ios/build-xcframework.sh` (macOS with Xcode and rustup).
import PackageDescription

let package = Package(
    name: "FruitsSDK",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "FruitsSDK", targets: ["FruitsSDK"]),
    ],
    targets: [
        // The static library and the C header of the FFI, per platform slice; its
        // module name is the one the generated Swift imports.
        .binaryTarget(name: "fruits_ffiFFI", path: "FruitsFFI.xcframework"),
        // The generated Swift bindings (Sources/FruitsSDK/FruitsFFI.swift).
        .target(name: "FruitsSDK", dependencies: ["fruits_ffiFFI"], path: "Sources/FruitsSDK"),
        .testTarget(name: "FruitsSDKTests", dependencies: ["FruitsSDK"], path: "Tests/FruitsSDKTests"),
    ]
)
