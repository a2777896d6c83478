//! The process's allocator settings for training.
//!
//! glibc's `malloc` serves every request above its mmap threshold (at most 32 MiB) with a fresh
//! `mmap` and gives the pages back on `free`. A training step at 512 tokens allocates and frees
//! the same few GiB every step (the attention probabilities kept for the backward pass, ~200 MiB
//! a layer at 16 x 512, the linear outputs and the gradients), so the kernel faults in and zeroes
//! every one of those pages again each step (`perf` found it in `clear_page_erms`; the profile's
//! figures are in `BENCHMARKS-MODEL.md`, "Kernel timings formerly in code comments").
//! [`keep_freed_memory`] tells glibc to serve them from the heap and not to trim it, so a step
//! reuses the pages of the one before (`BENCHMARKS-MODEL.md`, the allocator section).

/// Serves large allocations from the heap and keeps freed memory for reuse, for the rest of the
/// process: glibc's `M_MMAP_MAX = 0` and `M_TRIM_THRESHOLD = -1` (no trimming). The
/// resident size then stays at its peak instead of dropping between steps, which is what a
/// training process wants and why only the training entry points call this. Call it at start,
/// before the large allocations. Returns whether the settings were applied: `false` outside
/// glibc (musl, macOS), whose allocators are left as they are.
pub fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets allocator parameters; both values are documented in
        // mallopt(3) (-1 is the largest trim threshold, which turns trimming off).
        unsafe {
            libc::mallopt(libc::M_MMAP_MAX, 0) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, -1) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
