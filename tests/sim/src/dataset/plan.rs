//! Which views of which photo go to `Training/` and which to `Test/`, and the
//! class each photo belongs to. Pure and deterministic.
//!
//! A class with one photo (most tuxpaint fruits) can only be tested on unseen
//! *views* of that photo, as Fruits-360 does. A class with several photos holds out
//! whole photos: every view of a held-out photo is in `Test/`, so the test measures
//! recognition of a fruit the head never saw.

use super::augment::SplitMix;

/// The two halves of a Fruits-360-style set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Side {
    /// `Training/`.
    Training,
    /// `Test/`.
    Test,
}

impl Side {
    /// The folder name.
    pub fn folder(self) -> &'static str {
        match self {
            Side::Training => "Training",
            Side::Test => "Test",
        }
    }
}

/// Words in a photo's file name that say how it was shot, not what it is.
const QUALIFIERS: [&str; 2] = ["sliced", "whole"];

/// The class of a photo from its file stem: the first word that is not a
/// qualifier, without trailing digits, capitalised (`apple_granny_smith` ->
/// `Apple`, `sliced_lime` -> `Lime`, `Strawberry2` -> `Strawberry`).
pub fn class_of(stem: &str) -> Option<String> {
    let word = stem
        .split(['_', '-', ' '])
        .map(|w| w.trim_end_matches(|c: char| c.is_ascii_digit()))
        .find(|w| !w.is_empty() && !QUALIFIERS.contains(&w.to_ascii_lowercase().as_str()))?;
    let mut chars = word.chars();
    let first = chars.next()?;
    Some(first.to_uppercase().chain(chars.flat_map(char::to_lowercase)).collect())
}

/// The two kinds of view of a photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// On a plain background (`<photo>_<view>.jpg`).
    Plain,
    /// As a phone would take it (`<photo>_p<view>.jpg`).
    Phone,
}

/// One view to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedView {
    /// Index of the photo in the list given to [`plan`].
    pub photo: usize,
    /// View number (plain view 0 is the photo itself).
    pub view: u32,
    /// Plain or phone-like.
    pub kind: Kind,
    /// Where it goes.
    pub side: Side,
}

/// How many views of each kind a photo gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Plain views per training photo.
    pub plain: u32,
    /// Phone-like views per training photo.
    pub phone: u32,
    /// Share of views (single-photo classes) or photos (other classes) for `Test/`.
    pub test_percent: u32,
}

/// Plans the views of every photo, of both kinds. Single-photo classes send about
/// `test_percent`% of their views (never plain view 0) to `Test/`; classes with several
/// photos hold out `round(n * test_percent / 100)` photos (at least one), chosen by a
/// hash of their names, each rendered `ceil(views * test_percent / 100)` times per kind,
/// so every class has about as many test views.
pub fn plan(photos: &[(String, String)], counts: Counts) -> Vec<PlannedView> {
    let name_hash = |name: &str| SplitMix::for_view(name, u32::MAX).next_u64();
    let kinds = [(Kind::Plain, counts.plain), (Kind::Phone, counts.phone)];
    let mut out = Vec::new();
    for (photo, (name, class)) in photos.iter().enumerate() {
        let mut siblings: Vec<&str> = photos.iter().filter(|(_, c)| c == class).map(|(n, _)| n.as_str()).collect();
        let single = siblings.len() == 1;
        siblings.sort_by_key(|n| (name_hash(n), n.to_string()));
        let held = ((siblings.len() as u32 * counts.test_percent + 50) / 100).max(1) as usize;
        let held_out = !single && siblings[..held].contains(&name.as_str());
        for (kind, views) in kinds {
            let salted = match kind {
                Kind::Plain => name.clone(),
                Kind::Phone => format!("{name}#phone"),
            };
            if single {
                out.extend((0..views).map(|view| {
                    let first = kind == Kind::Plain && view == 0;
                    let draw = SplitMix::for_view(&salted, view).next_u64() % 100;
                    let test = !first && draw < u64::from(counts.test_percent);
                    PlannedView { photo, view, kind, side: if test { Side::Test } else { Side::Training } }
                }));
            } else if held_out {
                let test_views = (views * counts.test_percent).div_ceil(100).max(u32::from(views > 0));
                out.extend((0..test_views).map(|view| PlannedView { photo, view, kind, side: Side::Test }));
            } else {
                out.extend((0..views).map(|view| PlannedView { photo, view, kind, side: Side::Training }));
            }
        }
    }
    out
}

/// The seed of a photo's phone-like views of one purpose (`"phone"` for the data set's;
/// benchmarks use names of their own, so that their views are never the training ones).
pub fn phone_seed(photo: &str, purpose: &str, view: u32) -> SplitMix {
    SplitMix::for_view(&format!("{photo}#{purpose}"), view)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_come_from_file_names() {
        let names = ["apple_granny_smith", "Apricot_whole", "sliced_lime", "Strawberry2", "grapes", "Cherry_Stella"];
        let classes: Vec<String> = names.iter().map(|n| class_of(n).unwrap()).collect();
        assert_eq!(classes, ["Apple", "Apricot", "Lime", "Strawberry", "Grapes", "Cherry"]);
        assert_eq!(class_of("sliced_2"), None);
    }

    fn photos(names: &[&str]) -> Vec<(String, String)> {
        names.iter().map(|n| (n.to_string(), class_of(n).unwrap())).collect()
    }

    #[test]
    fn a_photo_of_a_multi_photo_class_is_on_one_side_only() {
        let photos = photos(&["apple_red", "apple_green", "apple_fuji", "apple_gala", "apple_pink", "kiwi"]);
        let plan = plan(&photos, Counts { plain: 40, phone: 10, test_percent: 20 });
        for (i, (name, _)) in photos.iter().enumerate() {
            let sides: Vec<Side> = plan.iter().filter(|v| v.photo == i).map(|v| v.side).collect();
            if name.starts_with("apple") {
                assert!(sides.iter().all(|s| *s == sides[0]), "{name}");
            }
        }
        let held: Vec<&str> = photos
            .iter()
            .enumerate()
            .filter(|(i, _)| plan.iter().any(|v| v.photo == *i && v.side == Side::Test) && *i < 5)
            .map(|(_, (n, _))| n.as_str())
            .collect();
        assert_eq!(held.len(), 1, "one apple of five held out: {held:?}");
        assert_eq!(plan.iter().filter(|v| photos[v.photo].0 == held[0] && v.kind == Kind::Plain).count(), 8);
        assert_eq!(plan.iter().filter(|v| photos[v.photo].0 == held[0] && v.kind == Kind::Phone).count(), 2);
    }

    #[test]
    fn a_single_photo_class_splits_its_views_deterministically() {
        let photos = photos(&["kiwi"]);
        let counts = Counts { plain: 100, phone: 100, test_percent: 20 };
        let first = plan(&photos, counts);
        assert_eq!(first, plan(&photos, counts));
        for kind in [Kind::Plain, Kind::Phone] {
            let test = first.iter().filter(|v| v.side == Side::Test && v.kind == kind).count();
            assert!((10..=30).contains(&test), "{test}");
        }
        assert_eq!((first[0].kind, first[0].side), (Kind::Plain, Side::Training));
    }
}
