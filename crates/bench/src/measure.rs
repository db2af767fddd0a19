//! How a number is taken: the caller inside rayon's pool, the fastest of five rounds of at
//! least 60 ms, and the machine it was taken on.

use mpq_experiment::config::Backend;
use mpq_lowbit::gemm::Kernel;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Makes the calling thread one of the threads of rayon's global pool, as ONNX Runtime's and
/// PyTorch's callers are of theirs: a parallel call from outside the pool hands its work to
/// the pool's threads and sleeps until they finish, which at batch 64 cost the MLP half its
/// speed. Only with 2 threads or more: a pool whose one thread is the caller would leave work
/// sent to it from another thread waiting. Returns whether it did (not where the global pool
/// was already built).
pub fn pool_on_this_thread() -> bool {
    let env = std::env::var("RAYON_NUM_THREADS").ok().and_then(|v| v.parse::<usize>().ok()).filter(|&n| n > 0);
    let threads = env.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    threads >= 2 && rayon::ThreadPoolBuilder::new().num_threads(threads).use_current_thread().build_global().is_ok()
}

/// Times `f` after one untimed call: five rounds of repeated calls, each lasting at least
/// 60 ms, and returns the fastest round's seconds per call. A round that another process
/// slowed down (this is measured on shared machines) does not count; `reference.py` times
/// the PyTorch and ONNX Runtime side the same way.
pub fn time_per_call(mut f: impl FnMut()) -> f64 {
    f();
    (0..5)
        .map(|_| {
            let (t0, mut calls) = (Instant::now(), 0u32);
            while calls < 1 || t0.elapsed().as_secs_f64() < 0.06 {
                f();
                calls += 1;
            }
            t0.elapsed().as_secs_f64() / calls as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// What a bench ran on (`machine.json`): enough to tell whether two runs can be compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    cpu: String,
    simd: Vec<String>,
    engine_kernel: String,
    host_simd: String,
    rayon_threads: usize,
    cores: usize,
    git_commit: String,
}

impl Machine {
    /// This machine, now.
    pub fn now() -> Machine {
        Machine {
            cpu: mpq_pipeline::backend::cpu_name(),
            simd: mpq_pipeline::backend::cpu_features().into_iter().map(str::to_string).collect(),
            engine_kernel: Kernel::detect().name().to_string(),
            host_simd: mpq_host::simd::path().name().to_string(),
            rayon_threads: rayon::current_num_threads(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            git_commit: mpq_pipeline::backend::git_commit(true).unwrap_or_else(|| "unknown".into()),
        }
    }

    /// Whether numbers taken on `other` can be compared with this machine's.
    pub fn comparable(&self, other: &Machine) -> bool {
        self.cpu == other.cpu && self.simd == other.simd && self.rayon_threads == other.rayon_threads
    }

    /// Says on stderr what the numbers will be taken on.
    pub fn describe(&self, backends: &[Backend], caller_in_pool: bool) {
        let mut adapters: Vec<String> =
            backends.iter().map(|&b| mpq_pipeline::backend::adapter(b, &self.cpu)).collect();
        adapters.dedup();
        eprintln!("devices: {}", adapters.join("; "));
        eprintln!(
            "SIMD: {}; integer engine kernel: {}; host evaluation: {}",
            self.simd.join(" "),
            self.engine_kernel,
            self.host_simd
        );
        let caller = if caller_in_pool { ", this thread one of them" } else { "" };
        eprintln!("threads: {} (rayon{caller}; RAYON_NUM_THREADS sets it) on {} cores", self.rayon_threads, self.cores);
    }
}
