//! `keep_freed_memory`: a large buffer freed and allocated again reuses its pages instead of
//! faulting in fresh ones. Its own test binary without the harness, so that the allocations are
//! the main thread's (glibc's main arena) and no other test's faults are counted.

fn minor_faults() -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    unsafe {
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()), 0);
        usage.assume_init().ru_minflt
    }
}

/// Page faults of writing a fresh 48 MiB buffer (above glibc's largest mmap threshold), after
/// one such buffer was written and freed.
fn faults_of_second_buffer() -> i64 {
    const LEN: usize = 48 << 20;
    drop(std::hint::black_box(vec![1u8; LEN]));
    let before = minor_faults();
    let buf = std::hint::black_box(vec![2u8; LEN]);
    let faults = minor_faults() - before;
    drop(buf);
    faults
}

fn main() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        assert!(!model::keep_freed_memory());
        println!("alloc: not glibc, nothing to test");
        return;
    }
    let pages = (48 << 20) / 4096;
    let default = faults_of_second_buffer();
    assert!(
        default > pages / 2,
        "glibc's defaults should map the buffer afresh: {default} faults"
    );
    assert!(model::keep_freed_memory());
    faults_of_second_buffer(); // the heap grows to hold it once
    let kept = faults_of_second_buffer();
    assert!(
        kept < pages / 20,
        "the freed buffer's pages should be reused: {kept} faults against {default}"
    );
    println!("alloc: second 48 MiB buffer, {default} faults with glibc's defaults, {kept} kept");
}
