// The Fruits SDK for Android: `fruits-sdk` (the AAR: native library for three ABIs
// plus the generated Kotlin bindings) and `sample` (one screen: pick a photo, see the fruit).
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}
dependencyResolutionManagement {
    repositories {
        google()
        mavenCentral()
    }
}
rootProject.name = "fruits-android"
include(":fruits-sdk", ":sample")
