//! Matrix products straight through the `gemm` crate, on strided views, without copies.

/// A matrix view: base pointer, row stride and column stride, in elements.
#[derive(Clone, Copy)]
pub(crate) struct View {
    ptr: *const f32,
    rs: isize,
    cs: isize,
}

impl View {
    /// Rows of `data`, `rs` elements apart.
    pub(crate) fn rows(data: &[f32], rs: usize) -> Self {
        Self {
            ptr: data.as_ptr(),
            rs: rs as isize,
            cs: 1,
        }
    }

    /// The transpose.
    pub(crate) fn t(self) -> Self {
        Self {
            ptr: self.ptr,
            rs: self.cs,
            cs: self.rs,
        }
    }

    /// The same view from element `offset` on.
    pub(super) fn at(self, offset: usize) -> Self {
        Self {
            // SAFETY (of later reads): callers keep offsets within the viewed slice.
            ptr: self.ptr.wrapping_add(offset),
            ..self
        }
    }
}

/// A raw output pointer that may be shared by tasks writing disjoint parts.
#[derive(Clone, Copy)]
pub(super) struct Out(pub(super) *mut f32);

impl Out {
    /// The pointer (a method, so that closures capture the whole `Out`, not its field).
    pub(super) fn ptr(self) -> *mut f32 {
        self.0
    }
}

// SAFETY: every task that receives an `Out` writes a region no other task touches, and the
// buffer it points into outlives the parallel loop that shares it.
unsafe impl Send for Out {}
// SAFETY: as for `Send`: tasks sharing an `&Out` write disjoint regions.
unsafe impl Sync for Out {}
// SAFETY: views are only read, and the data they point to outlives the parallel region.
unsafe impl Send for View {}
// SAFETY: as for `Send`: a shared view is only read.
unsafe impl Sync for View {}

/// `dst (m×n, row stride dst_rs) = a (m×k) · b (k×n)`, or `+=` with `accumulate`.
///
/// # Safety
/// The views and `dst` must cover the addressed elements, and `dst` must not overlap them.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: usize,
    a: View,
    b: View,
    accumulate: bool,
    parallel: bool,
) {
    let par = if parallel && rayon::current_num_threads() > 1 {
        gemm::Parallelism::Rayon(rayon::current_num_threads())
    } else {
        gemm::Parallelism::None
    };
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        dst_rs as isize,
        accumulate,
        a.ptr,
        a.cs,
        a.rs,
        b.ptr,
        b.cs,
        b.rs,
        if accumulate { 1.0 } else { 0.0 },
        1.0,
        false,
        false,
        false,
        par,
    );
}
