//! `harness`: the mpq command line. It parses experiment files, schedules runs, shows
//! progress and writes results; every algorithm lives in the library crates.

use harness::{export, publish, replicate, schedule, sweep};
use mpq_cluster::shard::Shard;
use mpq_experiment::config;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Layerwise floor/ceil/mixed-precision quantization experiments on MNIST, judged on held-out data.
#[derive(Parser, Debug)]
#[command(
    name = "harness",
    version,
    about = "Layerwise floor/ceil/nearest and mixed-precision quantization experiments, judged on held-out data",
    after_help = "Examples:\n  harness experiments/mnist.toml          run the main study (offline, ~5 min on 2 cores)\n  harness check experiments/mnist.toml    list the runs without training\n  harness paper experiments/mnist.toml    rebuild paper/REPORT.md from results\n  harness run FILE --jobs 2               two runs at once, cores split between them\n  harness run FILE --shard 0/4            one shard of four (then: harness gather FILE)\n  harness bench                           throughput side by side, as ratios\n\nExit status: 0 ok, 2 bad input or unwritable output, 1 some runs failed.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Experiment file to run (same as `harness run FILE`).
    file: Option<PathBuf>,
    #[command(flatten)]
    run: RunArgs,
}

/// How `harness run` executes its runs.
#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Rerun every run even if its results exist.
    #[arg(long)]
    force: bool,
    /// Train models instead of using the experiment's shipped checkpoints (with
    /// `engine = "host"` to the same weights on every CPU; with burn's engine the results
    /// then depend on this CPU's float kernels).
    #[arg(long)]
    retrain: bool,
    /// Runs executed at once; the CPU threads (RAYON_NUM_THREADS, default all cores) are
    /// split between them. Results are identical to --jobs 1.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    jobs: u32,
    /// Run only shard I of N (0-based), e.g. --shard 2/4: a deterministic share of the runs,
    /// balanced by expected cost. Writes only its run files; `harness gather` builds the
    /// report. Inside a SLURM array task the shard comes from SLURM_ARRAY_TASK_ID (minus
    /// SLURM_ARRAY_TASK_MIN) and SLURM_ARRAY_TASK_COUNT when this flag is absent (with
    /// --shards N: SLURM_ARRAY_TASK_ID of N).
    #[arg(long, value_name = "I/N")]
    shard: Option<Shard>,
    /// Number of shards when the index comes from the environment: a Kubernetes Indexed
    /// Job's JOB_COMPLETION_INDEX, or a SLURM array whose size is not the shard count.
    #[arg(long, value_name = "N", conflicts_with = "shard", value_parser = clap::value_parser!(u32).range(1..))]
    shards: Option<u32>,
    /// Seconds after which a claim on a run that its owner stopped refreshing (a process
    /// that died on another host) is taken over; claims of dead processes on this host are
    /// taken over at once.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    claim_timeout: u64,
}

impl RunArgs {
    fn options(&self) -> anyhow::Result<schedule::Options> {
        let shard = match self.shard {
            Some(s) => Some(s),
            None => Shard::from_env(self.shards.map(|n| n as usize), &|k| std::env::var(k).ok())?,
        };
        Ok(schedule::Options {
            force: self.force,
            jobs: self.jobs as usize,
            shard,
            claim_timeout: std::time::Duration::from_secs(self.claim_timeout),
        })
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run an experiment: take each trained model from the cache or the experiment's
    /// shipped checkpoints (or train it), quantize, search, evaluate, and write CSVs, figures
    /// and REPORT.md under results/<name>/. Completed runs are skipped.
    Run {
        /// Experiment TOML file (see experiments/README.md).
        file: PathBuf,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Build the CSVs, figures and report from the run files of a sharded sweep. Lists the
    /// runs still missing (and the shard that owns each, with --shards) and exits 1 while
    /// any are missing.
    Gather {
        /// Experiment TOML file.
        file: PathBuf,
        /// Shard count the sweep was split into (to name each missing run's shard).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        shards: Option<u32>,
    },
    /// Replicate an experiment's frozen design (same file, same overrides) and compare the
    /// claims' verdicts setting by setting: agreement and Cohen's κ per family, verdicts
    /// that flip, and whether the two estimates of each setting differ more than their
    /// intervals allow (z per setting, a chi-square test per family). Two modes:
    /// `--pool IMAGES LABELS` runs the design once more, under a new seed, on a disjoint pool
    /// of digits the first models never saw (IDX files; models train on it), against the
    /// experiment as it is; `--seeds A,B` reruns it under two experiment seeds on the same
    /// digits, which measures seed noise only. Writes agreement.csv, consistency.csv and
    /// REPLICATION.md into --out.
    Replicate {
        /// Experiment TOML file.
        file: PathBuf,
        /// Two experiment seeds (seed-only mode).
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        seeds: Vec<u64>,
        /// IDX image and label files of a pool disjoint from the experiment's data.
        #[arg(long, num_args = 2, value_names = ["IMAGES", "LABELS"], conflicts_with = "seeds")]
        pool: Option<Vec<PathBuf>>,
        /// Experiment seed of the replication on the pool (default: the experiment's + 1).
        #[arg(long, requires = "pool")]
        seed: Option<u64>,
        /// Output folder for the agreement table.
        #[arg(long, default_value = "paper/replication")]
        out: PathBuf,
        /// Rerun every run even if its results exist.
        #[arg(long)]
        force: bool,
    },
    /// Write the shipped digits' two disjoint halves (even and odd positions; stratified by
    /// class) as IDX files, to replicate a design on digits its models never saw:
    /// `harness replicate experiments/halves.toml --pool OUT/odd-images-idx3-ubyte OUT/odd-labels-idx1-ubyte`.
    Halves {
        /// Destination folder.
        #[arg(long, default_value = "datasets/halves")]
        out: PathBuf,
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
    /// Measure training and inference throughput (MLP, CNN) per CPU backend, training with
    /// the host engine, FP32 inference on the host network the searches run on, the integer engine on each kernel this CPU
    /// has, the exhaustive search's configs/s (simulated without and with prefix reuse, and
    /// on the integer engine per kernel) the greedy search's and the random null's plans/s and the Taylor search's searches/s, side by side;
    /// prints ratios and writes results/bench/timing.csv.
    Bench {
        /// Backends to compare (ndarray and wgpu need a build with their cargo features).
        #[arg(long, value_enum, value_delimiter = ',', default_value = "flex")]
        backends: Vec<config::Backend>,
        /// Training examples per measurement.
        #[arg(long, default_value_t = 4000)]
        samples: usize,
        /// Output folder.
        #[arg(long, default_value = "results/bench")]
        out: PathBuf,
        /// Times the whole benchmark runs, one pass after another; each row keeps its fastest
        /// pass, so a slow spell of a shared machine (seconds long) must cover every pass to
        /// show. `scripts/reference/reference.py --passes` does the same on its side.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
        passes: u32,
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
        /// Which plan: exhaustive, greedy, beam, taylor, nearest, floor, ceil, random-best, mixed-dp,
        /// mixed-dp-greedy, mixed-hawq, mixed-uniform or mixed-search (adaround rounds each
        /// weight its own way, which a plan cannot hold, and has no export).
        #[arg(long, default_value = "exhaustive")]
        method: mpq_report::Method,
        /// Bit width (or budget for mixed-* methods) of the plan.
        #[arg(long, default_value_t = 8)]
        bits: u32,
        /// Output file.
        #[arg(long, default_value = "model.mpq")]
        out: PathBuf,
        /// Also write the run's calibration and test example indices (into the experiment's
        /// data, after `[data] half`) as JSON: what another tool needs to calibrate and test on
        /// the same digits.
        #[arg(long)]
        indices: Option<PathBuf>,
        /// Weight granularity of the plan, where the experiment quantizes at several
        /// (`granularity = ["per-tensor", "per-channel"]`); default: the experiment's first.
        #[arg(long, value_parser = parse_granularity)]
        granularity: Option<mpq_quant::tensor::Granularity>,
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

/// `per-tensor`/`tensor` or `per-channel`/`channel`.
fn parse_granularity(s: &str) -> Result<mpq_quant::tensor::Granularity, String> {
    mpq_experiment::granularity::parse(s)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match (cli.command, cli.file) {
        (Some(Command::Run { file, run }), _) => run.options().and_then(|o| sweep::run(&file, run.retrain, &o)),
        (None, Some(file)) => cli.run.options().and_then(|o| sweep::run(&file, cli.run.retrain, &o)),
        (Some(Command::Gather { file, shards }), _) => sweep::gather(&file, shards.map(|n| n as usize)),
        (Some(Command::Check { file }), _) => sweep::check(&file),
        (Some(Command::Replicate { file, seeds, pool, seed, out, force }), _) => {
            let mode = match pool {
                Some(p) => replicate::Mode::Pool { images: p[0].clone(), labels: p[1].clone(), seed },
                None => replicate::Mode::Seeds(seeds),
            };
            replicate::replicate(&file, &mode, &out, force)
        }
        (Some(Command::Halves { out }), _) => replicate::halves(&out),
        (Some(Command::Train { file, retrain, ship }), _) => sweep::train_only(&file, retrain, ship),
        (Some(Command::Paper { file, out }), _) => publish::paper(&file, &out),
        (Some(Command::Bench { backends, samples, out, passes }), _) => {
            mpq_bench::bench(&backends, samples, &out, passes as usize).map(|_| ExitCode::SUCCESS).map_err(Into::into)
        }
        (Some(Command::Export { file, run, method, bits, out, indices, granularity }), _) => {
            export::export(&file, &run, method, bits, &out, indices.as_deref(), granularity)
        }
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
