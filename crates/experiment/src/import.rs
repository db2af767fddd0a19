//! Imported models in an experiment: each `kind = "onnx"` entry's file is read when the
//! experiment is, so that an unsupported node, an unreadable file or a normalisation its first
//! layer cannot take stops the experiment before any work, naming the entry's line.

use crate::ExperimentError;
use crate::config::Experiment;
use crate::locate::Seg::{Index, Key};
use mpq_models::{Imported, ModelConfig};
use mpq_onnx::Normalisation;
use std::path::Path;

/// Reads the ONNX file at `path`: the network with the input normalisation folded into its
/// first layer, and the SHA-256 of the file's bytes.
fn read_onnx(path: &Path, mean: f64, scale: f64) -> Result<(mpq_onnx::Imported, String), mpq_onnx::OnnxError> {
    let bytes = std::fs::read(path).map_err(|source| mpq_onnx::OnnxError::Read { path: path.into(), source })?;
    let mut imported = mpq_onnx::import_bytes(&bytes, path)?;
    imported.normalise_input(Normalisation { mean: mean as f32, scale: scale as f32 }, path)?;
    Ok((imported, mpq_data::sha256_hex(&bytes)))
}

impl Experiment {
    /// Reads every imported model's file and records its layers and SHA-256 in the config;
    /// an error names the experiment file, the entry's `path` line and what the file holds.
    pub(crate) fn resolve_imports(&mut self, file: &Path, text: &str) -> Result<(), ExperimentError> {
        for (i, m) in self.models.iter_mut().enumerate() {
            // A bad `mean` or `scale` is reported at its own key by the checks that follow.
            if matches!(m.validate(), Err(mpq_models::ModelError::Field { .. })) {
                continue;
            }
            let ModelConfig::Onnx { path, mean, scale, sha256, imported } = m else { continue };
            let (net, digest) = read_onnx(path, mean.0, scale.0).map_err(|e| ExperimentError::Invalid {
                location: format!(
                    "{}:{}: `path`",
                    file.display(),
                    crate::locate::line_of(text, &[Key("models"), Index(i), Key("path")])
                ),
                message: e.to_string(),
            })?;
            *sha256 = digest;
            *imported = std::sync::Arc::new(Imported { arch: net.arch(), sources: net.sources, net: net.net });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Reading the experiment reads the file: the layers and the file's hash are in the
    /// config, the hash is recorded with the resolved experiment (so provenance follows the
    /// file), and the model gets no training examples.
    #[test]
    fn an_imported_model_is_resolved_when_the_experiment_is_read() {
        let text = "name = \"x\"\n[[models]]\nkind = \"onnx\"\npath = \"../onnx/tests/fixtures/mlp.onnx\"\nmean = 0.0\nscale = 1.0\n";
        let exp = Experiment::parse(Path::new("x.toml"), text).unwrap();
        let m = &exp.models[0];
        assert_eq!(m.name(), "onnx-mlp");
        let names: Vec<String> = m.arch().layers.into_iter().map(|l| l.name).collect();
        assert_eq!(names, ["fc1", "fc2"]);
        let bytes = std::fs::read("../onnx/tests/fixtures/mlp.onnx").unwrap();
        let ModelConfig::Onnx { sha256, imported, .. } = m else { unreachable!() };
        assert_eq!(*sha256, mpq_data::sha256_hex(&bytes));
        assert_eq!(imported.sources.len(), 2);
        assert!(toml::to_string(&exp).unwrap().contains(sha256.as_str()));
        assert_eq!(exp.sizes_for(m).train, 0);
        let runs = exp.expand();
        assert_eq!(runs.len(), 5);
        assert_ne!(runs[0].split_seed, runs[1].split_seed, "repeats draw other calibration digits");
    }
}
