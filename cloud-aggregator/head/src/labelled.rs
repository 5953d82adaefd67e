//! Labelled embeddings gathered from shards, with one class list and one group list
//! (the devices the rows came from) for all of them.

use fruits_formats::Shard;

/// Labelled rows of one dimension; class and group indices refer to sorted lists.
///
/// A row's group is the device that uploaded it: photos of one device are taken by one
/// person, often of the same fruit, so calibration holds out whole groups, never rows
/// (a view of a photo on both sides of a split would make every held-out row easy).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelledSet {
    dim: usize,
    rows: Vec<f32>,
    labels: Vec<u32>,
    classes: Vec<String>,
    groups: Vec<u32>,
    group_names: Vec<String>,
}

/// Inserts `name` into the sorted `names` and returns its index; indices at or after
/// a new name's move up by one in `indices`.
fn index_of(names: &mut Vec<String>, indices: &mut [u32], name: &str) -> u32 {
    match names.binary_search_by(|n| n.as_str().cmp(name)) {
        Ok(i) => i as u32,
        Err(i) => {
            indices.iter_mut().filter(|x| **x as usize >= i).for_each(|x| *x += 1);
            names.insert(i, name.to_owned());
            i as u32
        }
    }
}

impl LabelledSet {
    /// An empty set of `dim`-wide rows.
    pub fn new(dim: usize) -> Self {
        Self { dim, ..Self::default() }
    }

    /// Adds one row of class `class` from group `group` (ignored if its width is not
    /// the set's).
    pub fn push(&mut self, row: &[f32], class: &str, group: &str) {
        if row.len() != self.dim {
            return;
        }
        let label = index_of(&mut self.classes, &mut self.labels, class);
        let group = index_of(&mut self.group_names, &mut self.groups, group);
        self.rows.extend_from_slice(row);
        self.labels.push(label);
        self.groups.push(group);
    }

    /// Adds every labelled row of a full-embedding shard of the set's dimension, in the
    /// group of the shard's device.
    pub fn add_shard(&mut self, shard: &Shard) {
        let device = shard.header().device_id.clone();
        for i in 0..shard.header().rows as usize {
            if let Some(label) = shard.label(i) {
                self.push(shard.row(i), label, &device);
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

    /// One group index per row.
    pub fn groups(&self) -> &[u32] {
        &self.groups
    }

    /// Group (device) names, sorted.
    pub fn group_names(&self) -> &[String] {
        &self.group_names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_and_groups_stay_sorted_and_indices_follow_them() {
        let mut set = LabelledSet::new(1);
        set.push(&[1.0], "Pear", "phone-b");
        set.push(&[2.0], "Apple", "phone-c");
        set.push(&[3.0], "Pear", "phone-a");
        set.push(&[4.0], "Kiwi", "phone-b");
        set.push(&[5.0, 6.0], "Fig", "phone-z");
        assert_eq!(set.classes(), ["Apple", "Kiwi", "Pear"]);
        assert_eq!(set.group_names(), ["phone-a", "phone-b", "phone-c"]);
        let named: Vec<&str> = set.labels().iter().map(|&l| set.classes()[l as usize].as_str()).collect();
        assert_eq!(named, ["Pear", "Apple", "Pear", "Kiwi"]);
        let groups: Vec<&str> = set.groups().iter().map(|&g| set.group_names()[g as usize].as_str()).collect();
        assert_eq!(groups, ["phone-b", "phone-c", "phone-a", "phone-b"]);
        assert_eq!(set.len(), 4);
    }
}
