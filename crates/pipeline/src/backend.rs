//! The one place that maps a backend name to a burn device.

use crate::Result;
use burn::prelude::Device;
use mpq_experiment::config::Backend;

/// The burn device for `backend`; ndarray and wgpu need their cargo features.
pub fn device(backend: Backend) -> Result<Device> {
    match backend {
        Backend::Flex => Ok(Device::flex()),
        Backend::Ndarray => ndarray_device(),
        Backend::Wgpu => wgpu_device(),
    }
}

#[cfg(feature = "ndarray")]
#[allow(deprecated)] // Device::ndarray() is deprecated in favour of flex; users asked for both.
fn ndarray_device() -> Result<Device> {
    Ok(Device::ndarray())
}

#[cfg(not(feature = "ndarray"))]
fn ndarray_device() -> Result<Device> {
    Err(crate::PipelineError::Other(
        "backend `ndarray` is not built into this binary (the default build leaves burn-ndarray out); rebuild with \
         `cargo run --release -p harness --features ndarray -- ...`"
            .into(),
    ))
}

#[cfg(feature = "wgpu")]
fn wgpu_device() -> Result<Device> {
    Ok(Device::wgpu(burn::prelude::DeviceKind::DefaultDevice))
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_device() -> Result<Device> {
    Err(crate::PipelineError::Other(
        "backend `wgpu` is not built into this binary; rebuild with `cargo run --release -p harness --features wgpu -- ...` \
         (on a machine without a GPU, install Vulkan's software driver first: apt-get install -y mesa-vulkan-drivers libvulkan1)"
            .into(),
    ))
}

/// The CPU model from `/proc/cpuinfo` (`unknown` elsewhere).
pub fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The SIMD features of this CPU that matter to float kernels (for the manifest: results
/// must not depend on them, and a manifest shows what produced them).
pub fn cpu_features() -> Vec<&'static str> {
    mpq_net::simd::cpu_flags().into_iter().filter(|(_, on)| *on).map(|(n, _)| n).collect()
}

/// What runs `backend` here, for the manifest: the CPU model, or the wgpu adapter's name as
/// the runtime reports it (initializing the default device if needed).
pub fn adapter(backend: Backend, cpu: &str) -> String {
    match backend {
        Backend::Flex | Backend::Ndarray => format!("CPU: {cpu}"),
        Backend::Wgpu => wgpu_adapter(),
    }
}

#[cfg(feature = "wgpu")]
fn wgpu_adapter() -> String {
    use cubecl_runtime::device::{WgpuBackend, WgpuDevice, WgpuDeviceKind};
    use cubecl_runtime::runtime::Runtime;
    // The device `Device::wgpu(DeviceKind::DefaultDevice)` maps to.
    let dev = WgpuDevice::new(WgpuDeviceKind::DefaultDevice).on(WgpuBackend::Auto);
    let name = || <burn::backend::wgpu::WgpuRuntime as Runtime>::client(&dev).properties().identity.name.clone();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(name)) {
        Ok(name) => format!("wgpu: {name}"),
        Err(_) => "wgpu: no adapter could be initialized".to_string(),
    }
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_adapter() -> String {
    "wgpu: not built into this binary".to_string()
}

/// The working copy's `git rev-parse HEAD` (abbreviated with `short`), if git can tell.
pub fn git_commit(short: bool) -> Option<String> {
    let args: &[&str] = if short { &["rev-parse", "--short", "HEAD"] } else { &["rev-parse", "HEAD"] };
    let out = std::process::Command::new("git").args(args).output().ok().filter(|o| o.status.success())?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
