//! Every OpenEMR table and column the storage layer's SQL touches. `mmt-sidecar check` verifies
//! them against the live database; add a column here in the same change that starts using it.

use crate::domain::compatibility::{ColumnKind::*, RequiredTable};

pub const REQUIRED: &[RequiredTable] = &[
    RequiredTable {
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
    },
    RequiredTable { name: "gacl_aro", columns: &[("id", Integer), ("section_value", Text), ("value", Text)] },
    RequiredTable { name: "gacl_groups_aro_map", columns: &[("group_id", Integer), ("aro_id", Integer)] },
    RequiredTable {
        name: "gacl_aro_groups",
        columns: &[("id", Integer), ("lft", Integer), ("rgt", Integer), ("name", Text), ("value", Text)],
    },
    RequiredTable {
        name: "gacl_acl",
        columns: &[("id", Integer), ("allow", Integer), ("enabled", Integer), ("return_value", Text)],
    },
    RequiredTable {
        name: "gacl_aco_map",
        columns: &[("acl_id", Integer), ("section_value", Text), ("value", Text)],
    },
    RequiredTable {
        name: "gacl_aro_map",
        columns: &[("acl_id", Integer), ("section_value", Text), ("value", Text)],
    },
    RequiredTable { name: "gacl_aro_groups_map", columns: &[("acl_id", Integer), ("group_id", Integer)] },
    RequiredTable {
        name: "log",
        columns: &[
            ("id", Integer),
            ("date", DateTime),
            ("event", Text),
            ("category", Text),
            ("user", Text),
            ("groupname", Text),
            ("comments", Text),
            ("user_notes", Text),
            ("patient_id", Integer),
            ("success", Integer),
            ("crt_user", Text),
            ("log_from", Text),
            ("menu_item_id", Integer),
            ("ccda_doc_id", Integer),
        ],
    },
    RequiredTable {
        name: "log_comment_encrypt",
        columns: &[
            ("log_id", Integer),
            ("encrypt", Text),
            ("checksum", Text),
            ("checksum_api", Text),
            ("version", Integer),
        ],
    },
];
