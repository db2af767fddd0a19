//! The rows of `timing.csv`, typed: what was measured, in which unit, and what each kind of
//! row is compared with.

use mpq_experiment::config::Backend;
use serde::{Deserialize, Serialize};

/// What a row measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum What {
    /// One epoch of training.
    #[default]
    Train,
    /// FP32 inference over 1000 digits on a backend.
    Infer,
    /// FP32 forward pass at a batch size.
    InferFp32,
    /// The integer engine at 8 bits.
    InferInt8,
    /// The integer engine at 4 bits.
    InferInt4,
    /// Every 8-bit rounding plan scored from scratch.
    ExhaustiveNaive,
    /// Every 8-bit rounding plan, reusing shared prefixes.
    ExhaustivePrefix,
    /// The same on the integer engine.
    ExhaustiveInteger,
    /// Greedy coordinate descent, simulated.
    Greedy,
    /// Greedy coordinate descent on the integer engine.
    GreedyInteger,
    /// The best-of-27 random null, every plan scored from scratch (simulated).
    RandomNull,
    /// The Taylor search: one backward pass, the per-layer predicted changes, their argmin.
    Taylor,
}

impl What {
    /// The name in `timing.csv` and the printed table.
    pub fn name(self) -> &'static str {
        match self {
            What::Train => "train",
            What::Infer => "infer",
            What::InferFp32 => "infer-fp32",
            What::InferInt8 => "infer-int8",
            What::InferInt4 => "infer-int4",
            What::ExhaustiveNaive => "exhaustive-naive",
            What::ExhaustivePrefix => "exhaustive-prefix",
            What::ExhaustiveInteger => "exhaustive-integer",
            What::Greedy => "greedy",
            What::GreedyInteger => "greedy-integer",
            What::RandomNull => "random-null",
            What::Taylor => "taylor",
        }
    }

    /// The engine at `bits` (8 or 4).
    pub fn int(bits: u32) -> What {
        if bits <= 4 { What::InferInt4 } else { What::InferInt8 }
    }

    /// Whether this is a forward pass at a batch size (compared with the fastest FP32 one).
    fn is_batch_inference(self) -> bool {
        matches!(self, What::InferFp32 | What::InferInt8 | What::InferInt4)
    }
}

/// The unit of a row's throughput.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Unit {
    /// Examples per second.
    #[default]
    #[serde(rename = "samples/s")]
    Samples,
    /// Plans scored per second by an exhaustive search.
    #[serde(rename = "configs/s")]
    Configs,
    /// Plans scored per second by a greedy search.
    #[serde(rename = "plans/s")]
    Plans,
    /// Whole searches per second (the Taylor search scores no plan).
    #[serde(rename = "searches/s")]
    Searches,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Samples => "samples/s",
            Unit::Configs => "configs/s",
            Unit::Plans => "plans/s",
            Unit::Searches => "searches/s",
        }
    }
}

/// A row of `timing.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TimingRow {
    /// What was measured.
    pub what: What,
    /// Model name.
    pub model: String,
    /// Backend (`flex`, `host-avx2`, `engine-avx2`, or `flex+avx2` for a search on a kernel).
    pub backend: String,
    /// Batch size.
    pub batch: usize,
    /// Examples, configs or plans per timed call.
    pub samples: usize,
    /// Seconds per timed call.
    pub seconds: f64,
    /// `samples / seconds`.
    pub per_second: f64,
    /// The unit of `per_second`.
    pub unit: Unit,
}

impl TimingRow {
    /// A row of `n` units done in `secs`.
    pub fn new(what: What, model: &str, backend: &str, batch: usize, n: usize, secs: f64, unit: Unit) -> TimingRow {
        TimingRow {
            what,
            model: model.into(),
            backend: backend.into(),
            batch,
            samples: n,
            seconds: secs,
            per_second: n as f64 / secs.max(1e-12),
            unit,
        }
    }

    /// Whether `other` measures the same thing (what, model, backend and batch).
    fn same_measurement(&self, other: &TimingRow) -> bool {
        self.what == other.what
            && self.model == other.model
            && self.backend == other.backend
            && self.batch == other.batch
    }

    fn label(&self) -> String {
        if self.what.is_batch_inference() { format!("{}/b{}", self.backend, self.batch) } else { self.backend.clone() }
    }
}

/// Merges one pass's rows into `rows`, keeping each measurement's fastest pass (a row new to
/// `rows` is added).
pub fn keep_fastest(rows: &mut Vec<TimingRow>, pass: Vec<TimingRow>) {
    for r in pass {
        match rows.iter_mut().find(|o| o.same_measurement(&r)) {
            Some(o) if r.per_second > o.per_second => *o = r,
            Some(_) => {}
            None => rows.push(r),
        }
    }
}

/// The row `r` is compared with in this run, and what that reference is.
pub fn reference<'a>(r: &TimingRow, rows: &'a [TimingRow]) -> (Option<&'a TimingRow>, &'static str) {
    let fastest = |f: &dyn Fn(&TimingRow) -> bool| {
        rows.iter().filter(|o| f(o)).max_by(|a, b| a.per_second.total_cmp(&b.per_second))
    };
    match r.what {
        w if w.is_batch_inference() => {
            let cpu = |o: &TimingRow| o.backend == Backend::Flex.name() || o.backend == Backend::Ndarray.name();
            let fp = fastest(&|o| o.what == What::InferFp32 && o.model == r.model && o.batch == r.batch && cpu(o));
            (fp, "fastest FP32 CPU backend, same batch")
        }
        What::ExhaustivePrefix => {
            let naive =
                rows.iter().find(|o| o.what == What::ExhaustiveNaive && o.model == r.model && o.backend == r.backend);
            (naive, "naive, same backend")
        }
        What::ExhaustiveInteger | What::GreedyInteger => {
            let backend = r.backend.split('+').next().unwrap_or_default();
            let what = if r.what == What::GreedyInteger { What::Greedy } else { What::ExhaustivePrefix };
            let sim = rows.iter().find(|o| o.what == what && o.model == r.model && o.backend == backend);
            (sim, "simulated, same search")
        }
        _ => (fastest(&|o| o.what == r.what && o.model == r.model), "fastest backend"),
    }
}

/// Prints every row with its ratio to its [`reference`].
pub fn print_ratios(rows: &[TimingRow]) {
    println!("what               model        backend              throughput unit          ratio  against");
    for r in rows {
        let (base, against) = reference(r, rows);
        let ratio = base.map(|o| r.per_second / o.per_second).unwrap_or(1.0);
        println!(
            "{:<18} {:<12} {:<20} {:>12.1} {:<10} {:>7.2}x  {}",
            r.what.name(),
            r.model,
            r.label(),
            r.per_second,
            r.unit.name(),
            ratio,
            against
        );
    }
}

/// Each row against the previous run's same measurement.
pub fn print_against_previous(rows: &[TimingRow], previous: &[TimingRow], same_machine: bool) {
    if previous.is_empty() {
        println!("\n(no previous run in this folder to compare with)");
        return;
    }
    let note =
        if same_machine { "same machine and thread count" } else { "ANOTHER machine or thread count: not comparable" };
    println!("\nagainst the previous run ({note}): new / old throughput");
    for r in rows {
        if let Some(o) = previous.iter().find(|o| o.same_measurement(r)) {
            println!(
                "{:<18} {:<12} {:<20} {:>12.1} {:>12.1} {:>7.2}x",
                r.what.name(),
                r.model,
                r.label(),
                r.per_second,
                o.per_second,
                r.per_second / o.per_second.max(1e-12)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn row(what: What, backend: &str, batch: usize, secs: f64) -> TimingRow {
        TimingRow::new(what, "mlp", backend, batch, 100, secs, Unit::Samples)
    }

    /// Each measurement keeps its fastest pass, in the first pass's order; a row only a later
    /// pass has is added.
    #[test]
    fn passes_keep_each_rows_fastest() {
        let mut rows = Vec::new();
        keep_fastest(&mut rows, vec![row(What::Infer, "flex", 1, 2.0), row(What::Infer, "flex", 64, 1.0)]);
        let later = vec![
            row(What::Infer, "flex", 1, 1.0),
            row(What::Infer, "flex", 64, 4.0),
            row(What::Train, "flex", 64, 3.0),
        ];
        keep_fastest(&mut rows, later);
        let got: Vec<(What, usize, f64)> = rows.iter().map(|o| (o.what, o.batch, o.seconds)).collect();
        assert_eq!(got, [(What::Infer, 1, 1.0), (What::Infer, 64, 1.0), (What::Train, 64, 3.0)]);
    }

    /// Each kind of row is compared with its own reference.
    #[test]
    fn references_by_kind() {
        let rows = vec![
            row(What::InferFp32, "flex", 64, 2.0),
            row(What::InferFp32, "ndarray", 64, 1.0),
            row(What::InferFp32, "host-avx2", 64, 0.5),
            row(What::InferInt8, "engine-avx2", 64, 0.25),
            row(What::Greedy, "flex", 1000, 4.0),
            row(What::GreedyInteger, "flex+avx2", 1000, 1.0),
            row(What::ExhaustiveNaive, "flex", 1000, 8.0),
            row(What::ExhaustivePrefix, "flex", 1000, 2.0),
        ];
        let of = |i: usize| reference(&rows[i], &rows).0.map(|o| (o.what, o.backend.clone()));
        assert_eq!(of(3), Some((What::InferFp32, "ndarray".into())), "the fastest CPU backend, not the host");
        assert_eq!(of(5), Some((What::Greedy, "flex".into())));
        assert_eq!(of(7), Some((What::ExhaustiveNaive, "flex".into())));
        assert_eq!(of(4), Some((What::Greedy, "flex".into())));
    }

    /// `timing.csv` keeps its column names and values (`infer-int8`, `samples/s`).
    #[test]
    fn csv_names() {
        let r = TimingRow::new(What::InferInt8, "mlp", "engine-avx2", 1, 1, 1.0, Unit::Plans);
        let mut w = mpq_report::csvio::header::<TimingRow>();
        w.push('\n');
        assert!(w.starts_with("what,model,backend,batch,samples,seconds,per_second,unit"));
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"infer-int8\"") && json.contains("\"plans/s\""), "{json}");
    }
}
