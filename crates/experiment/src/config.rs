//! Experiment files: raw serde structs (unknown keys rejected), `validate()`, and expansion
//! into the runs of the sweep.

use mpq_data::SplitSizes;
use mpq_models::{ModelConfig, TrainConfig};
use mpq_quant::BitWidth;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A compute backend an experiment can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// burn's flex CPU backend (the default: fastest CPU backend measured here).
    Flex,
    /// burn-ndarray CPU backend.
    Ndarray,
    /// burn-wgpu GPU backend (needs the `wgpu` cargo feature).
    Wgpu,
}

impl Backend {
    /// Name used in run ids and CSV rows.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Ndarray => "ndarray",
            Backend::Wgpu => "wgpu",
        }
    }
}

/// Where the digits come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dataset {
    /// The 10,000 shipped MNIST digits (embedded; offline).
    #[serde(rename = "mnist-10k")]
    Mnist10k,
    /// Full MNIST fetched with `harness fetch mnist`.
    Mnist,
    /// Full Fashion-MNIST fetched with `harness fetch fashion-mnist`.
    FashionMnist,
    /// Explicit IDX files (`images`, `labels`, optional `test_images`, `test_labels`).
    Idx,
}

/// Search strategies an experiment can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// All 3^L rounding configs with prefix reuse.
    Exhaustive,
    /// Coordinate descent from all-nearest.
    Greedy,
    /// First-order Taylor prediction.
    Taylor,
    /// AdaRound: per-element rounding learned per layer (a baseline, not a layerwise plan).
    Adaround,
    /// Beam search over per-layer rounding at one width (`[quant] beam` prefixes kept),
    /// scoring whole plans: for networks too deep for the exhaustive search.
    Beam,
}

/// `[data]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Dataset, default the shipped digits.
    #[serde(default = "default_dataset")]
    pub dataset: Dataset,
    /// Folder of fetched datasets, relative to the working directory.
    #[serde(default = "default_dir")]
    pub dir: PathBuf,
    /// IDX image file (dataset = "idx").
    pub images: Option<PathBuf>,
    /// IDX label file (dataset = "idx").
    pub labels: Option<PathBuf>,
    /// Optional IDX test image file (dataset = "idx").
    pub test_images: Option<PathBuf>,
    /// Optional IDX test label file (dataset = "idx").
    pub test_labels: Option<PathBuf>,
    /// Training examples.
    #[serde(default = "default_train")]
    pub train: usize,
    /// Calibration examples.
    #[serde(default = "default_heldout")]
    pub calib: usize,
    /// Test examples.
    #[serde(default = "default_heldout")]
    pub test: usize,
    /// Cross-fitted test folds: repeat r tests on fold r of a fixed partition of the data
    /// into `n / test` folds, so over that many repeats every example is test data once.
    #[serde(default)]
    pub cross_fit: bool,
    /// Only the examples at even or odd positions (the halves `harness halves` writes), e.g.
    /// the half an imported model never saw in its training; absent: all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub half: Option<Half>,
}

/// Half of a dataset, by position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Half {
    /// Positions 0, 2, 4, ...
    Even,
    /// Positions 1, 3, 5, ...
    Odd,
}

fn default_dataset() -> Dataset {
    Dataset::Mnist10k
}
fn default_dir() -> PathBuf {
    PathBuf::from("datasets")
}
fn default_train() -> usize {
    8000
}
fn default_heldout() -> usize {
    1000
}

impl Default for DataConfig {
    fn default() -> Self {
        toml::from_str("").unwrap_or_else(|_| unreachable!("all fields have defaults"))
    }
}

/// `[quant]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantConfig {
    /// Bit widths to sweep (2..=8 or 16; full precision is always the reference).
    #[serde(default = "default_bits")]
    pub bits: Vec<BitWidth>,
    /// Search strategies.
    #[serde(default = "default_strategies")]
    pub strategies: Vec<Strategy>,
    /// Random rounding assignments in the best-of-N null (at least 27; raised to the
    /// number of configs the search evaluated).
    #[serde(default = "default_random_n")]
    pub random_n: usize,
    /// Weight scales: one per tensor or one per output channel, or a list of both (every
    /// run then quantizes under each in turn).
    #[serde(default)]
    pub granularity: crate::granularity::Granularities,
    /// How plans are scored: `simulated` (f32 quantize-dequantize) or `integer` (the
    /// integer engine's exact sums, as the exported model computes them).
    #[serde(default, skip_serializing_if = "is_simulated")]
    pub evaluation: mpq_quant::eval::Evaluation,
    /// Percentile calibration of input ranges (e.g. 0.9999); min/max when absent.
    pub percentile: Option<f64>,
    /// Per-layer input-only vs weight-only sensitivity analysis.
    #[serde(default = "default_true")]
    pub sensitivity: bool,
    /// Whether the exhaustive search also scores every config on the test split (the rows
    /// of `configs.csv`, the all-configs identity row and figure); `false` scores only the
    /// plans the report shows there, about a third of the time at calibration 256 / test 500.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub configs_on_test: bool,
    /// Whether each run times FP32, simulated and integer inference on its test split
    /// (`timing.csv` and the throughput figure); `false` saves that time in studies that
    /// do not report speed.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub throughput: bool,
    /// Mixed-precision allocation under average-bit budgets (absent: not run).
    pub mixed: Option<MixedConfig>,
    /// Prefixes the `beam` strategy keeps per layer (absent: 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beam: Option<usize>,
    /// Steps, batch and regulariser of the `adaround` strategy (absent: the defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adaround: Option<mpq_quant::adaround::AdaRoundConfig>,
}

/// Left out of the serialized experiment when default (as `is_simulated`).
fn is_true(b: &bool) -> bool {
    *b
}

/// Left out of the serialized experiment when default, so that experiments written before
/// the choice existed keep their provenance hash.
fn is_simulated(e: &mpq_quant::eval::Evaluation) -> bool {
    *e == mpq_quant::eval::Evaluation::Simulated
}

/// `[quant.mixed]`: per-layer bit widths chosen under a budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixedConfig {
    /// Bit widths a layer may take (32 leaves it in full precision).
    #[serde(default = "default_mixed_bits")]
    pub bits: Vec<BitWidth>,
    /// Average bits per weight allowed, one allocation per budget.
    pub budgets: Vec<u32>,
    /// Rademacher vectors in the Hutchinson trace estimate of the HAWQ-V2 baseline.
    #[serde(default = "default_hutchinson")]
    pub hutchinson_samples: usize,
    /// Beam width of the `mixed-search` allocation (beam search scoring whole plans); absent:
    /// that allocation is not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_beam: Option<usize>,
}

fn widths(bits: &[u32]) -> Vec<BitWidth> {
    bits.iter().filter_map(|&b| BitWidth::new(b).ok()).collect()
}
fn default_mixed_bits() -> Vec<BitWidth> {
    widths(&[2, 3, 4, 6, 8, 16, 32])
}
fn default_hutchinson() -> usize {
    8
}

fn default_bits() -> Vec<BitWidth> {
    widths(&[8, 6, 4])
}
fn default_strategies() -> Vec<Strategy> {
    vec![Strategy::Exhaustive, Strategy::Greedy, Strategy::Taylor]
}
fn default_random_n() -> usize {
    27
}
fn default_true() -> bool {
    true
}

impl Default for QuantConfig {
    fn default() -> Self {
        toml::from_str("").unwrap_or_else(|_| unreachable!("all fields have defaults"))
    }
}

/// A whole experiment file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Name; results go to `<output>/<name>/`.
    pub name: String,
    /// Experiment seed every other seed derives from.
    #[serde(default)]
    pub seed: u64,
    /// Repeats (seeds) per model and backend.
    #[serde(default = "default_repeats")]
    pub repeats: usize,
    /// Backends to run on.
    #[serde(default = "default_backends")]
    pub backends: Vec<Backend>,
    /// Output root folder.
    #[serde(default = "default_output")]
    pub output: PathBuf,
    /// Folder of shipped trained checkpoints (with `SHA256SUMS`), used when the cache has
    /// none for a run's key; `harness train FILE --ship` fills it.
    #[serde(default)]
    pub checkpoints: Option<PathBuf>,
    /// Data.
    #[serde(default)]
    pub data: DataConfig,
    /// Training.
    #[serde(default)]
    pub train: TrainConfig,
    /// Models to sweep.
    pub models: Vec<ModelConfig>,
    /// Quantization.
    #[serde(default)]
    pub quant: QuantConfig,
    /// Per-model repeats and test-fold sizes (`[[overrides]]`), for models cheap enough to
    /// repeat more often than the rest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<ModelOverride>,
}

/// `[[overrides]]`: other repeats and test size for some models. Cheap models can afford
/// many repeats, which is what gives their verdicts power; a smaller test fold keeps the
/// cross-fitted folds disjoint (every example is test data at most once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelOverride {
    /// Model names as in run ids (e.g. "mlp-256-128").
    pub models: Vec<String>,
    /// Repeats of these models instead of the experiment's `repeats`.
    #[serde(default)]
    pub repeats: Option<usize>,
    /// Test examples of these models instead of `[data] test`.
    #[serde(default)]
    pub test: Option<usize>,
    /// Search strategies of these models instead of `[quant] strategies` (e.g. the
    /// exhaustive search and the beam only where they are cheap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategies: Option<Vec<Strategy>>,
}

fn default_repeats() -> usize {
    5
}
fn default_backends() -> Vec<Backend> {
    vec![Backend::Flex]
}
fn default_output() -> PathBuf {
    PathBuf::from("results")
}

/// One run of the sweep.
#[derive(Debug, Clone, Serialize)]
pub struct RunSpec {
    /// Stable id: model, backend and repeat.
    pub id: String,
    /// Model.
    pub model: ModelConfig,
    /// Backend.
    pub backend: Backend,
    /// Repeat index.
    pub repeat: usize,
    /// Seed of init, shuffling and stochastic choices (shared across backends, and by a
    /// residual model and its plain twin).
    pub seed: u64,
    /// Seed of the data split (varies the calibration subset across repeats; shared by a
    /// residual model and its plain twin).
    pub split_seed: u64,
}

/// A stable 64-bit seed from the experiment seed and a label.
pub fn derive_seed(seed: u64, label: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(format!("{seed}/{label}").as_bytes());
    u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

impl Experiment {
    /// The `[[overrides]]` entry naming `model`, if any.
    fn override_for(&self, model: &ModelConfig) -> Option<&ModelOverride> {
        let name = model.name();
        self.overrides.iter().find(|o| o.models.contains(&name))
    }

    /// The model whose run-id name is `name`.
    pub fn model_named(&self, name: &str) -> Option<&ModelConfig> {
        self.models.iter().find(|m| m.name() == name)
    }

    /// Repeats of `model`: its override's, else the experiment's.
    pub fn repeats_for(&self, model: &ModelConfig) -> usize {
        self.override_for(model).and_then(|o| o.repeats).unwrap_or(self.repeats)
    }

    /// Search strategies of `model`: its override's, else `[quant] strategies`.
    pub fn strategies_for(&self, model: &ModelConfig) -> &[Strategy] {
        self.override_for(model).and_then(|o| o.strategies.as_deref()).unwrap_or(&self.quant.strategies)
    }

    /// Split sizes of `model` (its override's test size, else `[data]`'s; no training
    /// examples for an imported model, which is not trained here).
    pub fn sizes_for(&self, model: &ModelConfig) -> SplitSizes {
        let test = self.override_for(model).and_then(|o| o.test).unwrap_or(self.data.test);
        let train = if model.is_imported() { 0 } else { self.data.train };
        SplitSizes { train, calib: self.data.calib, test }
    }

    /// The cartesian product models x backends x repeats, sorted by id.
    pub fn expand(&self) -> Vec<RunSpec> {
        let mut runs = Vec::new();
        for m in &self.models {
            for &backend in &self.backends {
                for repeat in 0..self.repeats_for(m) {
                    let label = format!("{}-r{repeat}", m.seed_label());
                    runs.push(RunSpec {
                        id: format!("{}-{}-r{repeat}", m.name(), backend.name()),
                        model: m.clone(),
                        backend,
                        repeat,
                        seed: derive_seed(self.seed, &label),
                        split_seed: derive_seed(self.seed, &format!("{label}/split")),
                    });
                }
            }
        }
        runs.sort_by(|a, b| a.id.cmp(&b.id));
        runs
    }

    /// Each residual MLP or CNN of the experiment with its plain twin of the same size
    /// (the identity-mapping claim compares them), ordered by the residual model's name.
    pub fn identity_pairs(&self) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = self
            .models
            .iter()
            .filter_map(|m| {
                let twin = match *m {
                    ModelConfig::ResMlp { width, depth } => ModelConfig::PlainMlp { width, depth },
                    ModelConfig::ResCnn { channels, depth } => ModelConfig::PlainCnn { channels, depth },
                    ModelConfig::ResNet { depth, width } => ModelConfig::PlainResNet { depth, width },
                    _ => return None,
                };
                self.models.contains(&twin).then(|| (m.name(), twin.name()))
            })
            .collect();
        pairs.sort();
        pairs
    }

    /// `identity_pairs` as row labels: once per granularity the runs quantize under.
    pub fn label_pairs(&self) -> Vec<(String, String)> {
        let g = &self.quant.granularity;
        let mut pairs: Vec<(String, String)> = g
            .list()
            .into_iter()
            .flat_map(|k| self.identity_pairs().into_iter().map(move |(r, p)| (g.label(&r, k), g.label(&p, k))))
            .collect();
        pairs.sort();
        pairs
    }

    /// `<output>/<name>`.
    pub fn out_dir(&self) -> PathBuf {
        self.output.join(&self.name)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn overrides_change_only_the_models_they_name() {
        let text = "name = \"x\"\nrepeats = 3\n[[models]]\nkind = \"mlp\"\n[[models]]\nkind = \"cnn\"\n\
                    [[overrides]]\nmodels = [\"mlp-256-128\"]\nrepeats = 5\ntest = 400\n";
        let exp = Experiment::parse(std::path::Path::new("x.toml"), text).unwrap();
        let runs = exp.expand();
        let count = |m: &str| runs.iter().filter(|r| r.model.name() == m).count();
        assert_eq!((count("mlp-256-128"), count("cnn-8-16-64")), (5, 3));
        let (mlp, cnn) = (&runs.iter().find(|r| r.model.name() == "mlp-256-128").unwrap().model, &exp.models[1]);
        assert_eq!(exp.sizes_for(mlp).test, 400);
        assert_eq!(exp.sizes_for(cnn), SplitSizes { train: 8000, calib: 1000, test: 1000 });
        // An experiment without overrides serializes as before (its provenance hash is kept).
        let plain =
            Experiment::parse(std::path::Path::new("x.toml"), "name = \"x\"\n[[models]]\nkind = \"mlp\"\n").unwrap();
        assert!(!toml::to_string(&plain).unwrap().contains("overrides"));
    }

    /// A residual model and its plain twin draw the same split, calibration digits and
    /// initial weights in each repeat (so the identity claim's pairing is real); repeats
    /// and other models draw their own.
    #[test]
    fn twins_share_each_repeats_seeds() {
        let text = "name = \"x\"\nrepeats = 3\n[[models]]\nkind = \"res-cnn\"\n[[models]]\nkind = \"plain-cnn\"\n\
                    [[models]]\nkind = \"res-mlp\"\n[[models]]\nkind = \"plain-mlp\"\n[[models]]\nkind = \"mlp\"\n";
        let exp = Experiment::parse(std::path::Path::new("x.toml"), text).unwrap();
        let runs = exp.expand();
        let of = |name: &str, r: usize| {
            let run = runs.iter().find(|s| s.model.name() == name && s.repeat == r).unwrap();
            (run.seed, run.split_seed)
        };
        for r in 0..3 {
            assert_eq!(of("rescnn-16x3", r), of("plaincnn-16x3", r));
            assert_eq!(of("resmlp-128x4", r), of("plainmlp-128x4", r));
            assert_ne!(of("rescnn-16x3", r), of("resmlp-128x4", r));
            assert_ne!(of("resmlp-128x4", r), of("mlp-256-128", r));
            assert_ne!(of("resmlp-128x4", r).0, of("resmlp-128x4", r).1);
        }
        assert_ne!(of("resmlp-128x4", 0), of("resmlp-128x4", 1));
        assert_eq!(exp.identity_pairs().len(), 2);
    }

    #[test]
    fn evaluation_is_simulated_unless_asked_and_left_out_when_default() {
        use mpq_quant::eval::Evaluation;
        let parse = |quant: &str| {
            let text = format!("name = \"x\"\n[quant]\n{quant}\n[[models]]\nkind = \"mlp\"\n");
            Experiment::parse(std::path::Path::new("x.toml"), &text)
        };
        let plain = parse("").unwrap();
        assert_eq!(plain.quant.evaluation, Evaluation::Simulated);
        assert!(!toml::to_string(&plain).unwrap().contains("evaluation"), "older experiments keep their hash");
        let int = parse("evaluation = \"integer\"").unwrap();
        assert_eq!(int.quant.evaluation, Evaluation::Integer);
        assert!(toml::to_string(&int).unwrap().contains("evaluation = \"integer\""));
        // `granularity` takes the short names too, and records the long one.
        let ch = parse("granularity = \"channel\"").unwrap();
        assert_eq!(ch.quant.granularity.list(), vec![mpq_quant::tensor::Granularity::PerChannel]);
        assert!(toml::to_string(&ch).unwrap().contains("granularity = \"per-channel\""));
        let bad = format!("{:#}", parse("evaluation = \"exact\"").unwrap_err());
        assert!(bad.contains("x.toml") && bad.contains("exact"), "{bad}");
    }
}
