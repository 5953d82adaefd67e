// The golden SDK test in Swift: the same photo and expectations as
// bindings/tests/golden.rs, the Kotlin test and the Python suite.
// Run on macOS after ios/build-xcframework.sh with `swift test`; the recognition
// test needs FRUITS_SDK_FIXTURE (made by bindings/tests/prepare.sh) and is skipped
// without it.

import FruitsSDK
import Foundation
import XCTest

/// bindings/tests/golden.properties, read from the repository this file is in.
struct Golden {
    let repo: URL
    let values: [String: String]

    init() throws {
        repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: repo.appendingPathComponent("bindings/tests/golden.properties"), encoding: .utf8)
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 2 { values[parts[0]] = parts[1] }
        }
        self.values = values
    }

    func photo() throws -> Data { try Data(contentsOf: repo.appendingPathComponent(values["photo"]!)) }
    var manifest: String { repo.appendingPathComponent(values["manifest"]!).path }
    var corruptPrefix: Int { Int(values["corrupt_prefix_bytes"]!)! }
    var embeddingLen: Int { Int(values["embedding_len"]!)! }
    var embeddingFirst: [Float] { values["embedding_first"]!.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces))! } }
    var tolerance: Float { Float(values["tolerance"]!)! }
    var expectedLabel: String { values["expected_label"]! }
}

final class GoldenTests: XCTestCase {
    /// A client on a fresh storage directory (or a copy of the fixture's phone-00),
    /// pointed at a port where nothing listens.
    func client(_ golden: Golden, fixture: URL? = nil, publicKey: Data = Data(count: 32)) throws -> FruitsClient {
        let storage = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        if let fixture {
            try FileManager.default.copyItem(at: fixture.appendingPathComponent("phones/phone-00"), to: storage)
        }
        return try FruitsClient(config: FruitsConfig(
            storageDir: storage.path,
            model: .manifestPath(path: golden.manifest),
            ingestUrl: "http://127.0.0.1:9",
            deviceId: "phone-00",
            deviceSecret: Data("not-registered".utf8),
            projectionPublicKey: publicKey,
            uploadAttempts: 1
        ))
    }

    func testEmbedsTheGoldenPhoto() throws {
        let golden = try Golden()
        let embedding = try client(golden).embed(photo: golden.photo())
        XCTAssertEqual(embedding.count, golden.embeddingLen)
        for (i, want) in golden.embeddingFirst.enumerated() {
            XCTAssertEqual(embedding[i], want, accuracy: golden.tolerance)
        }
    }

    func testACorruptPhotoThrowsInvalidPhoto() throws {
        let golden = try Golden()
        let sdk = try client(golden)
        XCTAssertThrowsError(try sdk.embed(photo: golden.photo().prefix(golden.corruptPrefix))) { error in
            guard case FruitsError.InvalidPhoto = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try sdk.recognize(photo: golden.photo())) { error in
            guard case FruitsError.NotReady = error else { return XCTFail("\(error)") }
        }
    }

    func testRecognisesTheGoldenPhotoOffline() throws {
        guard let path = ProcessInfo.processInfo.environment["FRUITS_SDK_FIXTURE"] else {
            throw XCTSkip("FRUITS_SDK_FIXTURE not set (run bindings/tests/prepare.sh)")
        }
        let golden = try Golden()
        let fixture = URL(fileURLWithPath: path)
        let hex = try String(contentsOf: fixture.appendingPathComponent("publisher.key.pub"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let key = Data(stride(from: 0, to: hex.count, by: 2).map { i -> UInt8 in
            let start = hex.index(hex.startIndex, offsetBy: i)
            return UInt8(hex[start ..< hex.index(start, offsetBy: 2)], radix: 16)!
        })
        let sdk = try client(golden, fixture: fixture, publicKey: key)
        let result = try sdk.recognize(photo: golden.photo())
        XCTAssertEqual(result.label, golden.expectedLabel)
        XCTAssertEqual(sdk.status().projectionVersion, 1)
    }
}
