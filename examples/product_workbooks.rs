//! Writes a product workbook in each supplier's layout (with their mess: merged titles, two-row
//! headers, blank lines, numbers stored as text, extra sheets, footers) into a folder, for trying
//! imports by hand or with `mmt-sidecar import-products`.
//!
//!   cargo run --example product_workbooks -- DIR [ROWS]

#[path = "../tests/api/workbooks.rs"]
mod workbooks;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "product-workbooks".into()));
    let rows = args.next().and_then(|r| r.parse().ok()).unwrap_or(50);
    std::fs::create_dir_all(&dir)?;
    for (n, supplier) in workbooks::SUPPLIERS.into_iter().enumerate() {
        let path = dir.join(format!("{supplier}.xlsx"));
        std::fs::write(
            &path,
            workbooks::workbook(supplier, &workbooks::lines(rows, 400_000 + 10_000 * n as u32)),
        )?;
        println!("{}", path.display());
    }
    Ok(())
}
