//! What recognition answers, as records: the fruit, how sure, the runners-up and
//! what is in it.

use fruits_core::recognizer;
use fruits_formats::catalogue;

/// The answer for one photo.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Recognition {
    /// The recognised class (the training folder name), `None` for "unknown".
    pub label: Option<String>,
    /// Calibrated probability of the most likely class, in `[0, 1]` (even when unknown).
    pub confidence: f32,
    /// The most likely classes, best first (at most 3).
    pub top: Vec<Candidate>,
    /// What the app shows about `label`, when the catalogue describes it.
    pub info: Option<FruitInfo>,
    /// Whether `label` is (or includes) a class taught on this device with `teach`.
    pub taught: bool,
}

/// A class taught on this device.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TaughtClass {
    /// Its label.
    pub label: String,
    /// Photos it was taught with (the newest 20 are kept).
    pub examples: u32,
}

/// One class and its probability.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Candidate {
    /// The class.
    pub label: String,
    /// Its calibrated probability.
    pub probability: f32,
}

/// Names, family, season and nutrition of one class.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct FruitInfo {
    /// The class label.
    pub class: String,
    /// English name.
    pub name_en: String,
    /// French name.
    pub name_fr: String,
    /// Botanical family.
    pub family: String,
    /// Main harvest season in Europe.
    pub season: String,
    /// Nutrition per 100 g.
    pub nutrition: Nutrition,
    /// Where the nutrition figures come from.
    pub source: String,
}

/// Nutrients per 100 g of the raw edible part.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Nutrition {
    /// Energy, kcal.
    pub energy_kcal: f32,
    /// Water, g.
    pub water_g: f32,
    /// Protein, g.
    pub protein_g: f32,
    /// Total fat, g.
    pub fat_g: f32,
    /// Carbohydrate, g.
    pub carbohydrate_g: f32,
    /// Dietary fibre, g.
    pub fiber_g: f32,
    /// Total sugars, g.
    pub sugars_g: f32,
    /// Vitamin C, mg.
    pub vitamin_c_mg: f32,
    /// Potassium, mg.
    pub potassium_mg: f32,
}

impl From<recognizer::Recognition> for Recognition {
    fn from(r: recognizer::Recognition) -> Self {
        Self {
            label: r.label,
            confidence: r.confidence,
            top: r.top.into_iter().map(|(label, probability)| Candidate { label, probability }).collect(),
            info: r.info.map(Into::into),
            taught: r.taught,
        }
    }
}

impl From<catalogue::FruitInfo> for FruitInfo {
    fn from(f: catalogue::FruitInfo) -> Self {
        Self {
            class: f.class,
            name_en: f.name_en,
            name_fr: f.name_fr,
            family: f.family,
            season: f.season,
            nutrition: f.nutrition.into(),
            source: f.source,
        }
    }
}

impl From<catalogue::Nutrition> for Nutrition {
    fn from(n: catalogue::Nutrition) -> Self {
        Self {
            energy_kcal: n.energy_kcal,
            water_g: n.water_g,
            protein_g: n.protein_g,
            fat_g: n.fat_g,
            carbohydrate_g: n.carbohydrate_g,
            fiber_g: n.fiber_g,
            sugars_g: n.sugars_g,
            vitamin_c_mg: n.vitamin_c_mg,
            potassium_mg: n.potassium_mg,
        }
    }
}
