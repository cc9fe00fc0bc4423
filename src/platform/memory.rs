//! How much memory a model may still take, asked before its tensors are read, so a
//! header that claims a huge tensor fails with its name instead of an allocation abort.

/// Bytes this process can still allocate, where the platform says: natively on Linux
/// the kernel's `MemAvailable` estimate; in the browser, what the 4 GiB wasm32 memory
/// can still grow by. `None` where nobody knows (then nothing is refused).
pub fn available_bytes() -> Option<u64> {
    #[cfg(target_arch = "wasm32")]
    {
        let pages = core::arch::wasm32::memory_size(0) as u64;
        Some((4u64 << 30).saturating_sub(pages * 65536))
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let info = std::fs::read_to_string("/proc/meminfo").ok()?;
        let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }
}
