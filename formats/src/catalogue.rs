//! Fruit information shipped with the projection artifact, so that a phone answers
//! "what is it and what is in it" offline: names, family, season and nutrition.

use crate::error::FormatError;
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

/// Longest text field of a catalogue entry, in bytes.
pub const MAX_TEXT_LEN: usize = 512;

impl Nutrition {
    fn values(&self) -> [f32; 9] {
        [
            self.energy_kcal,
            self.water_g,
            self.protein_g,
            self.fat_g,
            self.carbohydrate_g,
            self.fiber_g,
            self.sugars_g,
            self.vitamin_c_mg,
            self.potassium_mg,
        ]
    }
}

impl FruitInfo {
    /// Checks that every text is non-empty and bounded and every amount finite and
    /// non-negative, with grams summing to at most 100 g (per 100 g).
    pub fn validate(&self) -> Result<(), FormatError> {
        let bad = |reason: String| Err(FormatError::Inconsistent { kind: "catalogue entry", reason });
        let texts = [
            ("class", &self.class),
            ("name_en", &self.name_en),
            ("name_fr", &self.name_fr),
            ("family", &self.family),
            ("season", &self.season),
            ("source", &self.source),
        ];
        if let Some((field, _)) = texts.iter().find(|(_, t)| t.is_empty() || t.len() > MAX_TEXT_LEN) {
            return bad(format!("{}: {field} is empty or longer than {MAX_TEXT_LEN} bytes", self.class));
        }
        let n = &self.nutrition;
        if !n.values().iter().all(|v| v.is_finite() && *v >= 0.0) {
            return bad(format!("{}: negative or non-finite nutrient", self.class));
        }
        let grams = n.water_g + n.protein_g + n.fat_g + n.carbohydrate_g;
        if grams > 101.0 {
            return bad(format!("{}: {grams} g of water, protein, fat and carbohydrate in 100 g", self.class));
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// USDA FoodData Central, SR Legacy 171688 "Apples, raw, with skin".
    pub(crate) fn apple() -> FruitInfo {
        FruitInfo {
            class: "Apple".into(),
            name_en: "Apple".into(),
            name_fr: "Pomme".into(),
            family: "Rosaceae".into(),
            season: "August to November".into(),
            nutrition: Nutrition {
                energy_kcal: 52.0,
                water_g: 85.56,
                protein_g: 0.26,
                fat_g: 0.17,
                carbohydrate_g: 13.81,
                fiber_g: 2.4,
                sugars_g: 10.39,
                vitamin_c_mg: 4.6,
                potassium_mg: 107.0,
            },
            source: "USDA FoodData Central, SR Legacy, FDC ID 171688".into(),
        }
    }

    #[test]
    fn real_entries_pass_and_impossible_ones_fail() {
        assert!(apple().validate().is_ok());
        let mut negative = apple();
        negative.nutrition.fat_g = -1.0;
        assert!(negative.validate().is_err());
        let mut heavy = apple();
        heavy.nutrition.water_g = 99.0;
        assert!(heavy.validate().is_err());
        let mut unnamed = apple();
        unnamed.name_fr.clear();
        assert!(unnamed.validate().is_err());
    }
}
