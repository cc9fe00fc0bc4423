//! The WebGPU device: adapter, limits, optional features, and errors that carry their
//! numbers. Natively this is Vulkan (lavapipe in CI); in the browser, WebGPU.

use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum GpuError {
    #[error("no WebGPU/Vulkan adapter found ({0}); natively install a Vulkan driver (e.g. Mesa lavapipe: apt-get install mesa-vulkan-drivers)")]
    NoAdapter(String),
    #[error("the GPU lacks a needed limit: {name} must be at least {need}, the adapter offers {have}")]
    MissingLimit { name: &'static str, need: u64, have: u64 },
    #[error("tensor `{tensor}` needs {bytes} bytes in one buffer, over the device limit of {limit} bytes")]
    TooLarge { tensor: String, bytes: u64, limit: u64 },
    #[error("out of GPU memory allocating {what} ({bytes} bytes)")]
    OutOfMemory { what: String, bytes: u64 },
    #[error("GPU device lost: {reason}")]
    DeviceLost { reason: String },
    #[error("requesting the GPU device failed: {0}")]
    Device(String),
    #[error("GPU validation error in {what}: {message}")]
    Validation { what: String, message: String },
    #[error("{kernel}: bad shapes: {message}")]
    Shape { kernel: &'static str, message: String },
    #[error("mapping a GPU buffer for readback failed: {0}")]
    Map(String),
    #[error("waiting for the GPU timed out after {0} s: the device stopped answering (a hung or reset driver); run with --backend cpu, or restart the GPU driver")]
    Timeout(u64),
    #[error("{0}")]
    Load(String),
    /// The input was refused by the checks both passes share (`model::input`).
    #[error(transparent)]
    Input(#[from] crate::model::ModelError),
    /// An error raised outside any error scope, recorded by the device's handler.
    #[error("{0} (raised by the GPU outside an error scope)")]
    Uncaptured(String),
}

/// What the engine asks of the adapter beyond WebGPU's defaults.
#[derive(Debug, Clone, Default)]
pub struct Requirements {
    /// Largest single weight part the caller will bind (checked against
    /// maxStorageBufferBindingSize); 0 = no requirement.
    pub min_binding_bytes: u64,
}

pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub limits: wgpu::Limits,
    pub adapter_name: String,
    /// `shader-f16` was granted: KV caches hold f16 rows (the matvec shaders do not
    /// use f16 arithmetic).
    pub has_f16: bool,
    /// The adapter is a GPU emulated on the CPU (SwiftShader, lavapipe): its memory is
    /// host memory, so a model must fit what the host has left.
    pub cpu_adapter: bool,
    /// A CPU adapter (SwiftShader, lavapipe): decode matvecs take one thread per row
    /// and no barrier (see matvec.wgsl's *_rows). `PRECIS_GPU_MATVEC=lanes|rows`
    /// overrides the choice (tests run both).
    pub row_per_thread: bool,
    /// Subgroup operations (wgpu's `Features::SUBGROUP`) were granted. wgpu 30 keeps
    /// the feature native-only, so in the browser this is false for now.
    pub has_subgroups: bool,
    /// The adapter's subgroup sizes (smallest, largest), as it reports them.
    pub subgroup_sizes: (u32, u32),
    /// The decode matvec sums rows with subgroupAdd: subgroups were granted and
    /// `PRECIS_GPU_SUBGROUPS=0` was not set (that forces the workgroup-memory sums).
    pub subgroup_matvec: bool,
    /// How much prefill work one submission may hold (src/gpu/submit.rs).
    pub submits: super::submit::SubmitBudget,
    lost: Arc<Mutex<Option<String>>>,
    uncaptured: Arc<Mutex<Option<String>>>,
}

/// Seconds a native wait may take before it is reported as a timeout rather than
/// hanging. Prefill is cut into submissions of bounded work (src/gpu/submit.rs) and
/// every wait covers at most two of them, so only a hung device reaches this.
pub const WAIT_TIMEOUT_S: u64 = 120;

impl GpuContext {
    /// Requests the best adapter and a device with the adapter's own maximum limits,
    /// so large models can bind as much as the hardware allows.
    pub async fn new(req: &Requirements) -> Result<Self, GpuError> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: false,
                compatible_surface: None,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        let info = adapter.get_info();
        let have = adapter.limits();
        check_limit("maxStorageBufferBindingSize", req.min_binding_bytes, have.max_storage_buffer_binding_size as u64)?;
        check_limit("maxBufferSize", req.min_binding_bytes, have.max_buffer_size)?;
        check_limit("maxStorageBuffersPerShaderStage", 7, have.max_storage_buffers_per_shader_stage as u64)?;
        check_limit("maxComputeWorkgroupSizeX", 256, have.max_compute_workgroup_size_x as u64)?;
        check_limit("maxComputeInvocationsPerWorkgroup", 256, have.max_compute_invocations_per_workgroup as u64)?;
        let mut wanted = wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP;
        if std::env::var_os("PRECIS_GPU_PROFILE").is_some() {
            wanted |= wgpu::Features::TIMESTAMP_QUERY;
        }
        let features = adapter.features() & wanted;
        let mut desc = wgpu::DeviceDescriptor {
            label: Some("precis"),
            required_features: features,
            required_limits: have.clone(),
            ..Default::default()
        };
        let (device, queue) = match adapter.request_device(&desc).await {
            Ok(dq) => dq,
            // Some drivers advertise optional features they then refuse: retry plain.
            Err(_) => {
                desc.required_features = wgpu::Features::empty();
                adapter.request_device(&desc).await.map_err(|e| GpuError::Device(e.to_string()))?
            }
        };
        let lost = Arc::new(Mutex::new(None));
        let l2 = lost.clone();
        device.set_device_lost_callback(move |reason, msg| {
            *l2.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("{reason:?}: {msg}"));
        });
        // An error outside an error scope (a validation error in a dispatch, an
        // allocation failing mid-run) must not panic (wgpu's default natively; in the
        // browser a panic kills the wasm instance): it is recorded and the next wait
        // or readback reports it, so the caller can fall back to the CPU.
        let uncaptured = Arc::new(Mutex::new(None));
        let l3 = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut slot = l3.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_none() {
                let kind = match e {
                    wgpu::Error::OutOfMemory { .. } => "out of GPU memory",
                    wgpu::Error::Validation { .. } => "GPU validation error",
                    _ => "GPU error",
                };
                *slot = Some(format!("{kind}: {e}"));
            }
        }));
        let granted = device.features();
        let has_subgroups = granted.contains(wgpu::Features::SUBGROUP);
        // In the browser wgpu reports only isFallbackAdapter as a device type, so the
        // software adapters are also known by name.
        let cpu_adapter = info.device_type == wgpu::DeviceType::Cpu || ["swiftshader", "llvmpipe"].iter().any(|n| info.name.to_lowercase().contains(n));
        let row_per_thread = match std::env::var("PRECIS_GPU_MATVEC").as_deref() {
            Ok("rows") => true,
            Ok("lanes") => false,
            _ => cpu_adapter,
        };
        Ok(GpuContext {
            limits: device.limits(),
            has_f16: granted.contains(wgpu::Features::SHADER_F16),
            has_subgroups,
            subgroup_sizes: (info.subgroup_min_size, info.subgroup_max_size),
            subgroup_matvec: has_subgroups && std::env::var("PRECIS_GPU_SUBGROUPS").map_or(true, |v| v != "0"),
            row_per_thread,
            submits: super::submit::SubmitBudget::new(cpu_adapter),
            cpu_adapter,
            adapter_name: format!("{} ({:?})", info.name, info.backend),
            device,
            queue,
            lost,
            uncaptured,
        })
    }

    /// The device's lost reason or first uncaptured error, as an error.
    pub fn check_lost(&self) -> Result<(), GpuError> {
        if let Some(reason) = self.lost.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Err(GpuError::DeviceLost { reason });
        }
        match self.uncaptured.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            Some(e) => Err(GpuError::Uncaptured(e)),
            None => Ok(()),
        }
    }

    /// Creates a buffer inside an out-of-memory + validation error scope, so a failed
    /// allocation is an error naming what and how much, not a later panic.
    pub async fn buffer(&self, what: &str, bytes: u64, usage: wgpu::BufferUsages) -> Result<wgpu::Buffer, GpuError> {
        if bytes > self.limits.max_buffer_size {
            return Err(GpuError::TooLarge { tensor: what.into(), bytes, limit: self.limits.max_buffer_size });
        }
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let val = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let size = bytes.max(4).next_multiple_of(4);
        let b = self.device.create_buffer(&wgpu::BufferDescriptor { label: Some(what), size, usage, mapped_at_creation: false });
        let v = val.pop().await;
        let o = oom.pop().await;
        if o.is_some() {
            return Err(GpuError::OutOfMemory { what: what.into(), bytes });
        }
        if let Some(e) = v {
            return Err(GpuError::Validation { what: what.into(), message: e.to_string() });
        }
        Ok(b)
    }

    /// Waits for all submitted work natively (bounded); a no-op in the browser, where
    /// mapping callbacks fire from the event loop.
    pub fn wait(&self) -> Result<(), GpuError> {
        self.wait_for(None)?;
        self.submits.all_done();
        Ok(())
    }

    /// Waits natively for submission `index` (and those before it), or for all.
    pub(crate) fn wait_for(&self, index: Option<wgpu::SubmissionIndex>) -> Result<(), GpuError> {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let r = self.device.poll(wgpu::PollType::Wait { submission_index: index, timeout: Some(std::time::Duration::from_secs(WAIT_TIMEOUT_S)) });
            if let Err(e) = r {
                self.check_lost()?;
                return Err(match e {
                    wgpu::PollError::Timeout => GpuError::Timeout(WAIT_TIMEOUT_S),
                    other => GpuError::DeviceLost { reason: other.to_string() },
                });
            }
        }
        #[cfg(target_arch = "wasm32")]
        drop(index);
        self.check_lost()
    }

    /// Resolves once the GPU has finished everything submitted so far: a prefill's
    /// progress is reported when its chunk is done, not when it was queued.
    pub async fn settled(&self) -> Result<(), GpuError> {
        let (tx, rx) = oneshot();
        self.queue.on_submitted_work_done(move || tx.send(Ok(())));
        self.wait()?;
        rx.await.map_err(|e| self.check_lost().err().unwrap_or(GpuError::Map(e)))
    }

    /// Copies `bytes` bytes of `src` from `offset` back to the host.
    pub async fn read_back(&self, src: &wgpu::Buffer, offset: u64, bytes: u64) -> Result<Vec<u8>, GpuError> {
        let staging = self.buffer("readback", bytes, wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST).await?;
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(src, offset, &staging, 0, bytes.next_multiple_of(4));
        self.queue.submit([enc.finish()]);
        self.map_read(&staging, bytes).await
    }

    /// Maps a MAP_READ buffer (its work already submitted) and copies it out.
    pub async fn map_read(&self, staging: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>, GpuError> {
        let slice = staging.slice(..bytes.next_multiple_of(4));
        let (tx, rx) = oneshot();
        slice.map_async(wgpu::MapMode::Read, move |r| tx.send(r.map_err(|e| e.to_string())));
        self.wait()?;
        // A lost device fails the mapping too: report the loss, not the symptom.
        rx.await.map_err(|e| self.check_lost().err().unwrap_or(GpuError::Map(e)))?;
        let out = slice.get_mapped_range().map_err(|e| GpuError::Map(e.to_string()))?[..bytes as usize].to_vec();
        staging.unmap();
        Ok(out)
    }
}

fn check_limit(name: &'static str, need: u64, have: u64) -> Result<(), GpuError> {
    if need > have {
        return Err(GpuError::MissingLimit { name, need, have });
    }
    Ok(())
}

/// A single-value channel whose receiver is a future, so mapping can be awaited in the
/// browser and blocked on natively with the same code.
fn oneshot() -> (Sender, Receiver) {
    let s = Arc::new(Mutex::new(Slot { value: None, waker: None }));
    (Sender(s.clone()), Receiver(s))
}

struct Slot {
    value: Option<Result<(), String>>,
    waker: Option<std::task::Waker>,
}
struct Sender(Arc<Mutex<Slot>>);
struct Receiver(Arc<Mutex<Slot>>);

impl Sender {
    fn send(self, v: Result<(), String>) {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        s.value = Some(v);
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    }
}

impl std::future::Future for Receiver {
    type Output = Result<(), String>;
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match s.value.take() {
            Some(v) => std::task::Poll::Ready(v),
            None => {
                s.waker = Some(cx.waker().clone());
                std::task::Poll::Pending
            }
        }
    }
}

/// Bounded submissions (the budget and its bookkeeping live in submit.rs, which
/// knows nothing of the device).
impl GpuContext {
    /// Submits `cb` (holding `units` units of work). Natively it then waits for the
    /// submission before it, so at most two are queued and each wait is bounded by one
    /// submission's work, never by a whole prefill; the wait's time adapts the budget.
    pub fn submit_bounded(&self, cb: wgpu::CommandBuffer, units: u64) -> Result<(), GpuError> {
        let index = self.queue.submit([cb]);
        {
            let mut st = self.submits.stats.lock().unwrap_or_else(|e| e.into_inner());
            st.submits += 1;
            st.units += units;
            st.max_units = st.max_units.max(units);
        }
        let now = crate::platform::clock::now();
        let prev = self.submits.pending.lock().unwrap_or_else(|e| e.into_inner()).replace(super::submit::Pending { index, units, at: now });
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(p) = prev {
            self.wait_for(Some(p.index))?;
            let done = crate::platform::clock::now();
            let mut last = self.submits.last_done.lock().unwrap_or_else(|e| e.into_inner());
            self.submits.observe(p.units, p.at.max(*last), done);
            *last = done;
        }
        #[cfg(target_arch = "wasm32")]
        drop(prev);
        Ok(())
    }
}
