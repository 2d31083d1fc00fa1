pub mod calendar;
pub mod crypto_gen;
pub mod password;
pub mod session;
