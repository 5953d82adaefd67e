package org.fruits.sample

import android.net.Uri
import android.os.Bundle
import android.widget.Button
import android.widget.ImageView
import android.widget.TextView
import androidx.activity.ComponentActivity
import androidx.activity.result.contract.ActivityResultContracts
import androidx.lifecycle.lifecycleScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import org.fruits.sdk.FruitsClient
import org.fruits.sdk.FruitsConfig
import org.fruits.sdk.FruitsException
import org.fruits.sdk.ModelSource
import org.fruits.sdk.Recognition

/** Pick a photo, see the fruit: recognised offline, then queued for upload. */
class MainActivity : ComponentActivity() {
    private lateinit var result: TextView
    private lateinit var photo: ImageView

    /** Loaded once, off the main thread (the model takes about a second). */
    private val client by lazy {
        FruitsClient(
            FruitsConfig(
                storageDir = filesDir.resolve("fruits").path,
                model = ModelSource.Bytes(
                    model = assets.open("mobilenetv2-1.0-224-embed.onnx").use { it.readBytes() },
                    manifestJson = assets.open("mobilenetv2-1.0-224-embed.json").use { it.readBytes().decodeToString() },
                ),
                ingestUrl = BuildConfig.INGEST_URL,
                deviceId = "sample-device",
                deviceSecret = "sample-secret".toByteArray(),
                projectionPublicKey = BuildConfig.PUBLISHER_KEY.chunked(2).map { it.toInt(16).toByte() }.toByteArray(),
            ),
        )
    }

    private val pick = registerForActivityResult(ActivityResultContracts.GetContent()) { uri: Uri? ->
        if (uri != null) show(uri)
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        result = findViewById(R.id.result)
        photo = findViewById(R.id.photo)
        findViewById<Button>(R.id.pick).setOnClickListener { pick.launch("image/*") }
        // Fetch the latest projection (recognition head included) in the background.
        lifecycleScope.launch(Dispatchers.IO) { runCatching { client.syncModel() } }
    }

    private fun show(uri: Uri) {
        photo.setImageURI(uri)
        result.text = "Looking..."
        lifecycleScope.launch {
            result.text = withContext(Dispatchers.Default) { describe(uri) }
        }
    }

    /** One coarse call per photo: bytes in, a record out. */
    private fun describe(uri: Uri): String = try {
        val bytes = contentResolver.openInputStream(uri)!!.use { it.readBytes() }
        val embedding = client.embed(bytes)
        val recognition = client.recognizeEmbedding(embedding)
        client.enqueue(embedding, recognition.label)
        format(recognition)
    } catch (e: FruitsException.InvalidPhoto) {
        "Not a photo we can read: ${e.detail}"
    } catch (e: FruitsException.NotReady) {
        "No recognition model yet: connect to the internet once."
    } catch (e: FruitsException) {
        "Something went wrong: ${e.message}"
    }

    private fun format(r: Recognition): String {
        val label = r.label ?: return "Unknown fruit (best guess ${r.top.firstOrNull()?.label})"
        val info = r.info ?: return "$label (${(r.confidence * 100).toInt()}%)"
        val n = info.nutrition
        return "${info.nameEn} (${(r.confidence * 100).toInt()}%)\n${info.family}, in season ${info.season}\n" +
            "${n.energyKcal} kcal, ${n.sugarsG} g sugars, ${n.vitaminCMg} mg vitamin C per 100 g"
    }
}
