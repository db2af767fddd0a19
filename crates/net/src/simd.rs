//! The CPU's SIMD level, detected once for both executors: the f32 host network picks its
//! path from it and the integer engine its kernel, so one override (`MPQ_HOST_SIMD=portable`)
//! moves both onto the baseline and one list says what the CPU has.

use std::sync::OnceLock;

/// The instruction-set extensions the executors' kernels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Level {
    /// x86-64 AVX2 (the host network's f32 path, the engine's `avx2` kernel).
    pub avx2: bool,
    /// x86-64 AVX-VNNI on 256-bit registers (the engine's `avxvnni` kernel).
    pub avx_vnni: bool,
    /// x86-64 AVX-512 VNNI with AVX-512 BW (the engine's `vnni512` kernel).
    pub avx512_vnni: bool,
    /// aarch64 NEON with the dot-product extension (the engine's `neon-sdot` kernel).
    pub neon_dot: bool,
}

impl Level {
    /// What this CPU has, ignoring the override.
    pub fn detect() -> Level {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            Level {
                avx2: has!("avx2"),
                avx_vnni: has!("avxvnni") && has!("avx2"),
                avx512_vnni: has!("avx512vnni") && has!("avx512bw"),
                neon_dot: false,
            }
        }
        #[cfg(target_arch = "aarch64")]
        {
            Level { neon_dot: std::arch::is_aarch64_feature_detected!("dotprod"), ..Level::default() }
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        {
            Level::default()
        }
    }
}

/// Every kernel of both executors, named once: the integer engine runs any of them (its GEMM
/// kernels, `mpq-lowbit`'s `gemm`), the host network `Avx2` or `Portable` (its f32 path);
/// the names are those of tables, manifests and [`EXPECT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// x86-64 AVX-512 VNNI (`vpdpbusd`).
    Vnni512,
    /// x86-64 AVX-VNNI (`vpdpbusd` on 256-bit registers).
    AvxVnni,
    /// x86-64 AVX2 (256-bit vectors).
    Avx2,
    /// aarch64 NEON with the dot-product extension (`sdot`).
    NeonSdot,
    /// The target's baseline (SSE2 on x86-64), any CPU.
    Portable,
}

impl Kernel {
    /// Every kernel, fastest first: what tests and benchmarks compare.
    pub const ALL: [Kernel; 5] = [Kernel::Vnni512, Kernel::AvxVnni, Kernel::Avx2, Kernel::NeonSdot, Kernel::Portable];

    /// The fastest kernel this CPU supports: the first of [`Kernel::ALL`] it can run.
    pub fn detect() -> Kernel {
        Kernel::ALL.into_iter().find(|k| k.supported()).unwrap_or(Kernel::Portable)
    }

    /// Whether this CPU can run the kernel at the level in use ([`level`], which
    /// `MPQ_HOST_SIMD=portable` limits to the baseline).
    #[inline]
    pub fn supported(self) -> bool {
        let level = level();
        match self {
            Kernel::Portable => true,
            Kernel::Avx2 => cfg!(target_arch = "x86_64") && level.avx2,
            Kernel::AvxVnni => cfg!(target_arch = "x86_64") && level.avx_vnni,
            Kernel::Vnni512 => cfg!(target_arch = "x86_64") && level.avx512_vnni,
            Kernel::NeonSdot => cfg!(target_arch = "aarch64") && level.neon_dot,
        }
    }

    /// Short name for tables (`vnni512`, `avxvnni`, `avx2`, `neon-sdot`, `portable`).
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Vnni512 => "vnni512",
            Kernel::AvxVnni => "avxvnni",
            Kernel::Avx2 => "avx2",
            Kernel::NeonSdot => "neon-sdot",
            Kernel::Portable => "portable",
        }
    }
}

/// The environment variable that, set to `portable`, hides every extension from both
/// executors (to show that results do not depend on the SIMD level, or to time the baseline).
pub const OVERRIDE: &str = "MPQ_HOST_SIMD";

/// The level in use: [`Level::detect`], or nothing beyond the baseline when
/// `MPQ_HOST_SIMD=portable`. Inlined: kernels ask it before every call.
#[inline]
pub fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        if std::env::var(OVERRIDE).is_ok_and(|v| v == "portable") { Level::default() } else { Level::detect() }
    })
}

/// The CPU's SIMD flags by name (as `/proc/cpuinfo` spells them), for manifests and logs.
pub fn cpu_flags() -> Vec<(&'static str, bool)> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        vec![
            ("sse4.2", has!("sse4.2")),
            ("avx", has!("avx")),
            ("avx2", has!("avx2")),
            ("fma", has!("fma")),
            ("avx512f", has!("avx512f")),
            ("avx512vnni", has!("avx512vnni")),
            ("avxvnni", has!("avxvnni")),
        ]
    }
    #[cfg(target_arch = "aarch64")]
    {
        use std::arch::is_aarch64_feature_detected as has;
        vec![("neon", has!("neon")), ("dotprod", has!("dotprod")), ("i8mm", has!("i8mm"))]
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        Vec::new()
    }
}

/// The environment variable in which a test runner lists, comma-separated, the kernels and
/// paths its CPU has (`avx2`, `vnni512`, `avxvnni`, `neon-sdot`, `portable`): tests that
/// compare SIMD paths then fail instead of comparing the baseline with itself.
pub const EXPECT: &str = "MPQ_EXPECT_KERNELS";

/// For tests that compare SIMD paths: says on stderr which of `paths` (name, runs here) `test`
/// covered, and returns an error naming each one that [`EXPECT`] lists but that does not run.
pub fn coverage(test: &str, paths: &[(&str, bool)]) -> Result<(), String> {
    let ran: Vec<&str> = paths.iter().filter(|p| p.1).map(|p| p.0).collect();
    let skipped: Vec<&str> = paths.iter().filter(|p| !p.1).map(|p| p.0).collect();
    eprintln!(
        "{test}: covered {}; skipped {}",
        ran.join(", "),
        if skipped.is_empty() { "none".into() } else { skipped.join(", ") }
    );
    let expected = std::env::var(EXPECT).unwrap_or_default();
    let missing: Vec<&str> = skipped.into_iter().filter(|s| expected.split(',').any(|e| e.trim() == *s)).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("{test}: {EXPECT} expects {} here, but it did not run", missing.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The level in use never claims more than the CPU has.
    #[test]
    fn level_is_within_the_cpu() {
        let (used, cpu) = (level(), Level::detect());
        for (u, c) in [
            (used.avx2, cpu.avx2),
            (used.avx_vnni, cpu.avx_vnni),
            (used.avx512_vnni, cpu.avx512_vnni),
            (used.neon_dot, cpu.neon_dot),
        ] {
            assert!(!u || c);
        }
        let names: Vec<&str> = Kernel::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names, ["vnni512", "avxvnni", "avx2", "neon-sdot", "portable"]);
        assert!(Kernel::Portable.supported() && Kernel::detect().supported());
        let flags = cpu_flags();
        #[cfg(target_arch = "x86_64")]
        assert_eq!(flags.iter().find(|f| f.0 == "avx2").map(|f| f.1), Some(cpu.avx2));
        let _ = flags;
    }
}
