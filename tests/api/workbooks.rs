//! Supplier product workbooks in each supplier's own layout, with the mess real ones carry: title
//! rows merged across the sheet, two-row headers, blank lines, numbers stored as text, extra
//! sheets and footers. Used by the tests, and by `cargo run --example product_workbooks` to write
//! them to a folder.

use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

pub const SUPPLIERS: [&str; 5] = ["botanitech", "medreleaf", "alma", "phytoca", "tasmanian-botanics"];

/// One product as a supplier lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub artg: Option<u32>,
    pub brand: String,
    pub product_name: String,
    pub category: u8,
    pub thc: f64,
    pub cbd: f64,
    pub form: &'static str,
    pub pack: String,
    pub price: f64,
}

const WORDS: [&str; 12] = [
    "Calm", "Harbour", "Tidal", "Summit", "Meadow", "Aurora", "Granite", "Willow", "Coastal", "Ember",
    "Lumen", "Basalt",
];
const FORMS: [&str; 4] = ["Oral liquid", "Dried flower", "Capsule", "Oral spray"];

/// `n` products, the same every time; `artg` numbers start at `first_artg`.
pub fn lines(n: usize, first_artg: u32) -> Vec<Line> {
    (0..n)
        .map(|i| {
            let category = (i % 5) as u8 + 1;
            let thc = if category <= 2 { 0.0 } else { (i % 4 * 5 + 5) as f64 };
            Line {
                artg: Some(first_artg + i as u32),
                brand: format!("{} {}", WORDS[i % WORDS.len()], i / WORDS.len() + 1),
                product_name: format!("Blend {}", i % 7 + 1),
                category,
                thc,
                cbd: (i % 3 * 10 + 10) as f64,
                form: FORMS[i % FORMS.len()],
                pack: if FORMS[i % FORMS.len()] == "Dried flower" { "10 g".into() } else { "25 mL".into() },
                price: 40.0 + (i * 7 % 200) as f64,
            }
        })
        .collect()
}

fn schedule_words(line: &Line) -> &'static str {
    if line.thc > 0.0 { "Schedule 8" } else { "Schedule 4" }
}

fn row_values(ws: &mut Worksheet, row: u32, cells: &[Value]) -> Result<(), XlsxError> {
    for (col, cell) in cells.iter().enumerate() {
        let col = col as u16;
        match cell {
            Value::Text(t) => ws.write_string(row, col, t)?,
            Value::Number(n) => ws.write_number(row, col, *n)?,
            Value::Blank => continue,
        };
    }
    Ok(())
}

enum Value {
    Text(String),
    Number(f64),
    Blank,
}

fn text(s: impl Into<String>) -> Value {
    Value::Text(s.into())
}

/// The workbook `supplier` would send for `lines`.
pub fn workbook(supplier: &str, lines: &[Line]) -> Vec<u8> {
    build(supplier, lines).expect("the workbook is written")
}

fn build(supplier: &str, lines: &[Line]) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    match supplier {
        "botanitech" => {
            // A notes sheet first, then a title merged over the header.
            wb.add_worksheet().set_name("Notes")?.write_string(
                0,
                0,
                "Prices include GST. Call 1800 000 000.",
            )?;
            let ws = wb.add_worksheet().set_name("Products")?;
            ws.merge_range(
                0,
                0,
                0,
                8,
                "Botanitech Pty Ltd: product list, November 2026",
                &Format::new().set_bold(),
            )?;
            let header = [
                "Trade/Brand name",
                "ARTG No",
                "TGA Category",
                "Poison Schedule",
                "THC (mg/mL)",
                "CBD (mg/mL)",
                "Dosage Form",
                "Pack Size",
                "Price (AUD)",
            ];
            row_values(ws, 2, &header.map(text))?;
            for (i, l) in lines.iter().enumerate() {
                let cells = [
                    text(&l.brand),
                    Value::Number(f64::from(l.artg.unwrap_or(0))),
                    text(format!("Category {}", l.category)),
                    text(schedule_words(l)),
                    Value::Number(l.thc),
                    Value::Number(l.cbd),
                    text(l.form),
                    text(&l.pack),
                    Value::Number(l.price),
                ];
                row_values(ws, 3 + i as u32, &cells)?;
            }
        }
        "medreleaf" => {
            // Numbers stored as text, dollar signs, and a blank line between every ten products.
            let ws = wb.add_worksheet().set_name("MedReleaf AU")?;
            let header = [
                "Product Name",
                "Strain",
                "ARTG ID",
                "Category",
                "Schedule",
                "THC %",
                "CBD %",
                "Format",
                "Size",
                "RRP inc GST",
            ];
            row_values(ws, 0, &header.map(text))?;
            let mut row = 1;
            for (i, l) in lines.iter().enumerate() {
                if i > 0 && i % 10 == 0 {
                    row += 1;
                }
                let cells = [
                    text(&l.brand),
                    text(&l.product_name),
                    l.artg.map_or(Value::Blank, |a| text(a.to_string())),
                    text(l.category.to_string()),
                    text(if l.thc > 0.0 { "S8" } else { "S4" }),
                    text(format!("{}", l.thc)),
                    text(format!("{}", l.cbd)),
                    text(l.form),
                    text(&l.pack),
                    text(format!("${:.2}", l.price)),
                ];
                row_values(ws, row, &cells)?;
                row += 1;
            }
        }
        "alma" => {
            // A two-row header: THC and CBD under a merged "Cannabinoids" cell, columns reordered.
            let ws = wb.add_worksheet().set_name("Sheet1")?;
            let top =
                ["Brand", "Product", "ARTG", "TGA Cat.", "Sched.", "", "", "Form", "Pack", "Wholesale Price"];
            row_values(ws, 0, &top.map(|t| if t.is_empty() { Value::Blank } else { text(t) }))?;
            ws.merge_range(0, 5, 0, 6, "Cannabinoids", &Format::new())?;
            ws.write_string(1, 5, "THC")?;
            ws.write_string(1, 6, "CBD")?;
            for (i, l) in lines.iter().enumerate() {
                let cells = [
                    text(&l.brand),
                    text(&l.product_name),
                    text(l.artg.map(|a| a.to_string()).unwrap_or_default()),
                    Value::Number(f64::from(l.category)),
                    text(if l.thc > 0.0 { "S8" } else { "S4" }),
                    Value::Number(l.thc),
                    Value::Number(l.cbd),
                    text(l.form),
                    text(&l.pack),
                    Value::Number(l.price),
                ];
                row_values(ws, 2 + i as u32, &cells)?;
            }
        }
        "phytoca" => {
            // An empty cover sheet, AUST L prefixes and strengths with their units.
            wb.add_worksheet().set_name("Cover")?;
            let ws = wb.add_worksheet().set_name("Price List")?;
            let header = [
                "Trade Name",
                "AUST L/R No.",
                "SAS Category",
                "Poisons Standard Schedule",
                "THC Content",
                "CBD Content",
                "Dose Form",
                "Pack Size",
                "Price ex GST",
            ];
            row_values(ws, 0, &header.map(text))?;
            for (i, l) in lines.iter().enumerate() {
                let cells = [
                    text(&l.brand),
                    text(l.artg.map(|a| format!("AUST L {a}")).unwrap_or_else(|| "N/A".into())),
                    text(format!("Cat {}", l.category)),
                    text(if l.thc > 0.0 { "S8" } else { "S4" }),
                    text(format!("{} mg/mL", l.thc)),
                    text(format!("{} mg/mL", l.cbd)),
                    text(l.form),
                    text(&l.pack),
                    Value::Number(l.price),
                ];
                row_values(ws, 1 + i as u32, &cells)?;
            }
        }
        "tasmanian-botanics" => {
            // Headers in odd case and spacing, and a footer line the import must reject.
            let ws = wb.add_worksheet().set_name("Products")?;
            let header = [
                "  product ",
                "ARTG  number",
                "CATEGORY",
                "schedule",
                "THC Strength",
                "CBD Strength",
                "Type",
                "Quantity",
                "Price",
            ];
            row_values(ws, 0, &header.map(text))?;
            for (i, l) in lines.iter().enumerate() {
                let cells = [
                    text(&l.brand),
                    Value::Number(f64::from(l.artg.unwrap_or(0))),
                    Value::Number(f64::from(l.category)),
                    text(if l.thc > 0.0 { "8" } else { "4" }),
                    Value::Number(l.thc),
                    Value::Number(l.cbd),
                    text(l.form),
                    text(&l.pack),
                    text(format!("{:.2}", l.price)),
                ];
                row_values(ws, 1 + i as u32, &cells)?;
            }
            ws.write_string(lines.len() as u32 + 2, 0, "Prices valid until 31 December 2026")?;
        }
        other => panic!("no layout for {other}"),
    }
    wb.save_to_buffer()
}
