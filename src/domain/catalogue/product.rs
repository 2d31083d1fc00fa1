//! A supplier's product as prescribers pick it: one model whatever the supplier's spreadsheet
//! calls its columns, with the cell rules that turn a messy cell into a clean value.

use std::fmt;

use rust_decimal::Decimal;

/// A cell as read from a workbook: spreadsheets store numbers as text and text as numbers.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Number(f64),
}

impl Cell {
    /// The cell as text, trimmed; whole numbers without a decimal point.
    pub fn text(&self) -> String {
        match self {
            Self::Empty => String::new(),
            Self::Text(t) => t.split_whitespace().collect::<Vec<_>>().join(" "),
            Self::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", *n as i64),
            Self::Number(n) => n.to_string(),
        }
    }

    pub fn is_blank(&self) -> bool {
        self.text().is_empty()
    }
}

/// The suppliers whose product lists the sidecar reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Supplier {
    Botanitech,
    MedReleaf,
    Alma,
    Phytoca,
    TasmanianBotanics,
}

impl Supplier {
    pub const ALL: [Self; 5] =
        [Self::Botanitech, Self::MedReleaf, Self::Alma, Self::Phytoca, Self::TasmanianBotanics];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Botanitech => "botanitech",
            Self::MedReleaf => "medreleaf",
            Self::Alma => "alma",
            Self::Phytoca => "phytoca",
            Self::TasmanianBotanics => "tasmanian-botanics",
        }
    }

    pub fn display_name(self) -> &'static str {
        match self {
            Self::Botanitech => "Botanitech",
            Self::MedReleaf => "MedReleaf",
            Self::Alma => "Alma",
            Self::Phytoca => "Phytoca",
            Self::TasmanianBotanics => "Tasmanian Botanics",
        }
    }

    /// Tolerant of case, spaces, hyphens and underscores: `Tasmanian Botanics`, `tasmanian_botanics`.
    pub fn parse(s: &str) -> Option<Self> {
        let wanted = squash(s);
        Self::ALL.into_iter().find(|s| squash(s.as_str()) == wanted)
    }

    pub fn names() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }
}

impl fmt::Display for Supplier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lowercase letters and digits only.
pub fn squash(s: &str) -> String {
    s.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

/// Product forms, so a search for oils finds every supplier's oils.
pub const FORMS: [(&str, &[&str]); 9] = [
    ("oil", &["oil", "oral liquid", "oral oil", "tincture", "liquid", "solution"]),
    ("flower", &["flower", "dried flower", "dried herb", "herb", "bud", "flos"]),
    ("capsule", &["capsule", "capsules", "caps", "softgel", "soft gel"]),
    ("spray", &["spray", "oral spray", "oromucosal spray", "mouth spray"]),
    ("wafer", &["wafer", "oral wafer", "lozenge"]),
    ("pastille", &["pastille", "pastilles", "gummy", "gummies", "chewable"]),
    ("cartridge", &["cartridge", "vape cartridge", "vaporiser cartridge", "vape", "pod"]),
    ("topical", &["topical", "cream", "balm", "gel", "ointment"]),
    ("extract", &["extract", "concentrate", "resin", "rosin"]),
];

/// The canonical form for a supplier's wording, or the wording itself in lowercase.
pub fn form(raw: &str) -> String {
    let words = raw.to_lowercase().split_whitespace().collect::<Vec<_>>().join(" ");
    FORMS
        .iter()
        .find(|(_, synonyms)| synonyms.contains(&words.as_str()))
        .map_or(words, |(canonical, _)| (*canonical).to_string())
}

/// A Poisons Standard schedule: `S8` from `S8`, `Schedule 8`, `8` or `sch. 8`.
pub fn schedule(raw: &str) -> Result<Option<String>, String> {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    let letters = squash(raw).trim_end_matches(char::is_numeric).to_string();
    if raw.trim().is_empty() {
        return Ok(None);
    }
    let known_prefix = matches!(letters.as_str(), "" | "s" | "sch" | "schedule");
    match digits.parse::<u8>() {
        Ok(n @ 2..=10) if known_prefix => Ok(Some(format!("S{n}"))),
        _ => Err(format!("schedule `{}` is not a Poisons Standard schedule (S2 to S10)", raw.trim())),
    }
}

/// A TGA medicinal cannabis category, 1 (CBD) to 5 (THC-dominant): `Category 3`, `Cat 3`, `3`.
pub fn category(raw: &str) -> Result<Option<u8>, String> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    match digits.parse::<u8>() {
        Ok(n @ 1..=5) => Ok(Some(n)),
        _ => Err(format!("TGA category `{}` is not 1 to 5", raw.trim())),
    }
}

/// An ARTG number (the AUST L/R number without its prefix): digits only.
pub fn artg(raw: &str) -> Result<Option<String>, String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || matches!(squash(trimmed).as_str(), "na" | "none" | "pending" | "tba") {
        return Ok(None);
    }
    let bare = trimmed.trim_start_matches(|c: char| !c.is_ascii_digit());
    let prefix = squash(&trimmed[..trimmed.len() - bare.len()]);
    let known_prefix = matches!(prefix.as_str(), "" | "aust" | "austl" | "austr" | "artg" | "artgid");
    if known_prefix && !bare.is_empty() && bare.len() <= 10 && bare.bytes().all(|b| b.is_ascii_digit()) {
        Ok(Some(bare.trim_start_matches('0').to_string()).filter(|s| !s.is_empty()))
    } else {
        Err(format!("ARTG number `{trimmed}` is not a number"))
    }
}

/// A strength: a bare number takes the layout's unit (`10` → `10 mg/mL`).
pub fn strength(cell: &Cell, unit: &str) -> Result<Option<String>, String> {
    let text = cell.text();
    if text.is_empty() || matches!(squash(&text).as_str(), "na" | "nil") {
        return Ok(None);
    }
    let number_end = text.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '<')).unwrap_or(text.len());
    let (number, rest) = text.split_at(number_end);
    if number.trim_start_matches('<').parse::<f64>().is_err() {
        return Err(format!("strength `{text}` does not start with a number"));
    }
    let rest = rest.trim();
    Ok(Some(if rest.is_empty() { format!("{number} {unit}") } else { format!("{number} {rest}") }))
}

/// A price in dollars: `$45.00`, `45`, `1,045.5` or a number cell; never negative.
pub fn price(cell: &Cell) -> Result<Option<Decimal>, String> {
    let text = cell.text();
    if text.is_empty() || squash(&text) == "poa" {
        return Ok(None);
    }
    let cleaned: String =
        text.trim_start_matches("AUD").trim().trim_start_matches('$').chars().filter(|c| *c != ',').collect();
    match cleaned.trim().parse::<Decimal>() {
        Ok(amount) if amount >= Decimal::ZERO && amount < Decimal::from(10_000_000) => {
            Ok(Some(crate::domain::billing::cents(amount)))
        }
        _ => Err(format!("price `{text}` is not an amount in dollars")),
    }
}

/// One product, clean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub artg_number: Option<String>,
    pub brand: String,
    pub product_name: Option<String>,
    pub tga_category: Option<u8>,
    pub schedule: Option<String>,
    pub thc: Option<String>,
    pub cbd: Option<String>,
    pub form: String,
    pub pack_size: Option<String>,
    pub price: Option<Decimal>,
    pub price_includes_gst: bool,
}

impl Product {
    /// Its identity within the supplier: the ARTG number, or brand and form when it has none.
    pub fn key(&self) -> String {
        match &self.artg_number {
            Some(artg) => format!("artg:{artg}"),
            None => format!("brand:{}|{}", self.brand.to_lowercase(), self.form),
        }
    }
}

/// The drug name a prescription for the product carries (`prescriptions.drug` holds 150).
pub fn prescribed_as(brand: &str, product_name: Option<&str>, form: &str) -> String {
    let name = [Some(brand), product_name, Some(form)].into_iter().flatten().filter(|s| !s.is_empty());
    name.collect::<Vec<_>>().join(" ").chars().take(150).collect()
}

/// Column limits of `mmt_products`, checked before anything is written.
pub const BRAND_MAX: usize = 255;
pub const SHORT_MAX: usize = 60;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suppliers_parse_however_they_are_written() {
        assert_eq!(Supplier::parse("Tasmanian Botanics"), Some(Supplier::TasmanianBotanics));
        assert_eq!(Supplier::parse("tasmanian_botanics"), Some(Supplier::TasmanianBotanics));
        assert_eq!(Supplier::parse(" MEDRELEAF "), Some(Supplier::MedReleaf));
        assert_eq!(Supplier::parse("acme"), None);
    }

    #[test]
    fn schedules_categories_and_artg_numbers_come_in_many_spellings() {
        for raw in ["S8", "Schedule 8", "8", "sch. 8", " s 8 "] {
            assert_eq!(schedule(raw), Ok(Some("S8".into())), "{raw}");
        }
        assert!(schedule("S12").is_err());
        assert!(schedule("Class A").is_err());
        assert_eq!(schedule(""), Ok(None));
        assert_eq!(category("Category 3"), Ok(Some(3)));
        assert_eq!(category("Cat. 1"), Ok(Some(1)));
        assert!(category("6").is_err());
        assert_eq!(artg("AUST L 345678"), Ok(Some("345678".into())));
        assert_eq!(artg("0345678"), Ok(Some("345678".into())));
        assert_eq!(artg("N/A"), Ok(None));
        assert!(artg("12ab").is_err());
    }

    #[test]
    fn strengths_and_prices_read_numbers_stored_as_text() {
        assert_eq!(strength(&Cell::Number(10.0), "mg/mL"), Ok(Some("10 mg/mL".into())));
        assert_eq!(strength(&Cell::Text(" 22 % ".into()), "%"), Ok(Some("22 %".into())));
        assert_eq!(strength(&Cell::Text("<1".into()), "%"), Ok(Some("<1 %".into())));
        assert_eq!(strength(&Cell::Text("nil".into()), "%"), Ok(None));
        assert!(strength(&Cell::Text("high".into()), "%").is_err());
        assert_eq!(price(&Cell::Text("$1,045.50".into())), Ok(Some(Decimal::new(104550, 2))));
        assert_eq!(price(&Cell::Number(45.0)).unwrap().unwrap().to_string(), "45.00");
        assert_eq!(price(&Cell::Text("POA".into())), Ok(None));
        assert!(price(&Cell::Text("-3".into())).is_err());
        assert!(price(&Cell::Text("ask".into())).is_err());
    }

    #[test]
    fn forms_share_one_vocabulary_and_keys_prefer_the_artg_number() {
        assert_eq!(form("Oral Liquid"), "oil");
        assert_eq!(form("Dried  flower"), "flower");
        assert_eq!(form("Inhaler"), "inhaler");
        let mut product = Product {
            artg_number: Some("345678".into()),
            brand: "Calm Drops".into(),
            product_name: None,
            tga_category: Some(1),
            schedule: Some("S4".into()),
            thc: None,
            cbd: Some("100 mg/mL".into()),
            form: "oil".into(),
            pack_size: Some("25 mL".into()),
            price: None,
            price_includes_gst: true,
        };
        assert_eq!(product.key(), "artg:345678");
        product.artg_number = None;
        assert_eq!(product.key(), "brand:calm drops|oil");
    }

    #[test]
    fn a_prescription_names_the_product_by_brand_name_and_form() {
        assert_eq!(prescribed_as("Alma", Some("Balance 10:10"), "oil"), "Alma Balance 10:10 oil");
        assert_eq!(prescribed_as("Calm Drops", None, "oil"), "Calm Drops oil");
        assert_eq!(prescribed_as(&"x".repeat(200), None, "oil").chars().count(), 150);
    }

    #[test]
    fn cells_read_as_trimmed_text() {
        assert_eq!(Cell::Number(25.0).text(), "25");
        assert_eq!(Cell::Number(2.5).text(), "2.5");
        assert_eq!(Cell::Text("  Calm \n Drops ".into()).text(), "Calm Drops");
        assert!(Cell::Text("   ".into()).is_blank());
    }
}
