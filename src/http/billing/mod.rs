//! Billing: fee-sheet charges, invoices and patient payments over OpenEMR's A/R tables.

pub mod charges_api;
pub mod checkout_api;
pub mod invoices_api;
pub mod payments_api;
pub mod prices_api;

use std::borrow::Cow;

use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef},
    types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type},
};
use rust_decimal::Decimal;
use serde_json::Value;

/// An amount of money: answered as a string with exactly two decimal places (`"100.00"`), exact
/// unlike a JSON number and as OpenEMR's screens show it; accepted as such a string or a number.
pub struct Money(pub Decimal);

impl From<Decimal> for Money {
    fn from(value: Decimal) -> Self {
        Self(crate::domain::billing::cents(value))
    }
}

impl ParseFromJSON for Money {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        // Exactly as written: `10.005` must reach validation unrounded to be refused.
        Decimal::parse_from_json(value).map(Self).map_err(ParseError::propagate)
    }
}

impl Type for Money {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "money".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        let mut schema = MetaSchema::new_with_format("string", "decimal");
        schema.pattern = Some(r"^-?\d+\.\d{2}$".into());
        schema.example = Some(Value::String("50.00".into()));
        MetaSchemaRef::Inline(Box::new(schema))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ToJSON for Money {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(crate::domain::billing::cents(self.0).to_string()))
    }
}
