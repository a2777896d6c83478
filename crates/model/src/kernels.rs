//! Fused CPU kernels: candle custom ops with their backward written out.
//!
//! Built from candle's primitives, layer norm is nine ops, masked softmax six, bias + GELU
//! two forward and a dozen backward, and each op is a full pass over memory on one thread
//! whose result the autograd graph keeps. Here each is one pass forward and one backward,
//! split over rows on the rayon pool. Dropout draws its mask from a counter-based hash of
//! (seed, element index), so the mask is never stored: backward regenerates it.
//!
//! The element-wise loops (softmax, GELU, bias, dropout, layer norm) are compiled for
//! AVX-512, AVX2 and the baseline and picked at run time ([`crate::simd`]); the three give
//! the same bits. Matrix products go through [`crate::packed`] on AVX-512 CPUs where it is
//! the faster (attention, and linear layers of up to [`PACKED_MAX_ROWS`] rows) and through
//! the `gemm` crate otherwise.
//!
//! All kernels take f32 tensors (made contiguous first) and give the same numbers as the
//! primitive ops up to float rounding; `tests/parity.rs` checks them against transformers.

use candle_core::{
    bail, CpuStorage, CustomOp1, CustomOp2, CustomOp3, InplaceOp2, Layout, Result, Shape, Storage,
    Tensor,
};
use rayon::prelude::*;

use std::sync::Arc;

use crate::packed::{self, PackedMatrix};
use crate::simd::{self, multiversion};

/// Elements per rayon task, so that small tensors are not split into many tiny tasks.
const GRAIN: usize = 1 << 14;

fn slice<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        bail!("fused kernels take f32 tensors only");
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => bail!("fused kernels take contiguous tensors"),
    }
}

/// Runs `f` on the contiguous f32 data of `t`.
fn with_data<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = t.contiguous()?;
    let (s, l) = t.storage_and_layout();
    match &*s {
        Storage::Cpu(c) => f(slice(c, l)?),
        _ => bail!("fused kernels run on the CPU only"),
    }
}

fn tensor(data: Vec<f32>, shape: &Shape) -> Result<Tensor> {
    Tensor::from_vec(data, shape.clone(), &candle_core::Device::Cpu)
}

/// Rows per rayon task for rows of `width` elements.
fn rows_per_task(width: usize) -> usize {
    (GRAIN / width.max(1)).max(1)
}

// ---------------------------------------------------------------------------------------
// Layer norm over the last dimension.

struct LayerNormOp {
    eps: f32,
}

/// Mean and 1/sqrt(var + eps) of one row (two passes, as the primitive version).
#[inline(always)]
fn moments(row: &[f32], eps: f32, scratch: &mut [f32]) -> (f32, f32) {
    let n = row.len() as f32;
    let mean = simd::sum(row) / n;
    for (s, &x) in scratch.iter_mut().zip(row) {
        *s = (x - mean) * (x - mean);
    }
    let var = simd::sum(scratch) / n;
    (mean, 1.0 / (var + eps).sqrt())
}

multiversion! {
    /// Layer norm of each row of `x` (rows of `w.len()`) into `y`.
    fn layer_norm_rows(y: &mut [f32], x: &[f32], w: &[f32], b: &[f32], eps: f32) {
        let h = w.len();
        let mut scratch = vec![0f32; h];
        for (yr, xr) in y.chunks_exact_mut(h).zip(x.chunks_exact(h)) {
            let (mean, rstd) = moments(xr, eps, &mut scratch);
            for (((o, &xv), &wv), &bv) in yr.iter_mut().zip(xr).zip(w).zip(b) {
                *o = (xv - mean) * rstd * wv + bv;
            }
        }
    }
}

multiversion! {
    /// Layer norm backward over rows of `w.len()`: writes `dx` and adds to `dw`, `db`.
    fn layer_norm_grad_rows(
        dx: &mut [f32],
        x: &[f32],
        dy: &[f32],
        w: &[f32],
        eps: f32,
        dw: &mut [f32],
        db: &mut [f32],
    ) {
        let h = w.len();
        let mut xhat = vec![0f32; h];
        let mut g = vec![0f32; h];
        for ((dxr, xr), dyr) in dx
            .chunks_exact_mut(h)
            .zip(x.chunks_exact(h))
            .zip(dy.chunks_exact(h))
        {
            let (mean, rstd) = moments(xr, eps, &mut xhat);
            for i in 0..h {
                xhat[i] = (xr[i] - mean) * rstd;
                g[i] = dyr[i] * w[i];
                dw[i] += dyr[i] * xhat[i];
                db[i] += dyr[i];
            }
            let m1 = simd::sum(&g) / h as f32;
            let m2 = simd::dot(&g, &xhat) / h as f32;
            for i in 0..h {
                dxr[i] = rstd * (g[i] - m1 - xhat[i] * m2);
            }
        }
    }
}

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        "fused-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, b) = (slice(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?);
        let h = w.len();
        let mut y = vec![0f32; x.len()];
        let k = rows_per_task(h) * h;
        y.par_chunks_mut(k)
            .zip(x.par_chunks(k))
            .for_each(|(yc, xc)| layer_norm_rows(yc, xc, w, b, self.eps));
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, db) = with_data(x, |x| {
            with_data(w, |w| {
                with_data(dy, |dy| {
                    let h = w.len();
                    let mut dx = vec![0f32; x.len()];
                    let k = rows_per_task(h) * h;
                    let (dw, db) = dx
                        .par_chunks_mut(k)
                        .zip(x.par_chunks(k))
                        .zip(dy.par_chunks(k))
                        .map(|((dxc, xc), dyc)| {
                            let mut dw = vec![0f32; h];
                            let mut db = vec![0f32; h];
                            layer_norm_grad_rows(dxc, xc, dyc, w, self.eps, &mut dw, &mut db);
                            (dw, db)
                        })
                        .reduce(|| (vec![0f32; h], vec![0f32; h]), add_pairs);
                    Ok((dx, dw, db))
                })
            })
        })?;
        Ok((
            Some(tensor(dx, x.shape())?),
            Some(tensor(dw, w.shape())?),
            Some(tensor(db, w.shape())?),
        ))
    }
}

fn add_pairs(mut a: (Vec<f32>, Vec<f32>), b: (Vec<f32>, Vec<f32>)) -> (Vec<f32>, Vec<f32>) {
    add_into(&mut a.0, &b.0);
    add_into(&mut a.1, &b.1);
    a
}

fn add_into(acc: &mut [f32], x: &[f32]) {
    for (a, v) in acc.iter_mut().zip(x) {
        *a += v;
    }
}

/// Layer norm of `x` over its last dimension with weight `w` and bias `b`, differentiable in
/// all three.
pub fn layer_norm(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> Result<Tensor> {
    x.contiguous()?
        .apply_op3(w, b, LayerNormOp { eps: eps as f32 })
}

// ---------------------------------------------------------------------------------------
// Dropout with a mask drawn from a counter-based hash.

/// Uniform in [0, 1) from (seed, index): SplitMix64's finaliser over a counter, 24 bits.
#[inline(always)]
fn uniform(seed: u64, i: u64) -> f32 {
    let mut z = seed.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
}

struct DropoutOp {
    p: f32,
    seed: u64,
}

multiversion! {
    /// Inverted dropout in place on `xs`, whose first element has index `base` in the
    /// tensor: element `base + j` is kept (and scaled by `1/(1-p)`) when its hash is `>= p`.
    fn drop_in_place(xs: &mut [f32], p: f32, seed: u64, base: u64) {
        let keep = 1.0 / (1.0 - p);
        for (j, v) in xs.iter_mut().enumerate() {
            *v = if uniform(seed, base + j as u64) >= p {
                *v * keep
            } else {
                0.0
            };
        }
    }
}

impl DropoutOp {
    fn apply(&self, x: &[f32]) -> Vec<f32> {
        let mut y = x.to_vec();
        y.par_chunks_mut(GRAIN)
            .enumerate()
            .for_each(|(c, yc)| drop_in_place(yc, self.p, self.seed, (c * GRAIN) as u64));
        y
    }
}

impl CustomOp1 for DropoutOp {
    fn name(&self) -> &'static str {
        "fused-dropout"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        Ok((CpuStorage::F32(self.apply(slice(s, l)?)), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        let dx = with_data(dy, |dy| Ok(self.apply(dy)))?;
        Ok(Some(tensor(dx, x.shape())?))
    }
}

/// Inverted dropout: zeroes each element with probability `p` and scales the rest by
/// `1/(1-p)`; the mask is a function of `seed` and the element's index only.
pub fn dropout(x: &Tensor, p: f32, seed: u64) -> Result<Tensor> {
    x.contiguous()?.apply_op1(DropoutOp { p, seed })
}

// ---------------------------------------------------------------------------------------
// Fast math: exp and exact-GELU (erf) that vectorise, well within the parity tolerances.

/// `e^x` to about 2 ulp: Cody-Waite range reduction and a degree-6 polynomial, branch-free
/// so that loops over it vectorise. Inputs below -87 give exactly 0 (the true value is near
/// or below the smallest normal float): a subnormal result would reach the matrix products,
/// where each subnormal operand costs an Intel core a microcode assist (what that cost a
/// training step: `BENCHMARKS-MODEL.md`, "Kernel timings formerly in code comments").
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // 1.5 * 2^23: adding and subtracting it rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // n as an integer, read from the low bits of `shifted` (whose exponent is ROUND's)
    // rather than by a float-to-int cast, which does not vectorise.
    let n_int = shifted.to_bits() as i32 - ROUND.to_bits() as i32;
    let e = f32::from_bits(((n_int + 127) << 23) as u32) * p;
    // (NaN goes through as NaN.)
    if x <= -87.0 {
        0.0
    } else {
        e
    }
}

/// `x`, or 0 where it is subnormal (see [`exp`] for why).
#[inline(always)]
fn flush(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE {
        0.0
    } else {
        x
    }
}

/// Exact GELU `z·Φ(z)` and its derivative `Φ(z) + z·φ(z)`, with erf from Abramowitz and
/// Stegun 7.1.26 (absolute error under 1.5e-7) sharing one exponential with φ.
#[inline(always)]
fn gelu_and_grad(z: f32) -> (f32, f32) {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_7,
        -1.453_152_1,
        1.061_405_4,
    ];
    const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;
    let u = z * std::f32::consts::FRAC_1_SQRT_2;
    let e = exp(-u * u);
    let t = 1.0 / (1.0 + P * u.abs());
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    let erf_abs = 1.0 - poly * e;
    let erf = if u < 0.0 { -erf_abs } else { erf_abs };
    let cdf = 0.5 * (1.0 + erf);
    (z * cdf, cdf + z * FRAC_1_SQRT_2PI * e)
}

multiversion! {
    /// GELU of every element in place.
    fn gelu_in_place(xs: &mut [f32]) {
        for v in xs.iter_mut() {
            *v = gelu_and_grad(*v).0;
        }
    }
}

multiversion! {
    /// `d *= GELU'(z)` element-wise, `z` the pre-activations.
    fn gelu_grad_in_place(ds: &mut [f32], zs: &[f32]) {
        for (d, &z) in ds.iter_mut().zip(zs) {
            *d *= gelu_and_grad(z).1;
        }
    }
}

multiversion! {
    /// Adds `bias` to every row of `rows` (rows of `bias.len()` elements).
    fn add_bias(rows: &mut [f32], bias: &[f32]) {
        for r in rows.chunks_exact_mut(bias.len()) {
            for (o, &b) in r.iter_mut().zip(bias) {
                *o += b;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Matrix products straight through gemm, on strided views, without copies.

/// A matrix view: base pointer, row stride and column stride, in elements.
#[derive(Clone, Copy)]
struct View {
    ptr: *const f32,
    rs: isize,
    cs: isize,
}

impl View {
    fn rows(data: &[f32], rs: usize) -> Self {
        Self {
            ptr: data.as_ptr(),
            rs: rs as isize,
            cs: 1,
        }
    }

    fn t(self) -> Self {
        Self {
            ptr: self.ptr,
            rs: self.cs,
            cs: self.rs,
        }
    }

    fn at(self, offset: usize) -> Self {
        Self {
            // SAFETY (of later reads): callers keep offsets within the viewed slice.
            ptr: self.ptr.wrapping_add(offset),
            ..self
        }
    }
}

/// A raw output pointer that may be shared by tasks writing disjoint parts.
#[derive(Clone, Copy)]
struct Out(*mut f32);

impl Out {
    /// The pointer (a method, so that closures capture the whole `Out`, not its field).
    fn ptr(self) -> *mut f32 {
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
unsafe fn matmul(
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

// ---------------------------------------------------------------------------------------
// Linear layer: y = dropout(act(x Wᵀ + b)).

/// What follows the affine map in [`linear`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Nothing.
    Identity,
    /// Exact (erf) GELU, as Hugging Face's `gelu`.
    Gelu,
}

/// Rows up to which a linear layer multiplies through [`packed::matmul`] on AVX-512 CPUs; the
/// `gemm` crate takes larger products, where its packing of both operands pays for itself.
/// Chosen from `cargo run --release -p model --example matmul` on MiniLM's shapes; the
/// figures are in `BENCHMARKS-MODEL.md`, "Kernel timings formerly in code comments".
pub const PACKED_MAX_ROWS: usize = 512;

struct LinearOp {
    act: Activation,
    /// Dropout probability and seed applied to the output; `p == 0` for none.
    dropout: (f32, u64),
    /// Keep what backward needs (the pre-activation for GELU).
    train: bool,
    /// The weight packed for [`packed::matmul`], when the model was prepared for inference.
    packed: Option<Arc<PackedMatrix>>,
    pre: std::sync::Mutex<Vec<f32>>,
}

impl LinearOp {
    fn dims(x: &Layout, w: &Layout) -> Result<(usize, usize, usize)> {
        let (wd, xd) = (w.dims(), x.dims());
        let inp = *xd.last().unwrap_or(&0);
        if wd.len() != 2 || wd[1] != inp {
            bail!("linear: input {xd:?} does not fit weight {wd:?}");
        }
        Ok((x.shape().elem_count() / inp.max(1), inp, wd[0]))
    }
}

impl CustomOp3 for LinearOp {
    fn name(&self) -> &'static str {
        "fused-linear"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (rows, inp, out) = Self::dims(l1, l2)?;
        let (x, w, b) = (slice(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?);
        let y = if packed::available() && rows <= PACKED_MAX_ROWS {
            let fresh;
            let pw = match &self.packed {
                Some(pw) if pw.k() == inp && pw.n() == out => pw.as_ref(),
                _ => {
                    fresh = PackedMatrix::from_weight(w, out, inp);
                    &fresh
                }
            };
            let mut y = Vec::with_capacity(rows * out);
            // SAFETY: available(); x is rows×inp and y has room for rows×out, distinct. The
            // product writes every element of y without reading it, so y is initialised.
            unsafe {
                packed::matmul(rows, x.as_ptr(), inp, pw, y.as_mut_ptr(), out, false, true);
                y.set_len(rows * out);
            }
            y
        } else {
            let mut y = vec![0f32; rows * out];
            // SAFETY: x is rows×inp, w is out×inp, y is rows×out, all contiguous and distinct.
            unsafe {
                matmul(
                    rows,
                    out,
                    inp,
                    y.as_mut_ptr(),
                    out,
                    View::rows(x, inp),
                    View::rows(w, inp).t(),
                    false,
                    true,
                );
            }
            y
        };
        let mut y = y;
        let keep_pre = self.train && self.act == Activation::Gelu;
        let mut pre = if keep_pre {
            vec![0f32; y.len()]
        } else {
            Vec::new()
        };
        let (p, seed) = self.dropout;
        let k = rows_per_task(out) * out;
        let gelu = self.act == Activation::Gelu;
        let epilogue = |c: usize, yc: &mut [f32], pc: Option<&mut [f32]>| {
            add_bias(yc, b);
            if let Some(pc) = pc {
                pc.copy_from_slice(yc);
            }
            if gelu {
                gelu_in_place(yc);
            }
            if p > 0.0 {
                drop_in_place(yc, p, seed, (c * k) as u64);
            }
        };
        if keep_pre {
            y.par_chunks_mut(k)
                .zip(pre.par_chunks_mut(k))
                .enumerate()
                .for_each(|(c, (yc, pc))| epilogue(c, yc, Some(pc)));
        } else {
            y.par_chunks_mut(k)
                .enumerate()
                .for_each(|(c, yc)| epilogue(c, yc, None));
        }
        if keep_pre {
            *self.pre.lock().expect("linear stash") = pre;
        }
        let mut dims = l1.dims().to_vec();
        *dims.last_mut().expect("non-scalar") = out;
        Ok((CpuStorage::F32(y), Shape::from(dims)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (out, inp) = w.dims2()?;
        let rows = x.elem_count() / inp;
        let pre = std::mem::take(&mut *self.pre.lock().expect("linear stash"));
        if self.act == Activation::Gelu && pre.len() != rows * out {
            bail!("linear: backward without a train-mode forward");
        }
        let (p, seed) = self.dropout;
        let k = rows_per_task(out) * out;
        // dz = dact(dropout'(dy)), and db = column sums of dz.
        let mut dz = with_data(dy, |g| Ok(g.to_vec()))?;
        let db = dz
            .par_chunks_mut(k)
            .enumerate()
            .map(|(c, dc)| {
                if p > 0.0 {
                    drop_in_place(dc, p, seed, (c * k) as u64);
                }
                if self.act == Activation::Gelu {
                    gelu_grad_in_place(dc, &pre[c * k..c * k + dc.len()]);
                }
                let mut db = vec![0f32; out];
                for r in dc.chunks_exact(out) {
                    add_into(&mut db, r);
                }
                db
            })
            .reduce(
                || vec![0f32; out],
                |mut a, b| {
                    add_into(&mut a, &b);
                    a
                },
            );
        drop(pre);
        let (dx, dw) = with_data(x, |xs| {
            with_data(w, |ws| {
                let mut dx = vec![0f32; rows * inp];
                let mut dw = vec![0f32; out * inp];
                // SAFETY: shapes as in the forward pass; outputs are fresh buffers.
                unsafe {
                    // dx = dz · W
                    matmul(
                        rows,
                        inp,
                        out,
                        dx.as_mut_ptr(),
                        inp,
                        View::rows(&dz, out),
                        View::rows(ws, inp),
                        false,
                        true,
                    );
                    // dW = dzᵀ · x
                    matmul(
                        out,
                        inp,
                        rows,
                        dw.as_mut_ptr(),
                        inp,
                        View::rows(&dz, out).t(),
                        View::rows(xs, inp),
                        false,
                        true,
                    );
                }
                Ok((dx, dw))
            })
        })?;
        Ok((
            Some(tensor(dx, x.shape())?),
            Some(tensor(dw, w.shape())?),
            Some(tensor(db, b.shape())?),
        ))
    }
}

/// `dropout(act(x Wᵀ + b))` for `x` `(.., in)`, a Hugging Face `(out, in)` weight and bias
/// `(out)`, in one op with its backward; `dropout` is `(p, seed)` (p = 0: none). `train`
/// keeps what backward needs. `packed` is `w` already packed by
/// [`PackedMatrix::from_weight`] (used where the CPU has AVX-512; otherwise `w` is packed
/// per call there, or multiplied by the `gemm` crate elsewhere); it must hold `w`'s values.
pub fn linear(
    x: &Tensor,
    w: &Tensor,
    packed: Option<&Arc<PackedMatrix>>,
    b: &Tensor,
    act: Activation,
    dropout: (f32, u64),
    train: bool,
) -> Result<Tensor> {
    x.contiguous()?.apply_op3(
        &w.contiguous()?,
        &b.contiguous()?,
        LinearOp {
            act,
            dropout,
            train,
            packed: packed.cloned(),
            pre: std::sync::Mutex::new(Vec::new()),
        },
    )
}

// ---------------------------------------------------------------------------------------
// Self-attention over a packed QKV projection.

struct AttentionOp {
    heads: usize,
    scale: f32,
    /// Dropout on the attention probabilities: (p, seed).
    dropout: (f32, u64),
    /// Keep the probabilities for backward.
    train: bool,
    probs: std::sync::Mutex<Vec<f32>>,
}

impl AttentionOp {
    /// (B, T, H) from qkv (B, T, 3H) and a mask (B, 1, 1, T).
    fn dims(qkv: &Layout, mask: &Layout) -> Result<(usize, usize, usize)> {
        let (qd, md) = (qkv.dims(), mask.dims());
        if qd.len() != 3 || qd[2] % 3 != 0 || md != [qd[0], 1, 1, qd[1]] {
            bail!("attention wants qkv (B, T, 3H) and mask (B, 1, 1, T), got {qd:?} and {md:?}");
        }
        Ok((qd[0], qd[1], qd[2] / 3))
    }

    /// Applies the dropout mask of block `bh` (a T×T probability block) in place.
    #[inline]
    fn drop_block(&self, block: &mut [f32], bh: usize) {
        let (p, seed) = self.dropout;
        if p > 0.0 {
            drop_in_place(block, p, seed, (bh * block.len()) as u64);
        }
    }
}

multiversion! {
    /// Softmax of each row of `block` in place, rows of `mask.len()` scores:
    /// `softmax(s · scale + mask)`.
    fn softmax_rows(block: &mut [f32], mask: &[f32], scale: f32) {
        for row in block.chunks_exact_mut(mask.len()) {
            for (v, &m) in row.iter_mut().zip(mask) {
                *v = *v * scale + m;
            }
            let max = simd::max(row);
            for v in row.iter_mut() {
                *v = exp(*v - max);
            }
            let inv = 1.0 / simd::sum(row);
            for v in row.iter_mut() {
                *v = flush(*v * inv);
            }
        }
    }
}

multiversion! {
    /// Softmax backward over rows of `t`: `dS = scale · P ⊙ (dP − rowsum(dP ⊙ P))`, in place
    /// of `dp`.
    fn softmax_grad_rows(dp: &mut [f32], p: &[f32], t: usize, scale: f32) {
        for (dr, pr) in dp.chunks_exact_mut(t).zip(p.chunks_exact(t)) {
            let dot = simd::dot(dr, pr);
            for (x, &pv) in dr.iter_mut().zip(pr) {
                *x = flush(scale * pv * (*x - dot));
            }
        }
    }
}

impl CustomOp2 for AttentionOp {
    fn name(&self) -> &'static str {
        "fused-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (bsz, t, h) = Self::dims(l1, l2)?;
        let (qkv, mask) = (slice(s1, l1)?, slice(s2, l2)?);
        let heads = self.heads;
        let d = h / heads;
        let use_packed = packed::available();
        // The packed products write every element of ctx (each head its d columns of every
        // row) without reading it, so it need not be zeroed first.
        let mut ctx = if use_packed {
            Vec::with_capacity(bsz * t * h)
        } else {
            vec![0f32; bsz * t * h]
        };
        let mut probs = if self.train {
            vec![0f32; bsz * heads * t * t]
        } else {
            Vec::new()
        };
        let out = Out(ctx.as_mut_ptr());
        let stash = Out(probs.as_mut_ptr());
        let qkv_v = View::rows(qkv, 3 * h);
        let train = self.train;
        (0..bsz * heads).into_par_iter().for_each_init(
            || {
                let own = if train { Vec::new() } else { vec![0f32; t * t] };
                let dropped = if self.dropout.0 > 0.0 {
                    vec![0f32; t * t]
                } else {
                    Vec::new()
                };
                (
                    own,
                    dropped,
                    PackedMatrix::default(),
                    PackedMatrix::default(),
                )
            },
            |(own, dropped, kp, vp), bh| {
                let (bi, hi) = (bh / heads, bh % heads);
                let base = bi * t * 3 * h;
                let p: &mut [f32] = if train {
                    // SAFETY: block bh of the stash belongs to this task alone.
                    unsafe { std::slice::from_raw_parts_mut(stash.ptr().add(bh * t * t), t * t) }
                } else {
                    own
                };
                // This task's output: columns hi*d..(hi+1)*d of batch bi's rows of ctx.
                let dst = out.ptr().wrapping_add(bi * t * h + hi * d);
                if use_packed {
                    // Rows of batch bi: queries, keys and values of head hi side by side.
                    let rows = &qkv[base..base + t * 3 * h];
                    kp.pack_transposed(&rows[h + hi * d..], t, d, 3 * h);
                    vp.pack(&rows[2 * h + hi * d..], t, d, 3 * h);
                    // SAFETY: available(); the queries are T rows of d at stride 3H, p is
                    // T×T.
                    unsafe {
                        let q = rows[hi * d..].as_ptr();
                        packed::matmul(t, q, 3 * h, kp, p.as_mut_ptr(), t, false, false)
                    };
                } else {
                    let q = qkv_v.at(base + hi * d);
                    let k = qkv_v.at(base + h + hi * d);
                    // SAFETY: q, k address T×d blocks of qkv; p is T×T.
                    unsafe { matmul(t, t, d, p.as_mut_ptr(), t, q, k.t(), false, false) };
                }
                softmax_rows(p, &mask[bi * t..(bi + 1) * t], self.scale);
                let pd: &[f32] = if self.dropout.0 > 0.0 {
                    dropped.copy_from_slice(p);
                    self.drop_block(dropped, bh);
                    dropped
                } else {
                    p
                };
                if use_packed {
                    // SAFETY: available(); pd is T×T and dst T rows of d at stride H, this
                    // task's alone.
                    unsafe { packed::matmul(t, pd.as_ptr(), t, vp, dst, h, false, false) };
                } else {
                    let v = qkv_v.at(base + 2 * h + hi * d);
                    // SAFETY: as above.
                    unsafe { matmul(t, d, t, dst, h, View::rows(pd, t), v, false, false) };
                }
            },
        );
        if use_packed {
            // SAFETY: every task has written its part; together they cover ctx.
            unsafe { ctx.set_len(bsz * t * h) };
        }
        if train {
            *self.probs.lock().expect("attention stash") = probs;
        }
        Ok((CpuStorage::F32(ctx), Shape::from((bsz, t, h))))
    }

    fn bwd(
        &self,
        qkv: &Tensor,
        _mask: &Tensor,
        _ctx: &Tensor,
        dctx: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (bsz, t, h3) = qkv.dims3()?;
        let h = h3 / 3;
        let heads = self.heads;
        let d = h / heads;
        let probs = std::mem::take(&mut *self.probs.lock().expect("attention stash"));
        if probs.len() != bsz * heads * t * t {
            bail!("attention: backward without a train-mode forward");
        }
        let dqkv = with_data(qkv, |qkv| {
            with_data(dctx, |dc| {
                let mut dqkv = vec![0f32; qkv.len()];
                let out = Out(dqkv.as_mut_ptr());
                let qkv_v = View::rows(qkv, 3 * h);
                let dc_v = View::rows(dc, h);
                (0..bsz * heads).into_par_iter().for_each_init(
                    || (vec![0f32; t * t], vec![0f32; t * t]),
                    |(pd, dp), bh| {
                        let (bi, hi) = (bh / heads, bh % heads);
                        let base = bi * t * 3 * h;
                        let q = qkv_v.at(base + hi * d);
                        let k = qkv_v.at(base + h + hi * d);
                        let v = qkv_v.at(base + 2 * h + hi * d);
                        let g = dc_v.at(bi * t * h + hi * d);
                        let p = &probs[bh * t * t..(bh + 1) * t * t];
                        pd.copy_from_slice(p);
                        self.drop_block(pd, bh);
                        // SAFETY: each task writes the q, k and v columns of its own head
                        // in batch bi's rows of dqkv; reads stay within qkv, dctx, p.
                        unsafe {
                            let dst = out.ptr().add(base + hi * d);
                            // dV = Pdᵀ · dC
                            matmul(
                                t,
                                d,
                                t,
                                dst.add(2 * h),
                                3 * h,
                                View::rows(pd, t).t(),
                                g,
                                false,
                                false,
                            );
                            // dPd = dC · Vᵀ
                            matmul(t, t, d, dp.as_mut_ptr(), t, g, v.t(), false, false);
                        }
                        // dP = dropout'(dPd); dS = scale · P ⊙ (dP − rowsum(dP ⊙ P)).
                        self.drop_block(dp, bh);
                        softmax_grad_rows(dp, p, t, self.scale);
                        // SAFETY: as above.
                        unsafe {
                            let dst = out.ptr().add(base + hi * d);
                            // dQ = dS · K ; dK = dSᵀ · Q
                            matmul(t, d, t, dst, 3 * h, View::rows(dp, t), k, false, false);
                            matmul(
                                t,
                                d,
                                t,
                                dst.add(h),
                                3 * h,
                                View::rows(dp, t).t(),
                                q,
                                false,
                                false,
                            );
                        }
                    },
                );
                Ok(dqkv)
            })
        })?;
        Ok((Some(tensor(dqkv, qkv.shape())?), None))
    }
}

/// Multi-head self-attention `softmax(Q Kᵀ · scale + mask) V` per head, with dropout `(p,
/// seed)` on the probabilities, over a packed `qkv` `(B, T, 3H)` (queries, keys, values side
/// by side, heads contiguous within each) and an additive mask `(B, 1, 1, T)`; gives the
/// context `(B, T, H)`. Heads run in parallel; the T×T scores exist one head at a time in
/// eval mode, and are kept (probabilities only) for backward in train mode.
pub fn attention(
    qkv: &Tensor,
    mask: &Tensor,
    heads: usize,
    scale: f64,
    dropout: (f32, u64),
    train: bool,
) -> Result<Tensor> {
    qkv.contiguous()?.apply_op2(
        &mask.contiguous()?,
        AttentionOp {
            heads,
            scale: scale as f32,
            dropout,
            train,
            probs: std::sync::Mutex::new(Vec::new()),
        },
    )
}

/// Eval-mode attention from the first position of each sequence only: the context `(B, 1,
/// H)` that [`attention`] gives at position 0, over the same packed `qkv` `(B, T, 3H)` and
/// mask `(B, 1, 1, T)`. No dropout, no backward.
pub fn attention_first_query(
    qkv: &Tensor,
    mask: &Tensor,
    heads: usize,
    scale: f64,
) -> Result<Tensor> {
    let (bsz, t, h3) = qkv.dims3()?;
    let h = h3 / 3;
    let d = h / heads;
    if h3 % 3 != 0 || mask.dims() != [bsz, 1, 1, t] {
        bail!("attention wants qkv (B, T, 3H) and mask (B, 1, 1, T)");
    }
    let ctx = with_data(qkv, |qkv| {
        with_data(mask, |mask| {
            let mut ctx = vec![0f32; bsz * h];
            ctx.par_chunks_mut(h).enumerate().for_each(|(bi, out)| {
                let rows = &qkv[bi * t * h3..(bi + 1) * t * h3];
                let mut p = vec![0f32; t];
                for hi in 0..heads {
                    let q = &rows[hi * d..(hi + 1) * d];
                    for (j, s) in p.iter_mut().enumerate() {
                        let k = &rows[j * h3 + h + hi * d..j * h3 + h + (hi + 1) * d];
                        *s = simd::dot(q, k);
                    }
                    softmax_rows(&mut p, &mask[bi * t..(bi + 1) * t], scale as f32);
                    let o = &mut out[hi * d..(hi + 1) * d];
                    for (j, &pj) in p.iter().enumerate() {
                        let v = &rows[j * h3 + 2 * h + hi * d..j * h3 + 2 * h + (hi + 1) * d];
                        for (x, &vv) in o.iter_mut().zip(v) {
                            *x += pj * vv;
                        }
                    }
                }
            });
            Ok(ctx)
        })
    })?;
    Tensor::from_vec(ctx, (bsz, 1, h), qkv.device())
}

// ---------------------------------------------------------------------------------------
// Optimiser helpers: in-place AdamW and a sum of squares without temporaries.

/// Sum of the squares of every element of `t`, accumulated in f64.
pub fn sum_squares(t: &Tensor) -> Result<f64> {
    with_data(t, |x| {
        Ok(x.par_chunks(GRAIN)
            .map(|c| c.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>())
            .sum())
    })
}

/// One AdamW update of a parameter, its moments held by the optimiser.
pub struct AdamWUpdate<'a> {
    /// First moment, updated in place.
    pub m: std::cell::RefCell<&'a mut [f32]>,
    /// Second moment, updated in place.
    pub v: std::cell::RefCell<&'a mut [f32]>,
    /// Multiplier of the gradient (clipping).
    pub grad_scale: f32,
    /// β₁, β₂, ε.
    pub betas: (f32, f32, f32),
    /// θ ← θ · decay before the step (1 − lr·λ, or 1).
    pub decay: f32,
    /// lr / (1 − β₁ᵗ).
    pub step_size: f32,
    /// sqrt(1 − β₂ᵗ).
    pub bc2_sqrt: f32,
}

impl InplaceOp2 for AdamWUpdate<'_> {
    fn name(&self) -> &'static str {
        "fused-adamw"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let g = slice(s2, l2)?;
        let CpuStorage::F32(theta) = s1 else {
            bail!("AdamW updates f32 parameters only");
        };
        let Some((a, b)) = l1.contiguous_offsets() else {
            bail!("AdamW updates contiguous parameters only");
        };
        let theta = &mut theta[a..b];
        let mut m = self.m.borrow_mut();
        let mut v = self.v.borrow_mut();
        if g.len() != theta.len() || m.len() != theta.len() || v.len() != theta.len() {
            bail!("AdamW: gradient and moments must match the parameter's size");
        }
        let (b1, b2, eps) = self.betas;
        let (scale, decay, step_size, bc2_sqrt) =
            (self.grad_scale, self.decay, self.step_size, self.bc2_sqrt);
        theta
            .par_chunks_mut(GRAIN)
            .zip(m.par_chunks_mut(GRAIN))
            .zip(v.par_chunks_mut(GRAIN))
            .zip(g.par_chunks(GRAIN))
            .for_each(|(((tc, mc), vc), gc)| {
                for (((t, m), v), &g) in tc.iter_mut().zip(mc).zip(vc).zip(gc) {
                    let g = g * scale;
                    *m = b1 * *m + (1.0 - b1) * g;
                    *v = b2 * *v + (1.0 - b2) * g * g;
                    let denom = v.sqrt() / bc2_sqrt + eps;
                    *t = *t * decay - step_size * *m / denom;
                }
            });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Each fused kernel against the same computation from candle's primitive ops, forward
    //! and every gradient, on random data; dropout masks are reproduced by dropping a
    //! tensor of ones with the same seed (the mask depends on the element index only).
    use candle_core::{Device, Var, D};

    use super::*;
    use crate::rng::Rng;

    fn rand(shape: &[usize], seed: u64) -> Tensor {
        let mut rng = Rng::new(seed);
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).expect("tensor")
    }

    fn close(a: &Tensor, b: &Tensor, tol: f32, what: &str) {
        let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
        let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(a.len(), b.len(), "{what}: sizes");
        let scale = b.iter().fold(1f32, |m, x| m.max(x.abs()));
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(
            worst <= tol * scale,
            "{what}: max |diff| {worst} (scale {scale})"
        );
    }

    /// Gradients of `sum(f(vars) * r)` for a fixed random `r`.
    fn grads(vars: &[&Var], out: &Tensor, seed: u64) -> Vec<Tensor> {
        let r = rand(out.dims(), seed);
        let g = (out * r).unwrap().sum_all().unwrap().backward().unwrap();
        vars.iter()
            .map(|v| g.get(v.as_tensor()).expect("gradient").clone())
            .collect()
    }

    fn mask_of(shape: &[usize], p: f32, seed: u64) -> Tensor {
        dropout(
            &Tensor::ones(shape, DType::F32, &Device::Cpu).unwrap(),
            p,
            seed,
        )
        .unwrap()
    }

    use candle_core::DType;

    #[test]
    fn fast_exp_and_gelu_are_accurate() {
        for i in -2000..=2000 {
            let x = i as f32 * 0.043;
            let (e, r) = (exp(x), x.exp());
            assert!((e - r).abs() <= 4e-7 * r, "exp({x}) = {e}, not {r}");
            let z = i as f32 * 0.005;
            let exact =
                0.5 * z * (1.0 + candle_core::cpu::erf::erf_f64(z as f64 / 2f64.sqrt()) as f32);
            assert!((gelu_and_grad(z).0 - exact).abs() < 1e-6, "gelu({z})");
        }
        // Below -87 the result is 0, never subnormal.
        assert_eq!(exp(-87.5), 0.0);
        assert_eq!(exp(f32::MIN), 0.0);
        assert!(exp(-86.9) >= f32::MIN_POSITIVE);
        assert!(exp(-86.9) < 1e-37);
        assert!(exp(f32::NAN).is_nan());
    }

    #[test]
    fn element_wise_loops_give_the_same_bits_at_every_instruction_set() {
        let v = |n: usize, seed: u64| -> Vec<f32> {
            rand(&[n], seed).flatten_all().unwrap().to_vec1().unwrap()
        };
        let (rows, h) = (7, 37);
        let (x, dy, w, b) = (v(rows * h, 1), v(rows * h, 2), v(h, 3), v(h, 4));
        let mask: Vec<f32> = (0..h)
            .map(|i| if i < 30 { 0.0 } else { f32::MIN })
            .collect();
        let runs = crate::simd::tests::at_each_level(|| {
            let mut out: Vec<Vec<f32>> = Vec::new();
            let mut y = x.clone();
            gelu_in_place(&mut y);
            out.push(y);
            let mut g = dy.clone();
            gelu_grad_in_place(&mut g, &x);
            out.push(g);
            let mut y = x.clone();
            add_bias(&mut y, &w);
            out.push(y);
            let mut y = x.clone();
            drop_in_place(&mut y, 0.3, 99, 1000);
            out.push(y);
            let mut p = x.clone();
            softmax_rows(&mut p, &mask, 0.7);
            let mut ds = dy.clone();
            softmax_grad_rows(&mut ds, &p, h, 0.7);
            out.push(p);
            out.push(ds);
            let mut y = vec![0f32; x.len()];
            layer_norm_rows(&mut y, &x, &w, &b, 1e-12);
            out.push(y);
            let (mut dx, mut dw, mut db) = (vec![0f32; x.len()], vec![0f32; h], vec![0f32; h]);
            layer_norm_grad_rows(&mut dx, &x, &dy, &w, 1e-12, &mut dw, &mut db);
            out.extend([dx, dw, db]);
            out
        });
        crate::simd::tests::report_levels(&runs.iter().map(|r| r.0).collect::<Vec<_>>());
        for (level, out) in &runs[1..] {
            for (i, (a, b)) in out.iter().zip(&runs[0].1).enumerate() {
                let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "loop {i} differs at level {level} from the baseline");
            }
        }
    }

    #[test]
    fn softmax_never_gives_subnormal_probabilities() {
        // Masked keys, and scores 80 to 100 below the row's largest, would give probabilities
        // below the smallest normal float; they must be exactly 0.
        let t = 64;
        let mask: Vec<f32> = (0..t)
            .map(|i| if i < 40 { 0.0 } else { f32::MIN })
            .collect();
        let mut p: Vec<f32> = (0..t).map(|i| -(i as f32) * 2.5).collect();
        softmax_rows(&mut p, &mask, 1.0);
        assert!(
            p.iter().all(|&x| x == 0.0 || x >= f32::MIN_POSITIVE),
            "{p:?}"
        );
        assert!(p[40..].iter().all(|&x| x == 0.0));
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let mut g: Vec<f32> = (0..t).map(|i| 1e-30 * i as f32).collect();
        softmax_grad_rows(&mut g, &p, t, 1e-9);
        assert!(
            g.iter().all(|&x| x == 0.0 || x.abs() >= f32::MIN_POSITIVE),
            "{g:?}"
        );
    }

    #[test]
    fn layer_norm_matches_primitives() {
        let x = Var::from_tensor(&rand(&[3, 5, 16], 1)).unwrap();
        let w = Var::from_tensor(&rand(&[16], 2)).unwrap();
        let b = Var::from_tensor(&rand(&[16], 3)).unwrap();
        let fused = layer_norm(&x, &w, &b, 1e-12).unwrap();
        let mean = x.mean_keepdim(D::Minus1).unwrap();
        let xc = x.broadcast_sub(&mean).unwrap();
        let var = xc.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
        let reference = xc
            .broadcast_div(&(var + 1e-12).unwrap().sqrt().unwrap())
            .unwrap()
            .broadcast_mul(&w)
            .unwrap()
            .broadcast_add(&b)
            .unwrap();
        close(&fused, &reference, 1e-5, "forward");
        let (gf, gr) = (
            grads(&[&x, &w, &b], &fused, 9),
            grads(&[&x, &w, &b], &reference, 9),
        );
        for (i, (a, b)) in gf.iter().zip(&gr).enumerate() {
            close(a, b, 1e-4, &format!("gradient {i}"));
        }
    }

    #[test]
    fn linear_with_gelu_and_dropout_matches_primitives() {
        let x = Var::from_tensor(&rand(&[2, 7, 12], 4)).unwrap();
        let w = Var::from_tensor(&rand(&[20, 12], 5)).unwrap();
        let b = Var::from_tensor(&rand(&[20], 6)).unwrap();
        for (act, p) in [
            (Activation::Identity, 0.0),
            (Activation::Gelu, 0.0),
            (Activation::Identity, 0.3),
            (Activation::Gelu, 0.3),
        ] {
            let fused = linear(&x, &w, None, &b, act, (p, 77), true).unwrap();
            let z = x
                .broadcast_matmul(&w.t().unwrap())
                .unwrap()
                .broadcast_add(&b)
                .unwrap();
            let mut reference = match act {
                Activation::Identity => z,
                Activation::Gelu => z.gelu_erf().unwrap(),
            };
            if p > 0.0 {
                reference = (reference * mask_of(&[2, 7, 20], p, 77)).unwrap();
            }
            close(&fused, &reference, 1e-5, &format!("{act:?} {p} forward"));
            let gf = grads(&[&x, &w, &b], &fused, 10);
            let gr = grads(&[&x, &w, &b], &reference, 10);
            for (i, (a, b)) in gf.iter().zip(&gr).enumerate() {
                close(a, b, 1e-4, &format!("{act:?} {p} gradient {i}"));
            }
        }
    }

    #[test]
    fn attention_matches_primitives_with_padding_and_dropout() {
        let (bsz, t, heads, d) = (2, 6, 3, 4);
        let h = heads * d;
        let qkv = Var::from_tensor(&rand(&[bsz, t, 3 * h], 11)).unwrap();
        let lens = [6usize, 4];
        let mut m = Vec::new();
        for &l in &lens {
            m.extend((0..t).map(|i| if i < l { 0f32 } else { f32::MIN }));
        }
        let mask = Tensor::from_vec(m, (bsz, 1, 1, t), &Device::Cpu).unwrap();
        let scale = 1.0 / (d as f64).sqrt();
        for p in [0.0f32, 0.25] {
            let fused = attention(&qkv, &mask, heads, scale, (p, 5), true).unwrap();
            let part = |i: usize| {
                qkv.narrow(2, i * h, h)
                    .unwrap()
                    .reshape((bsz, t, heads, d))
                    .unwrap()
                    .transpose(1, 2)
                    .unwrap()
                    .contiguous()
                    .unwrap()
            };
            let (q, k, v) = (part(0), part(1), part(2));
            let scores = (q.matmul(&k.t().unwrap()).unwrap() * scale)
                .unwrap()
                .broadcast_add(&mask)
                .unwrap();
            let max = scores.max_keepdim(D::Minus1).unwrap().detach();
            let e = scores.broadcast_sub(&max).unwrap().exp().unwrap();
            let mut probs = e.broadcast_div(&e.sum_keepdim(D::Minus1).unwrap()).unwrap();
            if p > 0.0 {
                probs = (probs * mask_of(&[bsz, heads, t, t], p, 5)).unwrap();
            }
            let reference = probs
                .matmul(&v)
                .unwrap()
                .transpose(1, 2)
                .unwrap()
                .reshape((bsz, t, h))
                .unwrap();
            close(&fused, &reference, 1e-5, &format!("p={p} forward"));
            let gf = grads(&[&qkv], &fused, 12);
            let gr = grads(&[&qkv], &reference, 12);
            close(&gf[0], &gr[0], 1e-4, &format!("p={p} gradient"));
        }
        // Eval mode (nothing kept) gives the same context.
        let eval = attention(
            &qkv.as_tensor().detach(),
            &mask,
            heads,
            scale,
            (0.0, 0),
            false,
        )
        .unwrap();
        let train = attention(&qkv, &mask, heads, scale, (0.0, 0), true).unwrap();
        close(&eval, &train, 0.0, "eval vs train");
    }

    #[test]
    fn dropout_drops_about_p_and_backward_reuses_the_mask() {
        let x = Var::from_tensor(&Tensor::ones((1000, 100), DType::F32, &Device::Cpu).unwrap())
            .unwrap();
        let y = dropout(&x, 0.1, 42).unwrap();
        let v: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
        let dropped = v.iter().filter(|&&e| e == 0.0).count() as f64 / v.len() as f64;
        assert!((dropped - 0.1).abs() < 0.005, "dropped {dropped}");
        assert!(v.iter().all(|&e| e == 0.0 || (e - 1.0 / 0.9).abs() < 1e-6));
        let g = y.sum_all().unwrap().backward().unwrap();
        close(
            g.get(x.as_tensor()).unwrap(),
            &y,
            0.0,
            "gradient is the mask",
        );
        let other = dropout(&x, 0.1, 43).unwrap();
        assert_ne!(
            other.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            v,
            "seed matters"
        );
    }
}
