// One screen: pick a photo, see the fruit. The model ships in the APK's assets
// (copied from the workspace's models/) and is loaded with ModelSource.Bytes.
plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

val modelAssets = layout.buildDirectory.dir("model-assets")

android {
    namespace = "org.fruits.sample"
    compileSdk = 35
    defaultConfig {
        applicationId = "org.fruits.sample"
        minSdk = 24
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        // Where the phone uploads and syncs; the publisher's public key (hex).
        buildConfigField("String", "INGEST_URL", "\"${project.findProperty("fruits.ingestUrl") ?: "http://10.0.2.2:8080"}\"")
        buildConfigField("String", "PUBLISHER_KEY", "\"${project.findProperty("fruits.publisherKey") ?: "00".repeat(32)}\"")
    }
    buildFeatures { buildConfig = true }
    sourceSets["main"].assets.srcDir(modelAssets)
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
}

kotlin {
    jvmToolchain(17)
}

val copyModel by tasks.registering(Copy::class) {
    from(rootDir.parentFile.resolve("models")) { include("mobilenetv2-1.0-224-embed.*") }
    into(modelAssets)
}
tasks.named("preBuild") { dependsOn(copyModel) }

dependencies {
    implementation(project(":fruits-sdk"))
    implementation("androidx.activity:activity-ktx:1.9.3")
    implementation("androidx.lifecycle:lifecycle-runtime-ktx:2.8.7")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.9.0")
}
