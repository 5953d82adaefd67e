//! Labelled embeddings gathered from shards, with one class list for all of them.

use fruits_formats::Shard;

/// Labelled rows of one dimension; class indices refer to a sorted class list.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelledSet {
    dim: usize,
    rows: Vec<f32>,
    labels: Vec<u32>,
    classes: Vec<String>,
}

impl LabelledSet {
    /// An empty set of `dim`-wide rows.
    pub fn new(dim: usize) -> Self {
        Self { dim, ..Self::default() }
    }

    /// Adds one row of class `class` (ignored if its width is not the set's).
    pub fn push(&mut self, row: &[f32], class: &str) {
        if row.len() != self.dim {
            return;
        }
        let index = match self.classes.binary_search_by(|c| c.as_str().cmp(class)) {
            Ok(i) => i,
            Err(i) => {
                // A new class sorts in at `i`: later classes move up by one.
                self.labels.iter_mut().filter(|l| **l as usize >= i).for_each(|l| *l += 1);
                self.classes.insert(i, class.to_owned());
                i
            }
        };
        self.rows.extend_from_slice(row);
        self.labels.push(index as u32);
    }

    /// Adds every labelled row of a full-embedding shard of the set's dimension.
    pub fn add_shard(&mut self, shard: &Shard) {
        for i in 0..shard.header().rows as usize {
            if let Some(label) = shard.label(i) {
                self.push(shard.row(i), label);
            }
        }
    }

    /// Row width.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// `true` when no row was added.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// All rows, `len x dim`, row-major, in the order added.
    pub fn rows(&self) -> &[f32] {
        &self.rows
    }

    /// One class index per row.
    pub fn labels(&self) -> &[u32] {
        &self.labels
    }

    /// Class names, sorted.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_stay_sorted_and_labels_follow_them() {
        let mut set = LabelledSet::new(1);
        set.push(&[1.0], "Pear");
        set.push(&[2.0], "Apple");
        set.push(&[3.0], "Pear");
        set.push(&[4.0], "Kiwi");
        set.push(&[5.0, 6.0], "Fig");
        assert_eq!(set.classes(), ["Apple", "Kiwi", "Pear"]);
        let named: Vec<&str> = set.labels().iter().map(|&l| set.classes()[l as usize].as_str()).collect();
        assert_eq!(named, ["Pear", "Apple", "Pear", "Kiwi"]);
        assert_eq!(set.len(), 4);
    }
}
