//! Reading an `.xlsx` workbook into cells, with bounds: a workbook is a zip, and a small zip can
//! claim gigabytes of XML, so the declared sizes are checked before anything is inflated.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};

use crate::domain::catalogue::{layouts::SheetData, product::Cell};

/// What all of a workbook's parts may inflate to; a 10,000-row product list is about 5 MB.
const MAX_INFLATED_BYTES: u64 = 256 * 1024 * 1024;
const MAX_SHEETS: usize = 32;

/// Every worksheet's cells, or why the file cannot be read as a workbook.
pub fn sheets(bytes: &[u8]) -> Result<Vec<SheetData>, String> {
    check_inflated_size(bytes)?;
    let mut workbook: Xlsx<_> =
        Xlsx::new(Cursor::new(bytes)).map_err(|e| format!("the file is not an .xlsx workbook ({e})"))?;
    let names = workbook.sheet_names();
    if names.len() > MAX_SHEETS {
        return Err(format!("the workbook has {} sheets; at most {MAX_SHEETS} are read", names.len()));
    }
    names
        .into_iter()
        .map(|name| {
            let range = workbook
                .worksheet_range(&name)
                .map_err(|e| format!("sheet `{name}` cannot be read ({e})"))?;
            let first_row = range.start().map_or(1, |(row, _)| row + 1);
            let rows = range.rows().map(|row| row.iter().map(cell).collect()).collect();
            Ok(SheetData { name, first_row, rows })
        })
        .collect()
}

fn check_inflated_size(bytes: &[u8]) -> Result<(), String> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|_| "the file is not an .xlsx workbook".to_string())?;
    let mut total: u64 = 0;
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(|e| format!("the workbook is damaged ({e})"))?;
        total = total.saturating_add(entry.size());
    }
    if total > MAX_INFLATED_BYTES {
        return Err(format!("the workbook inflates to {total} bytes; at most {MAX_INFLATED_BYTES} are read"));
    }
    Ok(())
}

fn cell(data: &Data) -> Cell {
    match data {
        Data::Empty | Data::Error(_) => Cell::Empty,
        Data::Int(i) => Cell::Number(*i as f64),
        Data::Float(f) => Cell::Number(*f),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => Cell::Text(s.clone()),
        Data::Bool(b) => Cell::Text(b.to_string()),
        Data::DateTime(d) => Cell::Number(d.as_f64()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anything_but_a_workbook_is_refused_with_a_reason() {
        assert!(sheets(b"Brand,ARTG\nCalm,1\n").unwrap_err().contains("not an .xlsx workbook"));
        assert!(sheets(&[]).is_err());
    }
}
