//! Contact Lens post-call analysis documents: parsing (voice and chat, every version seen),
//! the S3 key grammar, and transcript text extraction.
//!
//! Architecture invariant: this crate is pure. It does no I/O and must never depend on AWS,
//! Lambda or async crates.
