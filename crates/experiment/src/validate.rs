//! Checking an experiment file: parse errors and cross-field checks, each pointing at the
//! offending key's line (from the TOML parser's spans), with "did you mean" hints.

use crate::ExperimentError;
use crate::config::{DataConfig, Dataset, Experiment, MixedConfig, QuantConfig};
use mpq_models::{ModelConfig, TrainConfig};
use std::path::Path;

type Result<T> = std::result::Result<T, ExperimentError>;

/// Returns an [`ExperimentError::Invalid`] at `$at` (a located key) with a formatted message.
macro_rules! bail {
    ($at:expr, $($msg:tt)+) => {
        return Err(ExperimentError::Invalid { location: $at, message: format!($($msg)+) })
    };
}

/// Suggests the nearest of `valid` to `got`, if any is close.
pub fn did_you_mean(got: &str, valid: &[&str]) -> Option<String> {
    valid.iter().map(|v| (strsim::levenshtein(got, v), *v)).filter(|(d, _)| *d <= 3).min().map(|(_, v)| v.to_string())
}

pub(crate) fn toml_error(file: &Path, text: &str, e: toml::de::Error) -> ExperimentError {
    let (span, msg) = model_error(text, &e).unwrap_or_else(|| (e.span(), e.message().to_string()));
    let (line, col) = span.map_or((1, 1), |s| crate::locate::line_col(text, s.start));
    let mut hint = String::new();
    // serde's messages name the offending word in backticks and list the valid ones.
    let ticks: Vec<&str> = msg.split('`').skip(1).step_by(2).collect();
    if let Some((got, valid)) = ticks.split_first()
        && let Some(s) = did_you_mean(got, valid)
    {
        hint = format!(" (did you mean `{s}`?)");
    }
    ExperimentError::Invalid { location: format!("{}:{line}:{col}", file.display()), message: format!("{msg}{hint}") }
}

/// serde reports an error inside a `[[models]]` entry (an internally tagged enum) at the
/// first entry's header: find the entry that fails on its own and the key the message names.
fn model_error(text: &str, e: &toml::de::Error) -> Option<(Option<std::ops::Range<usize>>, String)> {
    use crate::locate::Seg::{Index, Key};
    let start = e.span()?.start.min(text.len());
    let line_start = text.get(..start)?.rfind('\n').map_or(0, |i| i + 1);
    if !text.get(line_start..)?.trim_start().starts_with("[[models]]") {
        return None;
    }
    let table: toml::Table = toml::from_str(text).ok()?;
    let models = table.get("models")?.as_array()?;
    let (i, err) =
        models.iter().enumerate().find_map(|(i, m)| m.clone().try_into::<ModelConfig>().err().map(|e| (i, e)))?;
    let msg = err.message().to_string();
    let entry = [Key("models"), Index(i)];
    let span = msg
        .split('`')
        .nth(1)
        .and_then(|token| crate::locate::find_in(text, &entry, token))
        .or_else(|| crate::locate::span_of(text, &entry));
    Some((span, msg))
}

use crate::locate::Seg::{Index, Key};

/// Where in an experiment file a key is, for error messages: `file:line: `key``.
struct Where<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Where<'_> {
    /// The location of the key at `path` (its line from the parser's spans).
    fn at(&self, path: &[crate::locate::Seg]) -> String {
        let key = path.iter().rev().find_map(|s| match s {
            Key(k) => Some(*k),
            Index(_) => None,
        });
        format!("{}:{}: `{}`", self.file.display(), crate::locate::line_of(self.text, path), key.unwrap_or(""))
    }

    /// A top-level key.
    fn key(&self, key: &str) -> String {
        self.at(&[Key(key)])
    }

    /// A key of the table `table` (dotted for nested tables, e.g. `quant.mixed`).
    fn in_table(&self, table: &str, key: &str) -> String {
        let mut path: Vec<crate::locate::Seg> = table.split('.').map(Key).collect();
        path.push(Key(key));
        self.at(&path)
    }
}

impl DataConfig {
    fn validate(&self, w: &Where) -> Result<()> {
        let at = |key: &str| w.in_table("data", key);
        for (k, v) in [("train", self.train), ("calib", self.calib), ("test", self.test)] {
            if v == 0 {
                bail!(at(k), "split size must be at least 1");
            }
        }
        if self.dataset == Dataset::Idx && (self.images.is_none() || self.labels.is_none()) {
            bail!(at("dataset"), "dataset = \"idx\" needs `images` and `labels` file paths");
        }
        if self.test_images.is_some() != self.test_labels.is_some() {
            bail!(at("test_images"), "give both `test_images` and `test_labels` or neither");
        }
        let separate_test =
            matches!(self.dataset, Dataset::Mnist | Dataset::FashionMnist) || self.test_images.is_some();
        if self.half.is_some() && separate_test {
            bail!(at("half"), "applies to one pool of examples, but this dataset has a separate test file");
        }
        if self.cross_fit && separate_test {
            bail!(
                at("cross_fit"),
                "cross-fitted folds need one pool of examples, but this dataset has a separate test file"
            );
        }
        Ok(())
    }
}

fn validate_train(t: &TrainConfig, w: &Where) -> Result<()> {
    let at = |key: &str| w.in_table("train", key);
    if t.epochs == 0 || t.epochs > 1000 {
        bail!(at("epochs"), "must be between 1 and 1000, got {}", t.epochs);
    }
    if t.batch_size == 0 {
        bail!(at("batch_size"), "must be at least 1");
    }
    if !(t.lr > 0.0 && t.lr < 10.0) {
        bail!(at("lr"), "must be in (0, 10), got {}", t.lr);
    }
    Ok(())
}

impl QuantConfig {
    fn validate(&self, w: &Where) -> Result<()> {
        let at = |key: &str| w.in_table("quant", key);
        if self.bits.is_empty() {
            bail!(at("bits"), "must list at least one bit width");
        }
        if let Some(b) = self.bits.iter().find(|b| b.is_full_precision()) {
            bail!(at("bits"), "bit width {b} is not a quantized width; use 2..=8 or 16 (FP32 is always the reference)");
        }
        if let Some(p) = self.granularity.problem() {
            bail!(at("granularity"), "{p}");
        }
        if self.random_n < 27 {
            bail!(
                at("random_n"),
                "must be at least 27 (the null baseline needs as many draws as a 3-layer search), got {}",
                self.random_n
            );
        }
        if let Some(m) = &self.mixed {
            m.validate(w)?;
        }
        if let Some(b) = self.beam
            && !(1..=4096).contains(&b)
        {
            bail!(at("beam"), "must be between 1 and 4096, got {b}");
        }
        if let Some(a) = &self.adaround {
            let at = |key: &str| w.in_table("quant.adaround", key);
            if !(1..=100_000).contains(&a.iters) {
                bail!(at("iters"), "must be between 1 and 100000, got {}", a.iters);
            }
            if !(1..=4096).contains(&a.batch) {
                bail!(at("batch"), "must be between 1 and 4096, got {}", a.batch);
            }
            if !(a.lambda.is_finite() && a.lambda >= 0.0) {
                bail!(at("lambda"), "must be a finite number ≥ 0, got {}", a.lambda);
            }
        }
        if let Some(p) = self.percentile
            && !(p > 0.5 && p <= 1.0)
        {
            bail!(at("percentile"), "must be in (0.5, 1], got {p}");
        }
        Ok(())
    }
}

impl MixedConfig {
    fn validate(&self, w: &Where) -> Result<()> {
        let at = |key: &str| w.in_table("quant.mixed", key);
        let lowest = self.bits.iter().map(|b| b.get()).min().unwrap_or(32);
        if self.budgets.is_empty() {
            bail!(at("budgets"), "[quant.mixed] needs at least one budget (average bits per weight)");
        }
        for &b in &self.budgets {
            if b < lowest || b > 32 {
                bail!(at("budgets"), "no plan can meet an average of {b} bits with layer widths {:?}", self.bits);
            }
        }
        if self.hutchinson_samples == 0 || self.hutchinson_samples > 1000 {
            bail!(at("hutchinson_samples"), "must be between 1 and 1000");
        }
        if let Some(b) = self.search_beam
            && !(1..=256).contains(&b)
        {
            bail!(at("search_beam"), "must be between 1 and 256, got {b}");
        }
        Ok(())
    }
}

impl Experiment {
    /// Reads, parses and validates an experiment file.
    pub fn load(file: &Path) -> Result<Experiment> {
        let text = std::fs::read_to_string(file)
            .map_err(|source| ExperimentError::Read { file: file.to_path_buf(), source })?;
        Experiment::parse(file, &text)
    }

    /// Parses and validates experiment text; `file` only names it in errors.
    pub fn parse(file: &Path, text: &str) -> Result<Experiment> {
        let mut exp: Experiment = toml::from_str(text).map_err(|e| toml_error(file, text, e))?;
        exp.resolve_imports(file, text)?;
        exp.validate(file, text)?;
        Ok(exp)
    }

    /// Cross-field checks, each naming the file, line and key.
    pub fn validate(&self, file: &Path, text: &str) -> Result<()> {
        let w = Where { file, text };
        if self.name.trim().is_empty() || self.name.contains(['/', '\\']) || self.name.starts_with('.') {
            bail!(w.key("name"), "must be a non-empty folder name without slashes, got {:?}", self.name);
        }
        if self.repeats == 0 || self.repeats > 100 {
            bail!(w.key("repeats"), "must be between 1 and 100, got {}", self.repeats);
        }
        if self.backends.is_empty() {
            bail!(w.key("backends"), "must list at least one backend (flex, ndarray, wgpu)");
        }
        let mut unique = self.backends.clone();
        unique.sort();
        unique.dedup();
        if unique.len() != self.backends.len() {
            bail!(w.key("backends"), "lists a backend twice");
        }
        self.validate_models(&w)?;
        self.validate_overrides(&w)?;
        self.data.validate(&w)?;
        validate_train(&self.train, &w)?;
        self.quant.validate(&w)
    }

    fn validate_models(&self, w: &Where) -> Result<()> {
        if self.models.is_empty() {
            bail!(
                w.key("models"),
                "must list at least one model ([[models]] with kind = mlp, cnn, res-mlp, plain-mlp, res-cnn, plain-cnn or onnx)"
            );
        }
        let mut names = std::collections::HashSet::new();
        for (i, m) in self.models.iter().enumerate() {
            if let Err(e) = m.validate() {
                let field = match e {
                    mpq_models::ModelError::Field { field, .. } => field,
                    _ => "kind",
                };
                bail!(w.at(&[Key("models"), Index(i), Key(field)]), "{e}");
            }
            if m.batch_norm() && self.train.engine == mpq_models::TrainEngine::Burn {
                bail!(
                    w.at(&[Key("models"), Index(i), Key("kind")]),
                    "{} trains with batch norm, which only the host engine has: set `engine = \"host\"` under [train]",
                    m.name()
                );
            }
            if !names.insert(m.name()) {
                let at = w.at(&[Key("models"), Index(i), Key("kind")]);
                bail!(at, "model {} is listed twice (run ids would collide)", m.name());
            }
        }
        Ok(())
    }

    /// Each `[[overrides]]` entry names models of this experiment, each at most once, and
    /// changes something; a residual model and its plain twin keep equal repeats and splits
    /// (the identity claim pairs them by repeat).
    fn validate_overrides(&self, w: &Where) -> Result<()> {
        let names: Vec<String> = self.models.iter().map(|m| m.name()).collect();
        let valid: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut seen = std::collections::HashSet::new();
        for (i, o) in self.overrides.iter().enumerate() {
            let at = |key: &str| w.at(&[Key("overrides"), Index(i), Key(key)]);
            if o.models.is_empty() {
                bail!(at("models"), "must name at least one model (of: {})", names.join(", "));
            }
            for m in &o.models {
                if !names.contains(m) {
                    let hint = did_you_mean(m, &valid).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
                    bail!(at("models"), "no model {m:?} in this experiment{hint}; its models are {}", names.join(", "));
                }
                if !seen.insert(m.clone()) {
                    bail!(at("models"), "model {m:?} is named by two overrides");
                }
            }
            if o.repeats.is_none() && o.test.is_none() && o.strategies.is_none() {
                bail!(at("models"), "an override must set `repeats`, `test` or `strategies`");
            }
            if o.strategies.as_ref().is_some_and(|s| s.is_empty()) {
                bail!(at("strategies"), "must list at least one strategy (exhaustive, greedy, beam, taylor, adaround)");
            }
            if let Some(r) = o.repeats
                && (r == 0 || r > 100)
            {
                bail!(at("repeats"), "must be between 1 and 100, got {r}");
            }
            if o.test == Some(0) {
                bail!(at("test"), "split size must be at least 1");
            }
        }
        for (res, plain) in self.identity_pairs() {
            let (r, p) = (self.model_named(&res), self.model_named(&plain));
            if let (Some(r), Some(p)) = (r, p)
                && (self.repeats_for(r) != self.repeats_for(p)
                    || self.sizes_for(r) != self.sizes_for(p)
                    || self.strategies_for(r) != self.strategies_for(p))
            {
                bail!(
                    w.key("overrides"),
                    "{res} and its plain twin {plain} need the same repeats, test size and strategies (the identity claim pairs them by repeat)"
                );
            }
        }
        Ok(())
    }
}
