//! Reading and atomically writing CSV files of row types.

use crate::ReportError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;

/// Writes rows with a header to `path` via a temporary file and a rename.
pub fn write<T: Serialize>(path: &Path, rows: &[T]) -> Result<(), ReportError> {
    let file = path.display().to_string();
    let csv_err = |e: csv::Error| ReportError::Csv { file: file.clone(), reason: e.to_string() };
    crate::write_whole(path, |tmp| {
        let mut w = csv::Writer::from_path(tmp).map_err(csv_err)?;
        for r in rows {
            w.serialize(r).map_err(csv_err)?;
        }
        w.flush().map_err(|source| ReportError::Io { file: file.clone(), source })
    })
}

/// Writes the header of `T` alone (for golden-header tests and empty tables).
pub fn header<T: Serialize + Default>() -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.serialize(T::default());
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).lines().next().unwrap_or_default().to_string()
}

/// Reads all rows of a CSV file.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, ReportError> {
    let file = path.display().to_string();
    let mut r =
        csv::Reader::from_path(path).map_err(|e| ReportError::Csv { file: file.clone(), reason: e.to_string() })?;
    r.deserialize()
        .enumerate()
        .map(|(i, row)| {
            row.map_err(|e| ReportError::Csv { file: format!("{file} line {}", i + 2), reason: e.to_string() })
        })
        .collect()
}
