//! The master CSV: one object per contact date holding one row per call, which the classify
//! side reads by byte range and Athena reads as a table.
//!
//! * [`Row`] and [`COLUMNS`]: the documented, stable columns (new ones only at the end).
//! * [`encode`]: Athena-safe CSV (one header per object, RFC 4180, UTF-8, no CR/LF in fields).
//! * [`append_rows`]: exactly-once compare-and-swap appends through the store port, one row
//!   per contact (the first analysis wins; later ones come back as [`Skipped`]); see
//!   [`append`] for the mechanism and why it survives crashes and redelivery, and
//!   [`check_invariants`] for the invariants it keeps.
//! * [`Layout`]: where masters, quarantine notes and state live under the output prefix.
//! * [`touched`]: the record of the partitions that grew, which lets classify find late rows
//!   whatever their date.
//!
//! Architecture invariant: no AWS or Lambda types here; I/O only through [`store::ObjectStore`].

pub mod append;
pub mod encode;
mod layout;
mod row;
pub mod touched;

pub use append::{
    append_rows, check_invariants, AppendError, AppendOutcome, Skipped, Violation,
    LARGE_OBJECT_BYTES,
};
pub use layout::Layout;
pub use row::{Identity, Row, RowError, CATEGORY_SEPARATOR, COLUMNS};
