//! OpenEMR's billing tables: the code catalogue, fee-sheet lines, and the money posted against
//! them (`ar_session`, `ar_activity`, the `payments` receipt).

pub mod ar;
pub mod charges;
pub mod codes;
pub mod invoices;
