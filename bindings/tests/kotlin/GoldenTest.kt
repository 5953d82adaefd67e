// The golden SDK test on the JVM (JNA), through the generated Kotlin bindings:
// the same photo and expectations as bindings/tests/golden.rs and the Python suite.
// Usage: GoldenTestKt <repo root> <fixture dir from `fruits emulate`>

import org.fruits.sdk.*
import java.io.File
import java.util.Properties
import kotlin.math.abs
import kotlin.system.exitProcess

class Golden(repo: File) {
    private val p = Properties().apply { File(repo, "bindings/tests/golden.properties").reader().use { load(it) } }
    val photo: ByteArray = File(repo, p.getProperty("photo")).readBytes()
    val corrupt: ByteArray = photo.copyOf(p.getProperty("corrupt_prefix_bytes").toInt())
    val embeddingLen = p.getProperty("embedding_len").toInt()
    val embeddingFirst = p.getProperty("embedding_first").split(",").map { it.trim().toFloat() }
    val tolerance = p.getProperty("tolerance").toFloat()
    val expectedLabel: String = p.getProperty("expected_label")
    val manifest = File(repo, p.getProperty("manifest")).path
    val taughtPhoto: ByteArray = File(repo, p.getProperty("taught_photo")).readBytes()
    val taughtLabel: String = p.getProperty("taught_label")
}

/** A client over a copy of the emulator's phone-00 storage (projection v1 installed). */
fun client(golden: Golden, fixture: File, ingestUrl: String): FruitsClient {
    val storage = kotlin.io.path.createTempDirectory("fruits-kotlin").toFile()
    File(fixture, "phones/phone-00").copyRecursively(storage, overwrite = true)
    val key = File(fixture, "publisher.key.pub").readText().trim().chunked(2).map { it.toInt(16).toByte() }.toByteArray()
    return FruitsClient(
        FruitsConfig(
            storageDir = storage.path,
            model = ModelSource.ManifestPath(golden.manifest),
            ingestUrl = ingestUrl,
            deviceId = "phone-00",
            deviceSecret = "not-registered".toByteArray(),
            projectionPublicKey = key,
            uploadAttempts = 1u,
        ),
    )
}

fun main(args: Array<String>) {
    val golden = Golden(File(args[0]))
    // Port 9 (discard) on loopback: nothing listens, so network calls fail fast.
    val sdk = client(golden, File(args[1]), "http://127.0.0.1:9")
    val results = mutableListOf<Pair<String, Throwable?>>()
    fun test(name: String, body: () -> Unit) {
        results += name to runCatching(body).exceptionOrNull()
    }

    test("embeds the golden photo") {
        val embedding = sdk.embed(golden.photo)
        check(embedding.size == golden.embeddingLen) { "length ${embedding.size}" }
        golden.embeddingFirst.forEachIndexed { i, want ->
            check(abs(embedding[i] - want) <= golden.tolerance) { "value $i: ${embedding[i]} vs $want" }
        }
    }
    test("recognises the golden photo offline") {
        val r = sdk.recognize(golden.photo)
        check(r.label == golden.expectedLabel) { "label ${r.label}, top ${r.top}" }
        check(r.confidence in 0f..1f && r.top.first().label == golden.expectedLabel) { "$r" }
        check(sdk.status().projectionVersion == 1u) { "${sdk.status()}" }
    }
    test("a corrupt photo throws InvalidPhoto") {
        try {
            sdk.embed(golden.corrupt)
            error("no exception")
        } catch (e: FruitsException.InvalidPhoto) {
            check(e.detail.isNotEmpty())
        }
    }
    test("a wrong-length embedding throws InvalidInput") {
        try {
            sdk.enqueue(listOf(1f, 2f), "banana")
            error("no exception")
        } catch (e: FruitsException.InvalidInput) {}
    }
    test("an unreachable server throws Network and keeps the queue") {
        sdk.enqueue(sdk.embed(golden.photo), golden.expectedLabel)
        try {
            sdk.flush()
            error("no exception")
        } catch (e: FruitsException.Network) {}
        check(sdk.status().queued == 1u) { "${sdk.status()}" }
    }

    test("a taught class is recognised, listed and forgotten") {
        check(sdk.teach(golden.taughtLabel, golden.taughtPhoto) == 1u)
        check(sdk.teach(golden.taughtLabel, golden.taughtPhoto) == 2u)
        check(sdk.taughtClasses() == listOf(TaughtClass(golden.taughtLabel, 2u))) { "${sdk.taughtClasses()}" }
        val r = sdk.recognize(golden.taughtPhoto)
        check(r.label == golden.taughtLabel && r.taught) { "$r" }
        check(sdk.recognize(golden.photo).label == golden.expectedLabel) { "the published classes still answer" }
        check(sdk.forget(golden.taughtLabel) && !sdk.forget(golden.taughtLabel))
        check(sdk.recognize(golden.taughtPhoto).label != golden.taughtLabel)
        try {
            sdk.teach("", golden.taughtPhoto)
            error("no exception")
        } catch (e: FruitsException.InvalidInput) {}
    }

    results.forEach { (name, failure) -> println(if (failure == null) "ok     $name" else "FAILED $name: $failure") }
    val failed = results.count { it.second != null }
    println("${results.size - failed} passed, $failed failed")
    exitProcess(if (failed == 0) 0 else 1)
}
