//! Fruit information shipped with the projection artifact, so that a phone answers
//! "what is it and what is in it" offline: names, family, season and nutrition.

use serde::{Deserialize, Serialize};

/// Nutrients per 100 g of the raw edible part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Nutrition {
    /// Energy, kcal.
    pub energy_kcal: f32,
    /// Water, g.
    pub water_g: f32,
    /// Protein, g.
    pub protein_g: f32,
    /// Total fat, g.
    pub fat_g: f32,
    /// Carbohydrate by difference, g.
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

/// What the app shows about one recognised class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FruitInfo {
    /// The class label as in the training data (the Fruits-360 folder name).
    pub class: String,
    /// English name.
    pub name_en: String,
    /// French name.
    pub name_fr: String,
    /// Botanical family, e.g. "Rosaceae".
    pub family: String,
    /// Main harvest season in Europe, e.g. "September to November".
    pub season: String,
    /// Nutrition per 100 g.
    pub nutrition: Nutrition,
    /// Where the nutrition figures come from (e.g. the USDA FoodData Central entry).
    pub source: String,
}
