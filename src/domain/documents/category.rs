//! OpenEMR's document categories: a nested-set tree (`lft`/`rght`) under the root "Categories",
//! each with the ACO (`aco_spec`) a user needs to see or file documents in it.

use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    pub id: i64,
    pub name: String,
    pub parent: i64,
    pub lft: i64,
    pub rght: i64,
    pub aco_spec: String,
    pub codes: String,
}

/// A category with its children, in `lft` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub category: Category,
    pub children: Vec<Node>,
}

/// Every category, for paths and the tree.
pub struct Tree {
    by_id: HashMap<i64, Category>,
    ordered: Vec<i64>,
}

impl Tree {
    pub fn new(mut rows: Vec<Category>) -> Self {
        rows.sort_by_key(|c| (c.lft, c.id));
        let ordered = rows.iter().map(|c| c.id).collect();
        Self { by_id: rows.into_iter().map(|c| (c.id, c)).collect(), ordered }
    }

    pub fn get(&self, id: i64) -> Option<&Category> {
        self.by_id.get(&id)
    }

    /// `Categories/Medical Record`: names from the root down, as OpenEMR shows a document's place.
    pub fn path(&self, id: i64) -> String {
        let mut names = Vec::new();
        let mut at = self.by_id.get(&id);
        // A corrupt parent chain cannot loop forever: a path is never longer than the tree.
        while let Some(c) = at.filter(|_| names.len() <= self.by_id.len()) {
            names.push(c.name.as_str());
            at = (c.parent != 0).then(|| self.by_id.get(&c.parent)).flatten();
        }
        names.reverse();
        names.join("/")
    }

    /// The categories under `parent` (0: the roots), each with its own children.
    pub fn children(&self, parent: i64) -> Vec<Node> {
        self.ordered
            .iter()
            .filter_map(|id| self.by_id.get(id))
            .filter(|c| c.parent == parent && c.id != parent)
            .map(|c| Node { category: c.clone(), children: self.children(c.id) })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat(id: i64, name: &str, parent: i64, lft: i64, rght: i64) -> Category {
        Category {
            id,
            name: name.into(),
            parent,
            lft,
            rght,
            aco_spec: "patients|docs".into(),
            codes: String::new(),
        }
    }

    #[test]
    fn paths_and_children_follow_the_nested_set() {
        let tree = Tree::new(vec![
            cat(6, "Advance Directive", 1, 5, 12),
            cat(1, "Categories", 0, 0, 67),
            cat(3, "Medical Record", 1, 3, 4),
            cat(7, "Do Not Resuscitate Order", 6, 6, 7),
            cat(2, "Lab Report", 1, 1, 2),
        ]);
        assert_eq!(tree.path(7), "Categories/Advance Directive/Do Not Resuscitate Order");
        assert_eq!(tree.path(3), "Categories/Medical Record");
        assert_eq!(tree.path(99), "");
        let roots = tree.children(0);
        assert_eq!(roots.len(), 1);
        let names: Vec<_> = roots[0].children.iter().map(|n| n.category.name.as_str()).collect();
        assert_eq!(names, ["Lab Report", "Medical Record", "Advance Directive"]);
        assert_eq!(roots[0].children[2].children[0].category.id, 7);
    }
}
