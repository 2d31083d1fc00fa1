//! What an import changes: each product in the sheet is created, updated or unchanged by its key;
//! a product the supplier no longer lists is discontinued. Importing the same sheet twice changes
//! nothing the second time.

use std::collections::{HashMap, HashSet};

use super::product::Product;

/// A product already in the catalogue for the supplier.
#[derive(Debug, Clone)]
pub struct Stored {
    pub id: i64,
    pub product: Product,
    pub discontinued: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Create {
        row: u32,
        product: Product,
    },
    /// Also a product coming back after it was discontinued.
    Update {
        row: u32,
        id: i64,
        product: Product,
    },
    Unchanged {
        id: i64,
    },
    Discontinue {
        id: i64,
        product: Product,
    },
}

pub fn plan(stored: Vec<Stored>, incoming: Vec<(u32, Product)>, held: &HashSet<String>) -> Vec<Change> {
    let mut by_key: HashMap<String, Stored> = stored.into_iter().map(|s| (s.product.key(), s)).collect();
    let mut changes: Vec<Change> = incoming
        .into_iter()
        .map(|(row, product)| match by_key.remove(&product.key()) {
            None => Change::Create { row, product },
            Some(s) if s.product == product && !s.discontinued => Change::Unchanged { id: s.id },
            Some(s) => Change::Update { row, id: s.id, product },
        })
        .collect();
    let mut gone: Vec<Stored> = by_key
        .into_iter()
        .filter(|(key, s)| !s.discontinued && !held.contains(key))
        .map(|(_, s)| s)
        .collect();
    gone.sort_by_key(|s| s.id);
    changes.extend(gone.into_iter().map(|s| Change::Discontinue { id: s.id, product: s.product }));
    changes
}

/// Counts for the import report.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub discontinued: usize,
}

pub fn count(changes: &[Change]) -> Counts {
    let mut counts = Counts::default();
    for change in changes {
        match change {
            Change::Create { .. } => counts.created += 1,
            Change::Update { .. } => counts.updated += 1,
            Change::Unchanged { .. } => counts.unchanged += 1,
            Change::Discontinue { .. } => counts.discontinued += 1,
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(artg: &str, price: i64) -> Product {
        Product {
            artg_number: Some(artg.into()),
            brand: format!("Brand {artg}"),
            product_name: None,
            tga_category: Some(1),
            schedule: Some("S4".into()),
            thc: None,
            cbd: Some("100 mg/mL".into()),
            form: "oil".into(),
            pack_size: Some("25 mL".into()),
            price: Some(rust_decimal::Decimal::new(price, 0)),
            price_includes_gst: true,
        }
    }

    fn stored(id: i64, artg: &str, price: i64, discontinued: bool) -> Stored {
        Stored { id, product: product(artg, price), discontinued }
    }

    #[test]
    fn each_product_is_created_updated_unchanged_or_discontinued_by_its_key() {
        let existing = vec![stored(1, "1", 50, false), stored(2, "2", 60, false), stored(3, "3", 70, false)];
        let incoming = vec![(2, product("1", 50)), (3, product("2", 65)), (4, product("4", 80))];
        let changes = plan(existing, incoming, &HashSet::new());
        assert_eq!(
            changes,
            vec![
                Change::Unchanged { id: 1 },
                Change::Update { row: 3, id: 2, product: product("2", 65) },
                Change::Create { row: 4, product: product("4", 80) },
                Change::Discontinue { id: 3, product: product("3", 70) },
            ]
        );
        assert_eq!(count(&changes), Counts { created: 1, updated: 1, unchanged: 1, discontinued: 1 });
    }

    #[test]
    fn a_product_back_on_the_list_is_an_update_and_gone_ones_stay_gone() {
        let existing = vec![stored(1, "1", 50, true), stored(2, "2", 60, true)];
        let changes = plan(existing, vec![(2, product("1", 50))], &HashSet::new());
        assert_eq!(changes, vec![Change::Update { row: 2, id: 1, product: product("1", 50) }]);
    }

    #[test]
    fn a_product_whose_row_was_rejected_is_not_discontinued() {
        let held: HashSet<String> = ["artg:2".to_string()].into();
        let changes = plan(vec![stored(2, "2", 60, false)], vec![], &held);
        assert!(changes.is_empty());
    }
}
