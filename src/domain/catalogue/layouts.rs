//! Each supplier's spreadsheet layout: which of its column headers holds which product field.
//! Headers are matched ignoring case, spacing and punctuation, in any column order, on any sheet,
//! below title rows and across a two-row (merged) header.

use std::collections::HashSet;

use super::product::{self as rules, Cell, Product, Supplier, squash};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Artg,
    Brand,
    ProductName,
    Category,
    Schedule,
    Thc,
    Cbd,
    Form,
    PackSize,
    Price,
}

struct Layout {
    /// (field, the headers the supplier uses for it, required)
    columns: &'static [(Column, &'static [&'static str], bool)],
    thc_unit: &'static str,
    cbd_unit: &'static str,
    price_includes_gst: bool,
}

const BOTANITECH: Layout = Layout {
    columns: &[
        (Column::Brand, &["Trade/Brand name", "Brand name"], true),
        (Column::ProductName, &["Product Description"], false),
        (Column::Artg, &["ARTG No", "ARTG Number"], true),
        (Column::Category, &["TGA Category"], true),
        (Column::Schedule, &["Poison Schedule"], true),
        (Column::Thc, &["THC (mg/mL)", "THC"], true),
        (Column::Cbd, &["CBD (mg/mL)", "CBD"], true),
        (Column::Form, &["Dosage Form"], true),
        (Column::PackSize, &["Pack Size"], true),
        (Column::Price, &["Price (AUD)", "Price"], true),
    ],
    thc_unit: "mg/mL",
    cbd_unit: "mg/mL",
    price_includes_gst: true,
};

const MEDRELEAF: Layout = Layout {
    columns: &[
        (Column::Brand, &["Product Name"], true),
        (Column::ProductName, &["Strain", "Cultivar"], false),
        (Column::Artg, &["ARTG ID"], false),
        (Column::Category, &["Category"], true),
        (Column::Schedule, &["Schedule"], true),
        (Column::Thc, &["THC %", "THC (%)"], true),
        (Column::Cbd, &["CBD %", "CBD (%)"], true),
        (Column::Form, &["Format"], true),
        (Column::PackSize, &["Size"], true),
        (Column::Price, &["RRP inc GST", "RRP"], true),
    ],
    thc_unit: "%",
    cbd_unit: "%",
    price_includes_gst: true,
};

const ALMA: Layout = Layout {
    columns: &[
        (Column::Brand, &["Brand"], true),
        (Column::ProductName, &["Product"], true),
        (Column::Artg, &["ARTG"], true),
        (Column::Category, &["TGA Cat.", "TGA Cat"], true),
        (Column::Schedule, &["Sched.", "Sched"], true),
        (Column::Thc, &["THC"], true),
        (Column::Cbd, &["CBD"], true),
        (Column::Form, &["Form"], true),
        (Column::PackSize, &["Pack"], true),
        (Column::Price, &["Wholesale Price", "Wholesale"], true),
    ],
    thc_unit: "mg/mL",
    cbd_unit: "mg/mL",
    price_includes_gst: false,
};

const PHYTOCA: Layout = Layout {
    columns: &[
        (Column::Brand, &["Trade Name"], true),
        (Column::Artg, &["AUST L/R No.", "AUST R"], true),
        (Column::Category, &["SAS Category", "SAS-B Category"], true),
        (Column::Schedule, &["Poisons Standard Schedule"], true),
        (Column::Thc, &["THC Content"], true),
        (Column::Cbd, &["CBD Content"], true),
        (Column::Form, &["Dose Form"], true),
        (Column::PackSize, &["Pack Size"], true),
        (Column::Price, &["Price ex GST"], true),
    ],
    thc_unit: "mg/mL",
    cbd_unit: "mg/mL",
    price_includes_gst: false,
};

const TASMANIAN_BOTANICS: Layout = Layout {
    columns: &[
        (Column::Brand, &["Product"], true),
        (Column::Artg, &["ARTG Number"], true),
        (Column::Category, &["Category"], true),
        (Column::Schedule, &["Schedule"], true),
        (Column::Thc, &["THC strength"], true),
        (Column::Cbd, &["CBD strength"], true),
        (Column::Form, &["Type"], true),
        (Column::PackSize, &["Quantity"], true),
        (Column::Price, &["Price"], true),
    ],
    thc_unit: "mg/mL",
    cbd_unit: "mg/mL",
    price_includes_gst: true,
};

fn layout(supplier: Supplier) -> &'static Layout {
    match supplier {
        Supplier::Botanitech => &BOTANITECH,
        Supplier::MedReleaf => &MEDRELEAF,
        Supplier::Alma => &ALMA,
        Supplier::Phytoca => &PHYTOCA,
        Supplier::TasmanianBotanics => &TASMANIAN_BOTANICS,
    }
}

/// The headers of every column a supplier's layout needs, for a refusal message and docs.
pub fn required_headers(supplier: Supplier) -> Vec<&'static str> {
    layout(supplier)
        .columns
        .iter()
        .filter(|(_, _, required)| *required)
        .map(|(_, names, _)| names[0])
        .collect()
}

/// One worksheet's cells, row by row; `first_row` is the spreadsheet's number of `rows[0]`.
#[derive(Debug)]
pub struct SheetData {
    pub name: String,
    pub first_row: u32,
    pub rows: Vec<Vec<Cell>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub row: u32,
    pub reason: String,
}

/// What a workbook holds for one supplier.
#[derive(Debug)]
pub struct ReadSheet {
    pub sheet: String,
    pub products: Vec<(u32, Product)>,
    pub rejected: Vec<Rejection>,
    /// Keys of rejected rows that still name a product: those are not discontinued.
    pub held_keys: HashSet<String>,
}

/// The workbook matches none of the layout's header rows; `missing` names the columns the best
/// candidate lacked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutMismatch {
    pub missing: Vec<&'static str>,
}

/// How far down a sheet a header row may start (below titles, logos and notes).
const HEADER_SEARCH_ROWS: usize = 20;

struct Header {
    sheet: usize,
    /// Index in the sheet's rows of the first data row.
    data_from: usize,
    positions: Vec<(Column, usize)>,
}

/// Finds the supplier's header on any sheet and reads every row below it.
pub fn read(supplier: Supplier, sheets: &[SheetData]) -> Result<ReadSheet, LayoutMismatch> {
    let layout = layout(supplier);
    let header = find_header(layout, sheets)?;
    let sheet = &sheets[header.sheet];
    let mut read = ReadSheet {
        sheet: sheet.name.clone(),
        products: Vec::new(),
        rejected: Vec::new(),
        held_keys: HashSet::new(),
    };
    let mut first_seen: Vec<(String, u32)> = Vec::new();
    for (index, row) in sheet.rows.iter().enumerate().skip(header.data_from) {
        if row.iter().all(Cell::is_blank) {
            continue;
        }
        let number = sheet.first_row + u32::try_from(index).unwrap_or(u32::MAX);
        let cell = |column: Column| {
            header
                .positions
                .iter()
                .find(|(c, _)| *c == column)
                .and_then(|(_, i)| row.get(*i))
                .cloned()
                .unwrap_or(Cell::Empty)
        };
        match product(layout, &cell) {
            Ok(product) => {
                let key = product.key();
                if let Some((_, earlier)) = first_seen.iter().find(|(k, _)| *k == key) {
                    read.rejected.push(Rejection {
                        row: number,
                        reason: format!("the same product as row {earlier}"),
                    });
                } else {
                    first_seen.push((key, number));
                    read.products.push((number, product));
                }
            }
            Err(reasons) => {
                if let Some(key) = partial_key(&cell) {
                    read.held_keys.insert(key);
                }
                read.rejected.push(Rejection { row: number, reason: reasons.join("; ") });
            }
        }
    }
    Ok(read)
}

fn find_header(layout: &Layout, sheets: &[SheetData]) -> Result<Header, LayoutMismatch> {
    let mut best: Option<(usize, Vec<&'static str>)> = None;
    for (s, sheet) in sheets.iter().enumerate() {
        for r in 0..sheet.rows.len().min(HEADER_SEARCH_ROWS) {
            for depth in [1, 2] {
                let Some(rows) = sheet.rows.get(r..r + depth) else { continue };
                let (positions, missing) = match_header(layout, rows);
                if missing.is_empty() {
                    return Ok(Header { sheet: s, data_from: r + depth, positions });
                }
                if best.as_ref().is_none_or(|(found, _)| positions.len() > *found) {
                    best = Some((positions.len(), missing));
                }
            }
        }
    }
    let missing = best.map_or_else(|| required_names(layout), |(_, missing)| missing);
    Err(LayoutMismatch { missing })
}

fn required_names(layout: &Layout) -> Vec<&'static str> {
    layout.columns.iter().filter(|(_, _, required)| *required).map(|(_, names, _)| names[0]).collect()
}

/// Which column each field sits in (a header cell of any of `rows` may name it) and which
/// required fields are missing.
fn match_header(layout: &Layout, rows: &[Vec<Cell>]) -> (Vec<(Column, usize)>, Vec<&'static str>) {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut positions = Vec::new();
    let mut missing = Vec::new();
    let mut taken = HashSet::new();
    for (column, names, required) in layout.columns {
        let wanted: Vec<String> = names.iter().map(|n| squash(n)).collect();
        let found = (0..width).find(|i| {
            !taken.contains(i)
                && rows.iter().any(|row| row.get(*i).is_some_and(|c| wanted.contains(&squash(&c.text()))))
        });
        match found {
            Some(i) => {
                taken.insert(i);
                positions.push((*column, i));
            }
            None if *required => missing.push(names[0]),
            None => {}
        }
    }
    (positions, missing)
}

fn product(layout: &Layout, cell: &dyn Fn(Column) -> Cell) -> Result<Product, Vec<String>> {
    let mut reasons = Vec::new();
    let artg = kept(&mut reasons, rules::artg(&cell(Column::Artg).text()));
    let category = kept(&mut reasons, rules::category(&cell(Column::Category).text()));
    let schedule = kept(&mut reasons, rules::schedule(&cell(Column::Schedule).text()));
    let thc = kept(&mut reasons, rules::strength(&cell(Column::Thc), layout.thc_unit));
    let cbd = kept(&mut reasons, rules::strength(&cell(Column::Cbd), layout.cbd_unit));
    let price = kept(&mut reasons, rules::price(&cell(Column::Price)));
    let brand = cell(Column::Brand).text();
    let form = rules::form(&cell(Column::Form).text());
    let optional = |text: String| Some(text).filter(|t| !t.is_empty());
    let product = Product {
        artg_number: artg,
        product_name: optional(cell(Column::ProductName).text()),
        tga_category: category,
        schedule,
        thc,
        cbd,
        pack_size: optional(cell(Column::PackSize).text()),
        price,
        price_includes_gst: layout.price_includes_gst,
        brand,
        form,
    };
    if product.brand.is_empty() {
        reasons.push("the brand is empty".into());
    }
    if product.form.is_empty() {
        reasons.push("the form is empty".into());
    }
    reasons.extend(too_long(&product));
    if reasons.is_empty() { Ok(product) } else { Err(reasons) }
}

/// The value, or none with the reason noted.
fn kept<T>(reasons: &mut Vec<String>, result: Result<Option<T>, String>) -> Option<T> {
    result.unwrap_or_else(|reason| {
        reasons.push(reason);
        None
    })
}

fn too_long(p: &Product) -> Vec<String> {
    let mut reasons = Vec::new();
    let mut limit = |name: &str, value: Option<&str>, max: usize| {
        if value.is_some_and(|v| v.chars().count() > max) {
            reasons.push(format!("the {name} is longer than {max} characters"));
        }
    };
    limit("brand", Some(&p.brand), rules::BRAND_MAX);
    limit("product name", p.product_name.as_deref(), rules::BRAND_MAX);
    limit("form", Some(&p.form), rules::SHORT_MAX);
    limit("pack size", p.pack_size.as_deref(), rules::SHORT_MAX);
    limit("THC strength", p.thc.as_deref(), rules::SHORT_MAX);
    limit("CBD strength", p.cbd.as_deref(), rules::SHORT_MAX);
    reasons
}

/// The key a rejected row would have had, when its ARTG number (or brand and form) can be read.
fn partial_key(cell: &dyn Fn(Column) -> Cell) -> Option<String> {
    if let Ok(Some(artg)) = rules::artg(&cell(Column::Artg).text()) {
        return Some(format!("artg:{artg}"));
    }
    let brand = cell(Column::Brand).text();
    let form = rules::form(&cell(Column::Form).text());
    (!brand.is_empty() && !form.is_empty()).then(|| format!("brand:{}|{form}", brand.to_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Cell {
        if s.is_empty() { Cell::Empty } else { Cell::Text(s.into()) }
    }

    fn row(cells: &[&str]) -> Vec<Cell> {
        cells.iter().map(|c| text(c)).collect()
    }

    fn botanitech_header() -> Vec<Cell> {
        row(&[
            "Trade/Brand name",
            "ARTG No",
            "TGA Category",
            "Poison Schedule",
            "THC (mg/mL)",
            "CBD (mg/mL)",
            "Dosage Form",
            "Pack Size",
            "Price (AUD)",
        ])
    }

    #[test]
    fn headers_match_in_any_order_case_and_spacing_below_a_title() {
        let mut header = botanitech_header();
        header.reverse();
        let header: Vec<Cell> =
            header.into_iter().map(|c| Cell::Text(c.text().to_uppercase().replace(' ', "  "))).collect();
        let sheet = SheetData {
            name: "Products".into(),
            first_row: 1,
            rows: vec![
                row(&["Botanitech price list, November 2026"]),
                vec![],
                header,
                row(&[
                    "$52.00",
                    "25 mL",
                    "Oral liquid",
                    "100",
                    "",
                    "S4",
                    "Category 1",
                    "345678",
                    "Calm Drops",
                ]),
            ],
        };
        let read = read(Supplier::Botanitech, &[sheet]).unwrap();
        assert_eq!(read.products.len(), 1, "{read:?}");
        let (number, product) = &read.products[0];
        assert_eq!(*number, 4);
        assert_eq!((product.brand.as_str(), product.form.as_str()), ("Calm Drops", "oil"));
        assert_eq!(product.cbd.as_deref(), Some("100 mg/mL"));
        assert_eq!(product.thc, None);
    }

    #[test]
    fn a_two_row_header_under_merged_group_cells_is_found() {
        let sheet = SheetData {
            name: "Sheet1".into(),
            first_row: 1,
            rows: vec![
                row(&[
                    "Brand",
                    "Product",
                    "ARTG",
                    "TGA Cat.",
                    "Sched.",
                    "Cannabinoids",
                    "",
                    "Form",
                    "Pack",
                    "Wholesale Price",
                ]),
                row(&["", "", "", "", "", "THC", "CBD", "", "", ""]),
                row(&["Alma", "Balance 10:10", "412345", "3", "S8", "10", "10", "Oil", "30 mL", "89.10"]),
            ],
        };
        let read = read(Supplier::Alma, &[sheet]).unwrap();
        assert_eq!(read.products[0].1.thc.as_deref(), Some("10 mg/mL"));
        assert_eq!(read.products[0].0, 3);
    }

    #[test]
    fn an_unknown_layout_is_refused_naming_the_missing_columns() {
        let sheet = SheetData {
            name: "Sheet1".into(),
            first_row: 1,
            rows: vec![row(&["Trade/Brand name", "ARTG No", "Dosage Form", "Pack Size", "Price (AUD)"])],
        };
        let err = read(Supplier::Botanitech, &[sheet]).unwrap_err();
        assert_eq!(err.missing, ["TGA Category", "Poison Schedule", "THC (mg/mL)", "CBD (mg/mL)"]);
    }

    #[test]
    fn bad_rows_are_rejected_with_their_numbers_and_reasons_and_keep_their_products() {
        let sheet = SheetData {
            name: "Products".into(),
            first_row: 1,
            rows: vec![
                botanitech_header(),
                row(&["Calm Drops", "345678", "1", "S4", "", "100", "Oil", "25 mL", "52"]),
                row(&["Night Drops", "345679", "1", "S12", "", "100", "Oil", "25 mL", "ask"]),
                row(&["", "", "", "", "", "", "", "", ""]),
                row(&["Calm Drops", "345678", "1", "S4", "", "100", "Oil", "25 mL", "52"]),
                row(&["", "", "2", "S4", "", "", "", "", ""]),
            ],
        };
        let read = read(Supplier::Botanitech, &[sheet]).unwrap();
        assert_eq!(read.products.len(), 1);
        let rows: Vec<u32> = read.rejected.iter().map(|r| r.row).collect();
        assert_eq!(rows, [3, 5, 6]);
        assert!(
            read.rejected[0].reason.contains("schedule `S12`")
                && read.rejected[0].reason.contains("price `ask`")
        );
        assert_eq!(read.rejected[1].reason, "the same product as row 2");
        assert!(read.rejected[2].reason.contains("brand is empty"));
        assert!(read.held_keys.contains("artg:345679"), "a rejected row's product is not discontinued");
    }

    #[test]
    fn every_supplier_names_its_required_headers() {
        for supplier in Supplier::ALL {
            assert!(required_headers(supplier).len() >= 8, "{supplier}");
        }
    }
}
