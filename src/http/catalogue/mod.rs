//! Suppliers' product catalogues.

pub mod products_api;
