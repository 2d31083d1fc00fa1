//! Every OpenEMR table and column the storage layer's SQL touches. `mmt-sidecar check` verifies
//! them against the live database; add a column here in the same change that starts using it.

use crate::domain::compatibility::{ColumnKind::*, RequiredTable};

pub const REQUIRED: &[RequiredTable] = &[RequiredTable {
    name: "version",
    columns: &[
        ("v_major", Integer),
        ("v_minor", Integer),
        ("v_patch", Integer),
        ("v_realpatch", Integer),
        ("v_tag", Text),
        ("v_database", Integer),
        ("v_acl", Integer),
    ],
}];
