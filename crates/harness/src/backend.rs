//! The one place that maps a backend name to a burn device.

use crate::config::Backend;
use anyhow::Result;
use burn::prelude::Device;

/// The burn device for `backend`; wgpu needs the `wgpu` cargo feature.
#[allow(deprecated)] // Device::ndarray() is deprecated in favour of flex; users asked for both.
pub fn device(backend: Backend) -> Result<Device> {
    match backend {
        Backend::Flex => Ok(Device::flex()),
        Backend::Ndarray => Ok(Device::ndarray()),
        Backend::Wgpu => wgpu_device(),
    }
}

#[cfg(feature = "wgpu")]
fn wgpu_device() -> Result<Device> {
    Ok(Device::wgpu(burn::prelude::DeviceKind::DefaultDevice))
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_device() -> Result<Device> {
    anyhow::bail!(
        "backend `wgpu` is not built into this binary; rebuild with `cargo run --release -p harness --features wgpu -- ...` \
         (on a machine without a GPU, install Vulkan's software driver first: apt-get install -y mesa-vulkan-drivers libvulkan1)"
    )
}
