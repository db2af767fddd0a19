//! Executing a list of runs: `jobs` at once, each in its own thread pool, each claimed on
//! disk first so that other processes on the same results folder skip it, with progress
//! bars on a terminal and one log line per finished run (and per phase of runs past 10 s)
//! otherwise.

use anyhow::{Context, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use mpq_cluster::claim::{Attempt, Claims, Owner};
use mpq_cluster::shard::Shard;
use mpq_experiment::config::{Experiment, RunSpec};
use mpq_pipeline::dataset::Data;
use mpq_pipeline::output;
use mpq_pipeline::run;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// How a sweep executes its runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Redo runs whose results exist (from before this sweep started).
    pub force: bool,
    /// Runs executed at once in this process.
    pub jobs: usize,
    /// This process's share of the runs, if sharded.
    pub shard: Option<Shard>,
    /// A claim not refreshed for this long belongs to a dead process elsewhere.
    pub claim_timeout: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options { force: false, jobs: 1, shard: None, claim_timeout: Duration::from_secs(300) }
    }
}

/// What executing the runs did.
#[derive(Default)]
pub struct Outcome {
    /// Runs whose results were already there.
    pub reused: usize,
    /// Runs this process completed.
    pub done: usize,
    /// Runs another process completed while this one waited.
    pub done_elsewhere: usize,
    /// Runs that failed here: id and reason.
    pub failures: Vec<(String, String)>,
    /// Seconds per run phase, summed over the runs done here.
    pub phases: run::Clock,
}

/// Progress display: bars on a terminal, log lines otherwise.
struct Ui {
    mp: MultiProgress,
    runs: ProgressBar,
    phases: Vec<ProgressBar>,
    tty: bool,
    total: usize,
    label: String,
}

impl Ui {
    fn new(total: usize, jobs: usize, shard: Option<Shard>) -> Ui {
        let mp = MultiProgress::new();
        let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
        if !tty {
            mp.set_draw_target(ProgressDrawTarget::hidden());
        }
        let style = ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        let runs = mp.add(ProgressBar::new(total as u64).with_style(style.clone()).with_prefix("runs"));
        let phases = (0..jobs)
            .map(|j| {
                let prefix = if jobs == 1 { "phase".to_string() } else { format!("job {}", j + 1) };
                mp.add(ProgressBar::new(0).with_style(style.clone()).with_prefix(prefix))
            })
            .collect();
        let label = shard.map(|s| format!(" shard {s}")).unwrap_or_default();
        Ui { mp, runs, phases, tty, total, label }
    }

    /// A line for the log (above the bars on a terminal).
    fn line(&self, text: &str) {
        if self.tty {
            let _ = self.mp.println(text);
        } else {
            eprintln!("{text}");
        }
    }

    /// Counts a run off; logs `run <id> [shard] (k/n) [seconds] <outcome>` without a terminal.
    fn finished(&self, id: &str, secs: Option<f64>, outcome: &str) {
        self.runs.inc(1);
        if !self.tty {
            let (k, n) = (self.runs.position(), self.total);
            let secs = secs.map(|s| format!(" {s:.1}s")).unwrap_or_default();
            self.line(&format!("run {id}{} ({k}/{n}){secs} {outcome}", self.label));
        }
    }
}

/// Shared work list of the workers.
struct Queue {
    pending: Vec<RunSpec>,
    outcome: Outcome,
    last_wait_note: Option<Instant>,
}

enum Pick {
    Run(RunSpec, mpq_cluster::claim::Claim),
    Wait,
    Finished,
}

/// Runs every spec not already done, `opts.jobs` at a time, and returns what happened.
pub fn execute_all(exp: &Experiment, data: &Data, specs: &[RunSpec], opts: &Options) -> Result<Outcome> {
    let out = exp.out_dir();
    let since = opts.force.then(SystemTime::now);
    let claims = Claims::new(&out, opts.claim_timeout);
    let jobs = opts.jobs.max(1);
    let ui = Ui::new(specs.len(), jobs, opts.shard);
    let mut outcome = Outcome::default();
    let pending: Vec<RunSpec> = specs
        .iter()
        .filter(|s| {
            let done = is_done(&out, &s.id, since);
            outcome.reused += usize::from(done);
            !done
        })
        .cloned()
        .collect();
    // Longest first, so that parallel jobs finish together (results do not depend on order).
    let mut by_cost: Vec<(f64, RunSpec)> =
        pending.into_iter().map(|s| (mpq_cluster::shard::expected_cost(&s), s)).collect();
    by_cost.sort_by(|(ca, a), (cb, b)| cb.total_cmp(ca).then(a.id.cmp(&b.id)));
    let pending: Vec<RunSpec> = by_cost.into_iter().map(|(_, s)| s).collect();
    ui.runs.inc(outcome.reused as u64);
    let queue = Mutex::new(Queue { pending, outcome, last_wait_note: None });
    let threads = (rayon::current_num_threads() / jobs).max(1);
    if jobs > 1 {
        ui.line(&format!("{jobs} jobs at once, {threads} thread(s) each"));
    }
    std::thread::scope(|s| -> Result<()> {
        let workers: Vec<_> = (0..jobs)
            .map(|j| {
                let (queue, claims, ui, out) = (&queue, &claims, &ui, &out);
                s.spawn(move || -> Result<()> {
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
                    pool.install(|| worker(exp, data, out, since, claims, queue, ui, j))
                })
            })
            .collect();
        for w in workers {
            w.join().map_err(|_| anyhow::anyhow!("a worker thread panicked"))??;
        }
        Ok(())
    })?;
    for p in &ui.phases {
        p.finish_and_clear();
    }
    ui.runs.finish_and_clear();
    let q = queue.into_inner().map_err(|_| anyhow::anyhow!("a worker thread panicked"))?;
    Ok(q.outcome)
}

fn is_done(out: &Path, id: &str, since: Option<SystemTime>) -> bool {
    let fresh = || {
        let m = std::fs::metadata(output::run_file(out, id)).and_then(|m| m.modified());
        since.is_none_or(|t| m.is_ok_and(|m| m >= t))
    };
    output::load_run(out, id).is_some() && fresh()
}

#[allow(clippy::too_many_arguments)]
fn worker(
    exp: &Experiment,
    data: &Data,
    out: &Path,
    since: Option<SystemTime>,
    claims: &Claims,
    queue: &Mutex<Queue>,
    ui: &Ui,
    job: usize,
) -> Result<()> {
    let cache = exp.output.join("cache");
    loop {
        let pick = {
            let mut q = queue.lock().map_err(|_| anyhow::anyhow!("a worker thread panicked"))?;
            pick(&mut q, out, since, claims, ui)?
        };
        let (spec, claim) = match pick {
            Pick::Run(spec, claim) => (spec, claim),
            Pick::Wait => {
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
            Pick::Finished => return Ok(()),
        };
        ui.runs.set_message(spec.id.clone());
        let started = Instant::now();
        let bar = &ui.phases[job];
        let mut last_line = 0.0;
        let mut progress = |what: &str, d: usize, t: usize| {
            let secs = started.elapsed().as_secs_f64();
            if t == 0 {
                // A phase ended: long runs log it, at most one line per 5 s.
                if !ui.tty && secs >= 10.0 && secs - last_line >= 5.0 {
                    ui.line(&format!("  run {}{}: {what} done, {secs:.0}s in", spec.id, ui.label));
                    last_line = secs;
                }
                return;
            }
            bar.set_length(t as u64);
            bar.set_position(d as u64);
            bar.set_message(format!("{} {what}", spec.id));
        };
        let result = run::execute(exp, &spec, data, &cache, &mut progress)
            .and_then(|r| output::save_run(out, &spec.id, &r).map(|()| r));
        drop(claim);
        let secs = started.elapsed().as_secs_f64();
        let mut q = queue.lock().map_err(|_| anyhow::anyhow!("a worker thread panicked"))?;
        match result {
            Ok(r) => {
                for (p, s) in &r.phases {
                    q.outcome.phases.add(p, *s);
                }
                q.outcome.done += 1;
                ui.finished(&spec.id, Some(secs), "ok");
            }
            Err(e) => {
                let reason = format!("{e:#}");
                ui.finished(&spec.id, Some(secs), &format!("failed: {reason}"));
                q.outcome.failures.push((spec.id.clone(), reason));
            }
        }
    }
}

/// The next run this worker may do: the first pending run that is neither done nor claimed
/// by a live process; `Wait` while the rest are claimed elsewhere.
fn pick(q: &mut Queue, out: &Path, since: Option<SystemTime>, claims: &Claims, ui: &Ui) -> Result<Pick> {
    let mut busy: Vec<(String, Owner)> = Vec::new();
    let mut i = 0;
    while i < q.pending.len() {
        let id = q.pending[i].id.clone();
        if is_done(out, &id, since) {
            q.pending.remove(i);
            q.outcome.done_elsewhere += 1;
            ui.finished(&id, None, "done by another process");
            continue;
        }
        match claims.try_claim(&id).with_context(|| format!("claiming run {id}"))? {
            Attempt::Claimed(c) if is_done(out, &id, since) => drop(c),
            Attempt::Claimed(c) => return Ok(Pick::Run(q.pending.remove(i), c)),
            Attempt::Busy(owner) => {
                busy.push((id, owner));
                i += 1;
            }
        }
    }
    if busy.is_empty() {
        return Ok(Pick::Finished);
    }
    if q.last_wait_note.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
        q.last_wait_note = Some(Instant::now());
        let (id, owner) = &busy[0];
        ui.line(&format!(
            "waiting for {} run(s) claimed by other processes (e.g. {id} by {owner}); a claim not refreshed for {}s is taken over",
            busy.len(),
            claims.timeout().as_secs()
        ));
    }
    Ok(Pick::Wait)
}
