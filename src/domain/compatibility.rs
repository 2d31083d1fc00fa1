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
    /// Session ids and data, which PHP's PDO handlers keep in either.
    TextOrBytes,
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
            Self::TextOrBytes => Self::Text.accepts(column_type) || Self::Bytes.accepts(column_type),
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
            Self::TextOrBytes => "a binary or character type",
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
    required.iter().flat_map(|table| table_problems(table.name, table.columns, live)).collect()
}

/// The problems of one table, `name` being how `live` and the messages call it.
pub fn table_problems(name: &str, required: &[(&str, ColumnKind)], live: &[LiveColumn]) -> Vec<String> {
    let columns: HashMap<&str, &str> = live
        .iter()
        .filter(|c| c.table == name)
        .map(|c| (c.column.as_str(), c.column_type.as_str()))
        .collect();
    if columns.is_empty() {
        return vec![format!("table `{name}` is missing")];
    }
    required
        .iter()
        .filter_map(|(column, kind)| match columns.get(column) {
            None => Some(format!("column `{name}.{column}` is missing")),
            Some(found) if !kind.accepts(found) => {
                Some(format!("column `{name}.{column}` is {found}, expected {}", kind.describe()))
            }
            Some(_) => None,
        })
        .collect()
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
