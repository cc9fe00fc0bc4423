//! Grouping a MoE layer's (token, slot) entries by expert, so a prefill reads each
//! expert's weights once per batch of its tokens. The GPU's `moe.wgsl` `group` does it
//! on the device; this is its twin (and what the GPU tests compare with).

/// The (token, slot) entries `z = t·k + s` of a flat id list grouped by expert, `z`
/// ascending within each: expert e's are `entries[offsets[e]..offsets[e + 1]]` (the
/// twin of moe.wgsl `group`, which batches the GPU's prefill expert matmuls).
pub fn group_by_expert(ids: &[u32], n_expert: usize) -> (Vec<u32>, Vec<u32>) {
    let mut offsets = vec![0u32; n_expert + 1];
    for &e in ids {
        offsets[e as usize + 1] += 1;
    }
    for e in 0..n_expert {
        offsets[e + 1] += offsets[e];
    }
    let mut next = offsets.clone();
    let mut entries = vec![0u32; ids.len()];
    for (z, &e) in ids.iter().enumerate() {
        entries[next[e as usize] as usize] = z as u32;
        next[e as usize] += 1;
    }
    (offsets, entries)
}
