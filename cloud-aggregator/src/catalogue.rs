//! The fruit catalogue published with the recognition head: the bundled
//! `data/catalogue.json` (one entry per class of the tuxpaint-derived set, nutrition
//! from USDA FoodData Central SR Legacy, cited per entry) or an operator's file.

use fruits_formats::FruitInfo;

/// The catalogue compiled into the aggregator.
pub const BUNDLED: &str = include_str!("../data/catalogue.json");

/// Why a catalogue file is refused.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    /// Not a JSON list of entries.
    #[error("catalogue is not a JSON list of fruit entries: {0}")]
    Json(#[from] serde_json::Error),
    /// An entry fails its checks.
    #[error("catalogue entry refused: {0}")]
    Entry(#[from] fruits_formats::FormatError),
    /// Two entries describe the same class.
    #[error("catalogue describes {0:?} twice")]
    Duplicate(String),
}

/// Parses and checks a catalogue: every entry valid, each class once.
pub fn parse(json: &[u8]) -> Result<Vec<FruitInfo>, CatalogueError> {
    let entries: Vec<FruitInfo> = serde_json::from_slice(json)?;
    let mut classes: Vec<&str> = Vec::with_capacity(entries.len());
    for entry in &entries {
        entry.validate()?;
        if classes.contains(&entry.class.as_str()) {
            return Err(CatalogueError::Duplicate(entry.class.clone()));
        }
        classes.push(&entry.class);
    }
    Ok(entries)
}

/// The bundled catalogue.
pub fn bundled() -> Result<Vec<FruitInfo>, CatalogueError> {
    parse(BUNDLED.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_catalogue_is_valid_and_cites_usda_for_every_entry() {
        let catalogue = bundled().unwrap();
        assert_eq!(catalogue.len(), 18);
        assert!(catalogue.iter().all(|e| e.source.contains("USDA FoodData Central") && e.source.contains("FDC ID")));
        let apple = catalogue.iter().find(|e| e.class == "Apple").unwrap();
        assert_eq!((apple.name_fr.as_str(), apple.nutrition.energy_kcal), ("Pomme", 52.0));
    }

    #[test]
    fn duplicates_and_bad_entries_are_refused() {
        let one = serde_json::to_string(&bundled().unwrap()[0]).unwrap();
        assert!(matches!(parse(format!("[{one},{one}]").as_bytes()), Err(CatalogueError::Duplicate(_))));
        let negative = one.replace("\"energy_kcal\":52.0", "\"energy_kcal\":-52.0");
        assert!(matches!(parse(format!("[{negative}]").as_bytes()), Err(CatalogueError::Entry(_))));
        assert!(matches!(parse(b"{}"), Err(CatalogueError::Json(_))));
    }
}
