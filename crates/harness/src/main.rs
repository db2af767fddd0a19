//! `harness`: the mpq command line. It parses experiment files, schedules runs, shows
//! progress and writes results; every algorithm lives in the library crates.

use harness::{bench, config, export, replicate, sweep};

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Layerwise floor/ceil/mixed-precision quantization experiments on MNIST, judged on held-out data.
#[derive(Parser, Debug)]
#[command(
    name = "harness",
    version,
    about = "Layerwise floor/ceil/nearest and mixed-precision quantization experiments, judged on held-out data",
    after_help = "Examples:\n  harness experiments/mnist.toml          run the main study (offline, ~5 min on 2 cores)\n  harness check experiments/mnist.toml    list the runs without training\n  harness paper experiments/mnist.toml    rebuild paper/REPORT.md from results\n  harness bench                           throughput side by side, as ratios\n\nExit status: 0 ok, 2 bad input or unwritable output, 1 some runs failed.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Experiment file to run (same as `harness run FILE`).
    file: Option<PathBuf>,
    /// Rerun every run even if its results exist.
    #[arg(long)]
    force: bool,
    /// Train models instead of using the experiment's shipped checkpoints.
    #[arg(long)]
    retrain: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run an experiment: take each trained model from the cache or the experiment's
    /// shipped checkpoints (or train it), quantize, search, evaluate, and write CSVs, figures
    /// and REPORT.md under results/<name>/. Completed runs are skipped.
    Run {
        /// Experiment TOML file (see experiments/README.md).
        file: PathBuf,
        /// Rerun every run even if its results exist.
        #[arg(long)]
        force: bool,
        /// Train models instead of using the experiment's shipped checkpoints (results then
        /// depend on this CPU's float kernels).
        #[arg(long)]
        retrain: bool,
    },
    /// Run an experiment under two independent experiment seeds (new splits, folds,
    /// initializations and shuffles) and print how often the claims' verdicts agree; writes
    /// agreement.csv and REPLICATION.md. Models are trained (shipped checkpoints belong to
    /// the experiment's own seed).
    Replicate {
        /// Experiment TOML file.
        file: PathBuf,
        /// Two experiment seeds.
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        seeds: Vec<u64>,
        /// Output folder for the agreement table.
        #[arg(long, default_value = "paper/replication")]
        out: PathBuf,
        /// Rerun every run even if its results exist.
        #[arg(long)]
        force: bool,
    },
    /// Validate an experiment file and print the expanded runs without training anything.
    Check {
        /// Experiment TOML file.
        file: PathBuf,
    },
    /// Train (or load from the cache or shipped checkpoints) every model of an experiment
    /// and print test accuracy.
    Train {
        /// Experiment TOML file.
        file: PathBuf,
        /// Train instead of using shipped checkpoints.
        #[arg(long)]
        retrain: bool,
        /// Then copy the checkpoints into the experiment's `checkpoints` folder and write its
        /// SHA256SUMS (what a fresh clone's run will use).
        #[arg(long)]
        ship: bool,
    },
    /// Regenerate paper/REPORT.md and paper/figures/ from an experiment's results.
    Paper {
        /// Experiment TOML file whose results to use.
        file: PathBuf,
        /// Output folder.
        #[arg(long, default_value = "paper")]
        out: PathBuf,
    },
    /// Measure training and inference throughput (MLP, CNN) per CPU backend and the
    /// exhaustive search's configs/s without and with prefix reuse, side by side; prints
    /// ratios and writes results/bench/timing.csv.
    Bench {
        /// Backends to compare.
        #[arg(long, value_delimiter = ',', default_value = "flex,ndarray")]
        backends: Vec<String>,
        /// Training examples per measurement.
        #[arg(long, default_value_t = 4000)]
        samples: usize,
        /// Output folder.
        #[arg(long, default_value = "results/bench")]
        out: PathBuf,
    },
    /// Export a completed run's plan as a packed low-bit model (integer codes packed by bit
    /// width, scales, input quantization), then check the integer engine against simulated
    /// quantization on the run's test split and report the file size against FP32.
    Export {
        /// Experiment TOML file.
        file: PathBuf,
        /// Run id (see `harness check FILE`).
        #[arg(long)]
        run: String,
        /// Which plan: exhaustive, greedy, taylor, nearest, floor, ceil, random-best, mixed-dp, ...
        #[arg(long, default_value = "exhaustive")]
        method: String,
        /// Bit width (or budget for mixed-* methods) of the plan.
        #[arg(long, default_value_t = 8)]
        bits: u32,
        /// Output file.
        #[arg(long, default_value = "model.mpq")]
        out: PathBuf,
    },
    /// Download a full dataset (mnist or fashion-mnist) into datasets/<name>/, verifying SHA-256.
    /// The only command that uses the network.
    Fetch {
        /// Dataset name: mnist or fashion-mnist.
        dataset: String,
        /// Destination root folder.
        #[arg(long, default_value = "datasets")]
        dir: PathBuf,
        /// Base address to download from instead of the public mirrors (for testing).
        #[arg(long)]
        mirror: Option<String>,
    },
}

fn parse_backends(names: &[String]) -> anyhow::Result<Vec<config::Backend>> {
    names
        .iter()
        .map(|n| {
            toml::Value::String(n.clone())
                .try_into::<config::Backend>()
                .map_err(|_| anyhow::anyhow!("unknown backend `{n}`; use flex, ndarray or wgpu"))
        })
        .collect()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match (cli.command, cli.file) {
        (Some(Command::Run { file, force, retrain }), _) => sweep::run(&file, force, retrain),
        (None, Some(file)) => sweep::run(&file, cli.force, cli.retrain),
        (Some(Command::Check { file }), _) => sweep::check(&file),
        (Some(Command::Replicate { file, seeds, out, force }), _) => replicate::replicate(&file, &seeds, &out, force),
        (Some(Command::Train { file, retrain, ship }), _) => sweep::train_only(&file, retrain, ship),
        (Some(Command::Paper { file, out }), _) => sweep::paper(&file, &out),
        (Some(Command::Bench { backends, samples, out }), _) => {
            parse_backends(&backends).and_then(|b| bench::bench(&b, samples, &out))
        }
        (Some(Command::Export { file, run, method, bits, out }), _) => export::export(&file, &run, &method, bits, &out),
        (Some(Command::Fetch { dataset, dir, mirror }), _) => sweep::fetch(&dataset, &dir, mirror),
        (None, None) => {
            eprintln!("error: give an experiment file, e.g. `harness experiments/mnist.toml`, or see `harness --help`");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
