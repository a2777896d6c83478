//! master-csv
