//! Suppliers' product catalogues (medicinal cannabis products listed on the ARTG or supplied
//! under SAS), read from their spreadsheets into one product model.

pub mod import;
pub mod layouts;
pub mod product;
