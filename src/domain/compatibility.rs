//! Is the live OpenEMR schema one the sidecar can work with? Compares what the storage layer
//! uses with what information_schema reports.

use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Integer,
    Text,
    /// OpenEMR's `binary(16)` uuid columns.
    Uuid,
    Date,
    DateTime,
    Decimal,
    Bytes,
}

impl ColumnKind {
    fn accepts(self, column_type: &str) -> bool {
        let t = column_type.to_ascii_lowercase();
        let base = t.split(['(', ' ']).next().unwrap_or_default();
        match self {
            Self::Integer => matches!(base, "tinyint" | "smallint" | "mediumint" | "int" | "bigint"),
            Self::Text => {
                matches!(base, "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum")
            }
            Self::Uuid => t == "binary(16)",
            Self::Date => base == "date",
            Self::DateTime => matches!(base, "datetime" | "timestamp"),
            Self::Decimal => matches!(base, "decimal" | "float" | "double"),
            Self::Bytes => {
                matches!(base, "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob")
            }
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Integer => "an integer type",
            Self::Text => "a character type",
            Self::Uuid => "binary(16)",
            Self::Date => "date",
            Self::DateTime => "datetime or timestamp",
            Self::Decimal => "a numeric type",
            Self::Bytes => "a binary type",
        }
    }
}

pub struct RequiredTable {
    pub name: &'static str,
    pub columns: &'static [(&'static str, ColumnKind)],
}

#[derive(Debug, Clone)]
pub struct LiveColumn {
    pub table: String,
    pub column: String,
    pub column_type: String,
}

/// One readable line per missing table, missing column or incompatible type.
pub fn problems(required: &[RequiredTable], live: &[LiveColumn]) -> Vec<String> {
    let mut by_table: HashMap<&str, HashMap<&str, &str>> = HashMap::new();
    for c in live {
        by_table.entry(&c.table).or_default().insert(&c.column, &c.column_type);
    }
    let mut problems = Vec::new();
    for table in required {
        let Some(columns) = by_table.get(table.name) else {
            problems.push(format!("table `{}` is missing", table.name));
            continue;
        };
        for (column, kind) in table.columns {
            match columns.get(column) {
                None => problems.push(format!("column `{}.{}` is missing", table.name, column)),
                Some(found) if !kind.accepts(found) => problems.push(format!(
                    "column `{}.{}` is {found}, expected {}",
                    table.name,
                    column,
                    kind.describe()
                )),
                Some(_) => {}
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(table: &str, column: &str, ty: &str) -> LiveColumn {
        LiveColumn { table: table.into(), column: column.into(), column_type: ty.into() }
    }

    const REQUIRED: &[RequiredTable] = &[RequiredTable {
        name: "patient_data",
        columns: &[("pid", ColumnKind::Integer), ("uuid", ColumnKind::Uuid), ("DOB", ColumnKind::Date)],
    }];

    #[test]
    fn reports_missing_tables_columns_and_wrong_types() {
        assert_eq!(problems(REQUIRED, &[]), vec!["table `patient_data` is missing"]);
        let found = problems(
            REQUIRED,
            &[live("patient_data", "pid", "bigint(20)"), live("patient_data", "uuid", "varchar(36)")],
        );
        assert_eq!(
            found,
            vec![
                "column `patient_data.uuid` is varchar(36), expected binary(16)",
                "column `patient_data.DOB` is missing"
            ]
        );
    }

    #[test]
    fn accepts_compatible_types() {
        let cols = [
            live("patient_data", "pid", "int(11) unsigned"),
            live("patient_data", "uuid", "binary(16)"),
            live("patient_data", "DOB", "date"),
        ];
        assert!(problems(REQUIRED, &cols).is_empty());
    }
}
