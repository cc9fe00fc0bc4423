//! How much memory a model may still take, asked before its tensors are read, so a
//! header that claims a huge tensor fails with its name instead of an allocation abort.

/// Bytes this process can still allocate, where the platform says: natively on Linux
/// the kernel's `MemAvailable` estimate (swap not counted); in the browser the 4 GiB a
/// wasm32 memory can hold at most (its current size would count pages a failed load
/// freed). `None` where nobody knows, or with `PRECIS_MEMORY_CHECK=0` (then nothing is
/// refused: for a machine with swap the estimate leaves out).
pub fn available_bytes() -> Option<u64> {
    #[cfg(target_arch = "wasm32")]
    {
        Some(4u64 << 30)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        if std::env::var("PRECIS_MEMORY_CHECK").is_ok_and(|v| v == "0") {
            return None;
        }
        let info = std::fs::read_to_string("/proc/meminfo").ok()?;
        let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }
}
